"""A real coturn (Debian's turnserver) on 127.0.0.1 with a test-only config, and a UDP tap in
front of it that records every datagram between a client and the TURN server."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

SECRET = "test-only-turn-secret"
REALM = "appliance.test"


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def turnserver_path() -> str:
    path = shutil.which("turnserver")
    if path:
        return path
    message = "Debian's coturn (turnserver) is not installed (make test installs it as root)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def relay_ports(port: int) -> range:
    """The ports coturn listening on ``port`` allocates relays on (its min-port..max-port)."""
    low = 49152 + (port % 1000) * 10
    return range(low, low + 10)


@contextmanager
def coturn(workdir: Path) -> Iterator[int]:
    """Run coturn until the block ends; yields its UDP port."""
    with coturn_process(workdir) as (port, _):
        yield port


@contextmanager
def coturn_process(workdir: Path) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """Run coturn until the block ends; yields its UDP port and its process (to kill it)."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_udp_port()
    low = relay_ports(port).start
    conf = workdir / "turnserver.conf"
    conf.write_text(
        "\n".join(
            [
                "listening-ip=127.0.0.1",
                "relay-ip=127.0.0.1",
                f"listening-port={port}",
                f"min-port={low}",
                f"max-port={low + 9}",
                "use-auth-secret",
                f"static-auth-secret={SECRET}",
                f"realm={REALM}",
                "allow-loopback-peers",  # test configs only: peers are on loopback here
                "no-multicast-peers",
                "no-cli",
                "no-tls",
                "no-dtls",
                "fingerprint",
                f"log-file={workdir / 'turn.log'}",
                "simple-log",
                f"pidfile={workdir / 'turn.pid'}",
                f"userdb={workdir / 'turndb'}",
                "",
            ]
        )
    )
    proc = subprocess.Popen(
        [turnserver_path(), "-c", str(conf)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=workdir,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            log = workdir / "turn.log"
            if log.exists() and "Total General servers" in log.read_text(errors="replace"):
                time.sleep(0.3)
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("coturn did not start")
            time.sleep(0.1)
        yield port, proc
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()


class UdpTap:
    """Forwards UDP between clients and ``upstream``, keeping a copy of every datagram."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.front.bind(("127.0.0.1", 0))
        self.port = int(self.front.getsockname()[1])
        self.captured: list[bytes] = []
        self._backs: dict[tuple[str, int], socket.socket] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        threading.Thread(target=self._front_loop, daemon=True).start()

    def _front_loop(self) -> None:
        self.front.settimeout(0.2)
        while not self._stop.is_set():
            try:
                data, client = self.front.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.captured.append(data)
                back = self._backs.get(client)
                if back is None:
                    back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                    back.bind(("127.0.0.1", 0))
                    self._backs[client] = back
                    threading.Thread(
                        target=self._back_loop, args=(back, client), daemon=True
                    ).start()
            back.sendto(data, self.upstream)

    def _back_loop(self, back: socket.socket, client: tuple[str, int]) -> None:
        back.settimeout(0.2)
        while not self._stop.is_set():
            try:
                data, _ = back.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.captured.append(data)
            self.front.sendto(data, client)

    def data(self) -> bytes:
        with self._lock:
            return b"".join(self.captured)

    def close(self) -> None:
        self._stop.set()
        self.front.close()
        for back in self._backs.values():
            back.close()
