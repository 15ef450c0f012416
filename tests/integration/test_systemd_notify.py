"""sd_notify to a real datagram socket standing in for systemd's."""

from __future__ import annotations

import asyncio
import os
import socket

from appliance import systemd


def test_notify_and_the_watchdog_reach_the_socket(tmp_path, monkeypatch) -> None:
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(str(path))
        server.settimeout(5)
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        assert systemd.notify("READY=1")
        assert server.recv(100) == b"READY=1"

        monkeypatch.setenv("WATCHDOG_USEC", "2000000")
        monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
        assert systemd.watchdog_interval() == 1.0

        async def run() -> None:
            task = asyncio.ensure_future(systemd.watchdog())
            await asyncio.sleep(1.5)
            task.cancel()

        asyncio.run(run())
        assert server.recv(100) == b"WATCHDOG=1" and server.recv(100) == b"WATCHDOG=1"


def test_outside_systemd_nothing_happens(monkeypatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    assert systemd.notify("READY=1") is False
    assert systemd.watchdog_interval() is None
    monkeypatch.setenv("WATCHDOG_USEC", "1000000")
    monkeypatch.setenv("WATCHDOG_PID", "1")  # another process's watchdog
    assert systemd.watchdog_interval() is None
