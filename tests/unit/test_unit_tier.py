"""The unit tier's own rules hold: a network socket, a program or a slow test fails it."""

from __future__ import annotations

import asyncio
import socket
import subprocess

import pytest

import tests.unit.conftest as unit
from tests.unit.conftest import UnitTierViolation

pytest_plugins = ["pytester"]


def test_a_network_socket_is_refused_with_the_reason(unit_tier_violations: list[str]) -> None:
    with pytest.raises(UnitTierViolation, match="tests/integration"):
        socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    with pytest.raises(UnitTierViolation):
        socket.create_connection(("127.0.0.1", 9))
    assert unit_tier_violations == ["open a network socket"] * 2
    unit_tier_violations.clear()


def test_a_program_is_refused_with_the_reason(unit_tier_violations: list[str]) -> None:
    with pytest.raises(UnitTierViolation, match="start a program"):
        subprocess.run(["true"], check=False)
    unit_tier_violations.clear()


def test_a_refusal_the_code_caught_still_fails_the_test(pytester: pytest.Pytester) -> None:
    pytester.makeconftest("from tests.unit.conftest import *  # noqa: F403\n")
    pytester.makepyfile(
        "import subprocess\n"
        "def test_swallows():\n"
        "    try:\n"
        "        subprocess.run(['true'])\n"
        "    except Exception:\n"
        "        pass\n"
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*even where the code caught the refusal*"])


def test_an_event_loop_still_works() -> None:
    async def answer() -> int:
        await asyncio.sleep(0)
        return 42

    assert asyncio.run(answer()) == 42  # its self-pipe is a Unix socket pair


def test_a_test_over_the_limit_fails(pytester: pytest.Pytester) -> None:
    pytester.makeconftest("from tests.unit.conftest import pytest_runtest_call\n")
    pytester.makepyfile("def test_quick():\n    pass\n")
    limit = unit.UNIT_SECONDS
    unit.UNIT_SECONDS = -1.0  # every test is over it
    try:
        result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    finally:
        unit.UNIT_SECONDS = limit
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*over the unit tier's*"])
