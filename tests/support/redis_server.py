"""A real Redis (Debian's redis-server) on 127.0.0.1 and a free port, persisting nothing
(``--save ""``, ``--appendonly no``), for the tests of the relay's Redis store."""

from __future__ import annotations

import shutil
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support.wait import until


def free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def redis_server_path() -> str:
    path = shutil.which("redis-server") or shutil.which("redis-server", path="/usr/bin:/usr/sbin")
    if path:
        return path
    # never a skip: a skipped store suite would look green (make test installs it as root)
    pytest.fail("Debian's redis-server is not installed: `apt-get install redis-server`")


@contextmanager
def redis_server(workdir: Path) -> Iterator[str]:
    """Run redis-server until the block ends; yields its URL (database 0)."""
    import redis

    binary = redis_server_path()
    port = free_tcp_port()
    args = [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"]
    args += ["--dir", str(workdir), "--protected-mode", "yes", "--logfile", ""]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    try:

        def answers() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"redis-server exited with {process.returncode}")
            try:
                return bool(client.ping())
            except redis.ConnectionError:
                return False

        until(answers, 10.0, 0.05, "redis-server answering")
        yield url
    finally:
        client.close()
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
