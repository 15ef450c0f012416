"""A clinic group's relay on loopback, as docs/relay.md runs it: relay processes started through
the CLI (`python -m appliance relay serve`, this checkout's code) sharing one Redis, behind
Debian's HAProxy terminating TLS with a generated configuration.

The tests' own proxy configuration sends the box's routes (``/api/box/``) to process A and
everything else to process B, each with the other as its backup, so a box and a viewer are on
different processes by construction and either process killed leaves the other serving both;
docs/relay.md's sample configuration (both active, least connections) is run as well. The stats
socket tells which process served what.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from appliance.crypto import load_or_create_tls
from appliance.relay.redis_rooms import RedisRooms
from tests.support.redis_server import free_tcp_port
from tests.support.wait import until

REPO = Path(__file__).resolve().parents[2]


@dataclass
class RelayProcess:
    """One `appliance relay serve` process; its log (stderr) in ``log``."""

    name: str
    port: int
    log: Path
    process: subprocess.Popen[bytes]

    def answers(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"relay {self.name} exited: {self.log.read_text()[-2000:]}")
        try:
            url = f"http://127.0.0.1:{self.port}/v/viewer.css"
            with urllib.request.urlopen(url, timeout=2) as r:  # noqa: S310 - loopback
                return bool(r.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    def kill(self) -> None:
        """SIGKILL: no goodbye, as a crashed process or a host that lost power."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(5)

    def logged(self) -> str:
        return self.log.read_text(errors="replace")


def relay_toml(port: int, redis_url: str, boxes: list[str], turn_urls: list[str]) -> str:
    lines = [
        'host = "127.0.0.1"',
        f"port = {port}",
        f"boxes = {boxes!r}".replace("'", '"'),
        'trusted_proxies = ["127.0.0.1"]',
        'store = "redis"',
        "[redis]",
        f'url = "{redis_url}"',
    ]
    if turn_urls:
        urls = ", ".join(f'"{u}"' for u in turn_urls)
        lines += ["[turn]", 'secret = "test-only-turn-secret"', f"urls = [{urls}]"]
    return "\n".join(lines) + "\n"


@contextmanager
def relay_process(
    workdir: Path, name: str, redis_url: str, boxes: list[str], turn_urls: tuple[str, ...] = ()
) -> Iterator[RelayProcess]:
    """`python -m appliance relay serve --config <generated relay.toml>` until the block ends."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_tcp_port()
    config = workdir / "relay.toml"
    config.write_text(relay_toml(port, redis_url, boxes, list(turn_urls)))
    log = workdir / "relay.log"
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path, "PYTHONDONTWRITEBYTECODE": "1"}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "appliance", "relay", "serve", "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=workdir,
        )
    relay = RelayProcess(name, port, log, process)
    try:
        until(relay.answers, 20.0, 0.1, f"relay {name} answering")
        yield relay
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


def haproxy_path() -> str:
    path = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/usr/bin")
    if path:
        return path
    # never a skip: the failover tests would look green (make test installs it as root)
    pytest.fail("Debian's haproxy is not installed: `apt-get install haproxy`")


def haproxy_cfg(port: int, pem: Path, sock: Path, a: int, b: int) -> str:
    """The test's proxy: docs/relay.md's sample, with the routes split between A and B."""
    return f"""\
global
    maxconn 512
    stats socket {sock} mode 600 level admin
    # no `log` line: HAProxy writes no access log (room ids, addresses)

defaults
    mode http
    timeout connect 2s
    timeout client 40s
    timeout server 40s
    timeout http-request 10s
    timeout http-keep-alive 10s
    timeout queue 5s
    retries 2
    option redispatch 1
    retry-on conn-failure empty-response
    option forwardfor
    option httpchk GET /api/health
    http-check expect status 200
    default-server check inter 500ms fall 2 rise 2

frontend relay
    bind 127.0.0.1:{port} ssl crt {pem} alpn http/1.1
    http-request set-header X-Forwarded-Proto https
    use_backend boxes if {{ path_beg /api/box/ }}
    default_backend viewers

backend boxes
    http-request disable-l7-retry unless METH_GET
    server a 127.0.0.1:{a}
    server b 127.0.0.1:{b} backup

backend viewers
    http-request disable-l7-retry unless METH_GET
    server b 127.0.0.1:{b}
    server a 127.0.0.1:{a} backup
"""


def documented_cfg(port: int, pem: Path, sock: Path, a: int, b: int) -> str:
    """docs/relay.md's sample HAProxy configuration itself (both processes active, least
    connections), on loopback, with a stats socket and the health checks every 0.5 s."""
    (sample,) = re.findall(r"```haproxy\n(.*?)```", (REPO / "docs" / "relay.md").read_text(), re.S)
    swaps = {
        "global\n": f"global\n    stats socket {sock} mode 600 level admin\n",
        "bind :443": f"bind 127.0.0.1:{port}",
        "/etc/haproxy/relay.pem": str(pem),
        "10.0.0.11:8443": f"127.0.0.1:{a}",
        "10.0.0.13:8443": f"127.0.0.1:{b}",
        "inter 2s": "inter 500ms",
    }
    for old, new in swaps.items():
        assert sample.count(old) == 1, f"docs/relay.md's sample lost {old!r}"
        sample = sample.replace(old, new)
    return sample


@dataclass
class Proxy:
    url: str
    cafile: str
    sock: Path

    def stats(self) -> dict[tuple[str, str], dict[str, str]]:
        """(backend, server) -> HAProxy's stats for it (``show stat`` on its socket)."""
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(str(self.sock))
            s.sendall(b"show stat\n")
            raw = b""
            while chunk := s.recv(65536):
                raw += chunk
        header, *rows = raw.decode().strip().splitlines()
        names = header.lstrip("# ").split(",")
        out: dict[tuple[str, str], dict[str, str]] = {}
        for row in rows:
            stat = dict(zip(names, row.split(","), strict=False))
            if stat["svname"] not in ("FRONTEND", "BACKEND"):
                out[(stat["pxname"], stat["svname"])] = stat
        return out

    def served(self) -> dict[tuple[str, str], int]:
        """(backend, server) -> requests it has sent that server so far."""
        return {key: int(stat["stot"] or 0) for key, stat in self.stats().items()}

    def down(self, server: str) -> bool:
        """Whether HAProxy's health checks have taken ``server`` out (in every backend)."""
        return all(
            stat["status"].startswith("DOWN")
            for (_, name), stat in self.stats().items()
            if name == server
        )


@contextmanager
def haproxy(
    workdir: Path, a: RelayProcess, b: RelayProcess, documented: bool = False
) -> Iterator[Proxy]:
    """HAProxy on 127.0.0.1 terminating TLS (a certificate made as the box makes its own):
    the tests' split (:func:`haproxy_cfg`) or docs/relay.md's own (``documented``)."""
    workdir.mkdir(parents=True, exist_ok=True)
    tls = load_or_create_tls(workdir, ["127.0.0.1", "localhost"])
    pem = workdir / "proxy.pem"  # HAProxy reads the certificate and its key from one file
    pem.write_bytes(tls.cert.read_bytes() + tls.key.read_bytes())
    pem.chmod(0o600)
    port, sock = free_tcp_port(), workdir / "haproxy.sock"
    config = workdir / "haproxy.cfg"
    layout = documented_cfg if documented else haproxy_cfg
    config.write_text(layout(port, pem, sock, a.port, b.port))
    checked = subprocess.run(  # noqa: S603 - our own generated file
        [haproxy_path(), "-c", "-q", "-f", str(config)], capture_output=True, check=False
    )
    assert checked.returncode == 0, checked.stderr.decode()
    log = (workdir / "haproxy.log").open("wb")
    process = subprocess.Popen(
        [haproxy_path(), "-db", "-f", str(config)], stdout=log, stderr=subprocess.STDOUT
    )
    proxy = Proxy(f"https://127.0.0.1:{port}", str(tls.cert), sock)
    try:

        def up() -> bool:
            assert process.poll() is None, (workdir / "haproxy.log").read_text()
            try:
                return bool(proxy.served())
            except OSError:
                return False

        until(up, 10.0, 0.05, "haproxy answering")
        yield proxy
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        log.close()


@dataclass
class Group:
    """Two relay processes (A: the box's routes, B: the viewer's) behind the proxy, their
    shared rooms (read straight from Redis) and the TURN URLs they hand out."""

    a: RelayProcess
    b: RelayProcess
    proxy: Proxy
    turn_urls: list[str]
    rooms: RedisRooms

    def served(self, backend: str, server: str) -> int:
        return self.proxy.served().get((backend, server), 0)


@contextmanager
def relay_group(
    workdir: Path,
    redis_url: str,
    boxes: list[str],
    turn_urls: list[str],
    monkeypatch: Any,
    documented: bool = False,
) -> Iterator[Group]:
    """Relay processes A and B on ``redis_url`` behind HAProxy. A box in this process trusts
    the proxy's certificate as it trusts a public CA's (httpx's bundle, ``certifi.where``)."""
    import certifi
    import redis

    with (
        relay_process(workdir / "a", "a", redis_url, boxes, tuple(turn_urls)) as a,
        relay_process(workdir / "b", "b", redis_url, boxes, tuple(turn_urls)) as b,
        haproxy(workdir / "proxy", a, b, documented) as proxy,
    ):
        monkeypatch.setattr(certifi, "where", lambda: proxy.cafile)
        client = redis.Redis.from_url(redis_url, decode_responses=True)
        rooms = RedisRooms(client)
        try:
            yield Group(a, b, proxy, list(turn_urls), rooms)
        finally:
            rooms.close_all()
            client.close()
