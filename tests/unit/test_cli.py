"""`appliance --help` speaks to the technician (issue 14): what the program is and what each
subcommand is for, not how the code is built."""

from __future__ import annotations

import pytest

from appliance.__main__ import main


def test_the_help_says_what_the_program_and_each_subcommand_are_for(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    flat = " ".join(text.split())  # whatever the terminal's width
    assert "composition root" not in flat
    assert "shares an ultrasound scanner's picture live with one remote viewer" in flat
    for line in (
        "run ",
        "check-config ",
        "doctor ",
        "relay ",
        "firstboot ",
    ):
        assert f"    {line}" in text, line
    assert "exit 2 on a problem" in flat and "OK, WARN or FAIL" in flat
