"""`appliance doctor` against a fake box: every check passes on a healthy one and can fail."""

from __future__ import annotations

import datetime
import http.server
import ipaddress
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from appliance import config as config_mod
from appliance import doctor
from appliance.capture import edid
from appliance.capture.fake_v4l2 import FakeTC358743
from appliance.doctor import FAIL, OK, WARN, DoctorEnv, run_checks
from appliance.doctor.net import parse_turn_url

TOKEN = "box-token-for-tests"


def make_cert(tmp: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "relay.crt", tmp / "relay.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class RelayHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        if self.path != "/api/box/ping":
            self.send_response(404)
        elif self.headers.get("Authorization") == f"Bearer {TOKEN}":
            self.send_response(200)
        else:
            self.send_response(401)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, ssl.SSLContext]]:
    cert, key = make_cert(tmp_path_factory.mktemp("relay"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RelayHandler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield (
            f"https://127.0.0.1:{server.server_address[1]}",
            ssl.create_default_context(cafile=str(cert)),
        )
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture(scope="module")
def turn() -> Iterator[int]:
    """A loopback STUN responder standing in for coturn."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                data, addr = sock.recvfrom(2048)
            except TimeoutError:
                continue
            if len(data) >= 20 and data[:2] == b"\x00\x01":
                sock.sendto(b"\x01\x01\x00\x00" + data[4:20], addr)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield sock.getsockname()[1]
    finally:
        stop.set()
        thread.join(5)
        sock.close()


def script(root: Path, name: str, body: str) -> None:
    p = root / "usr/bin" / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text("#!/bin/sh\n" + body + "\n")
    p.chmod(0o755)


@dataclass
class Box:
    root: Path
    env: DoctorEnv
    bridge: FakeTC358743

    def results(self) -> dict[str, tuple[doctor.CheckStatus, str]]:
        return {r.name: (r.status, r.detail) for r in run_checks(self.env)}

    def reconfigure(self, **sections: Any) -> None:
        self.env.config = self.env.config.replace(**sections)


@pytest.fixture
def box(tmp_path: Path, relay: tuple[str, ssl.SSLContext], turn: int) -> Box:
    root = tmp_path / "root"
    (root / "proc/device-tree").mkdir(parents=True)
    (root / "proc/device-tree/model").write_bytes(b"Raspberry Pi 4 Model B Rev 1.5\x00")
    (root / "sys/bus/i2c/drivers/tc358743/10-000f").mkdir(parents=True)
    (root / "sys/class/video4linux/video0").mkdir(parents=True)
    (root / "sys/class/video4linux/video0/name").write_text("unicam-image\n")
    (root / "dev").mkdir()
    (root / "dev/video11").write_text("")
    (root / "proc/meminfo").write_text(
        "MemTotal: 1897596 kB\nMemAvailable: 1200000 kB\nCmaTotal: 262144 kB\nCmaFree: 200000 kB\n"
    )
    (root / "proc/mounts").write_text(
        "/dev/mmcblk0p2 / ext4 ro,noatime 0 0\ntmpfs /run tmpfs rw 0 0\n"
    )
    (root / "sys/class/thermal/thermal_zone0").mkdir(parents=True)
    (root / "sys/class/thermal/thermal_zone0/temp").write_text("52500\n")
    script(root, "vcgencmd", 'echo "throttled=0x0"')
    script(root, "timedatectl", "echo yes")
    script(
        root,
        "gpioinfo",
        "echo 'gpiochip0 - 58 lines:'; echo '\tline  17:     \"GPIO17\"       unused   input  active-high'; echo '\tline  27:     \"GPIO27\"       unused   input  active-high'",
    )
    cert, _ = make_cert(tmp_path)
    fake = FakeTC358743("pi4", "1080p30")
    fake.open()
    fake.set_edid(edid.build())
    url, ctx = relay
    cfg = config_mod.load_dict(
        {
            "relay": {"url": url, "token": TOKEN},
            "stream": {
                "ice_servers": [
                    {"urls": [f"turn:127.0.0.1:{turn}"], "username": "u", "credential": "c"}
                ]
            },
        }
    )
    env = DoctorEnv(
        cfg, root=root, ssl_context=ctx, cert_path=cert, open_bridge=lambda nodes: fake, timeout=1.0
    )
    return Box(root, env, fake)


def test_a_healthy_box_passes_every_check(box: Box) -> None:
    results = run_checks(box.env)
    assert [r.name for r in results if r.status is not OK] == [], [str(r) for r in results]
    got = box.results()
    assert got["signal"] == (OK, "1920x1080p30.00")
    assert "1920x1080p50.00" in got["edid"][1]
    assert (
        got["tls certificate"][1].startswith("SHA-256 ")
        and got["tls certificate"][1].count(":") == 31
    )
    assert set(got) >= {
        "config",
        "board",
        "hdmi bridge",
        "edid",
        "signal",
        "encoder",
        "cma",
        "gpio",
        "clock",
        "relay",
        "turn",
        "root filesystem",
        "memory",
        "temperature",
        "throttling",
        "tls certificate",
    }


FAILURES: dict[str, tuple[str, Callable[[Box], object]]] = {
    "config invalid": (
        "config",
        lambda b: setattr(b.env, "config_error", "unknown config key 'x'"),
    ),
    "driver not bound": (
        "hdmi bridge",
        lambda b: (b.root / "sys/bus/i2c/drivers/tc358743/10-000f").rmdir(),
    ),
    "no video node": (
        "hdmi bridge",
        lambda b: (b.root / "sys/class/video4linux/video0/name").write_text("uvcvideo\n"),
    ),
    "no edid": ("edid", lambda b: setattr(b.bridge, "_edid", b"")),
    "bad edid": ("edid", lambda b: setattr(b.bridge, "_edid", bytes(256))),
    "no lock": ("signal", lambda b: b.bridge.lose_lock()),
    "too fast": ("signal", lambda b: b.bridge.change_mode("1080p60")),
    "encoder missing": (
        "encoder",
        lambda b: b.reconfigure(encode={"encoder": "hardware", "device": "/dev/video99"}),
    ),
    "no cma": ("cma", lambda b: (b.root / "proc/meminfo").write_text("MemAvailable: 1200000 kB\n")),
    "tiny cma": (
        "cma",
        lambda b: (b.root / "proc/meminfo").write_text(
            "MemAvailable: 1200000 kB\nCmaTotal: 32768 kB\n"
        ),
    ),
    "pins clash": ("gpio", lambda b: b.reconfigure(panel={"led_pin": 17})),
    "pin taken by an overlay": (
        "gpio",
        lambda b: script(b.root, "gpioinfo", 'echo \'line 27:\t"GPIO27"\toutput consumer="led0"\''),
    ),
    "clock": ("clock", lambda b: script(b.root, "timedatectl", "echo no")),
    "relay token": ("relay", lambda b: b.reconfigure(relay={"token": "wrong"})),
    "relay no token": ("relay", lambda b: b.reconfigure(relay={"token": ""})),
    "relay down": ("relay", lambda b: b.reconfigure(relay={"url": "https://127.0.0.1:9"})),
    "relay http": ("relay", lambda b: b.reconfigure(relay={"url": "http://127.0.0.1:9"})),
    "relay untrusted": (
        "relay",
        lambda b: setattr(b.env, "ssl_context", ssl.create_default_context()),
    ),
    "turn silent": (
        "turn",
        lambda b: b.reconfigure(stream={"ice_servers": [{"urls": ["turn:127.0.0.1:9"]}]}),
    ),
    "root writable": (
        "root filesystem",
        lambda b: (b.root / "proc/mounts").write_text("/dev/root / ext4 rw 0 0\n"),
    ),
    "low memory": (
        "memory",
        lambda b: (b.root / "proc/meminfo").write_text(
            "MemAvailable: 50000 kB\nCmaTotal: 262144 kB\n"
        ),
    ),
    "hot": (
        "temperature",
        lambda b: (b.root / "sys/class/thermal/thermal_zone0/temp").write_text("83000\n"),
    ),
    "under-voltage": (
        "throttling",
        lambda b: script(b.root, "vcgencmd", 'echo "throttled=0x50005"'),
    ),
    "no certificate": (
        "tls certificate",
        lambda b: setattr(b.env, "cert_path", b.root / "missing.crt"),
    ),
}


@pytest.mark.parametrize("case", sorted(FAILURES))
def test_each_check_can_fail(box: Box, case: str) -> None:
    name, breaker = FAILURES[case]
    breaker(box)
    results = [r for r in run_checks(box.env) if r.name == name]
    assert any(r.status is FAIL for r in results), [str(r) for r in run_checks(box.env)]
    assert all(r.fix for r in results if r.status is FAIL)
    assert all(TOKEN not in str(r) for r in run_checks(box.env))


WARNINGS: dict[str, tuple[str, Callable[[Box], object]]] = {
    "no signal": ("signal", lambda b: b.bridge.lose_signal()),
    "no relay": ("relay", lambda b: b.reconfigure(relay={"url": "", "token": ""})),
    "no turn": ("turn", lambda b: b.reconfigure(stream={"ice_servers": []})),
    "pins held by the running appliance": (
        "gpio",
        lambda b: script(
            b.root,
            "gpioinfo",
            'echo \'\tline  17:     "GPIO17"   "lg"   input  active-low [used]\'',
        ),
    ),
    "past throttling": (
        "throttling",
        lambda b: script(b.root, "vcgencmd", 'echo "throttled=0x50000"'),
    ),
    "warm": (
        "temperature",
        lambda b: (b.root / "sys/class/thermal/thermal_zone0/temp").write_text("72000\n"),
    ),
    "not a pi": ("board", lambda b: (b.root / "proc/device-tree/model").write_bytes(b"QEMU\x00")),
}


@pytest.mark.parametrize("case", sorted(WARNINGS))
def test_warnings(box: Box, case: str) -> None:
    name, change = WARNINGS[case]
    change(box)
    assert box.results()[name][0] is WARN


def test_a_crashing_check_is_reported_not_fatal(box: Box, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(env: DoctorEnv) -> list[doctor.CheckResult]:
        raise RuntimeError("boom")

    monkeypatch.setattr(doctor, "CHECKS", (boom, doctor.check_config))
    results = run_checks(box.env)
    assert results[0].status is FAIL and "boom" in results[0].detail and results[1].status is OK


def test_pi5_needs_the_subdevice(box: Box) -> None:
    (box.root / "proc/device-tree/model").write_bytes(b"Raspberry Pi 5 Model B Rev 1.0\x00")
    (box.root / "sys/class/video4linux/video0/name").write_text("rp1-cfe-csi2_ch0\n")
    assert box.results()["hdmi bridge"][0] is FAIL
    (box.root / "sys/class/video4linux/v4l-subdev2").mkdir()
    (box.root / "sys/class/video4linux/v4l-subdev2/name").write_text("tc358743 4-000f\n")
    got = box.results()
    assert got["hdmi bridge"][0] is OK and got["encoder"] == (OK, "software (libx264)")


def test_turn_url_parsing() -> None:
    assert parse_turn_url("turn:turn.example.org") == ("turn.example.org", 3478, "udp")
    assert parse_turn_url("turn:t.example.org:443?transport=tcp") == ("t.example.org", 443, "tcp")
    assert parse_turn_url("turns:t.example.org") == ("t.example.org", 5349, "tls")
    assert parse_turn_url("turn:[::1]:3479") == ("::1", 3479, "udp")


def test_main_exit_status_and_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[capture]\nsource = 'usb'\n")
    assert doctor.main(["--config", str(bad), "--root", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert (
        "FAIL  config: 2 problems:\n- line 2: config key 'capture.source' has invalid value 'usb'"
        in out
        and "fix: correct appliance.toml" in out
    )
    assert out.rstrip().splitlines()[-1].endswith("warnings")


def test_main_exits_zero_when_nothing_fails(
    box: Box, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = doctor.DoctorEnv

    def env_like_box(cfg: Any, error: str, root: Path) -> DoctorEnv:
        e = real(
            box.env.config,
            error,
            root,
            ssl_context=box.env.ssl_context,
            cert_path=box.env.cert_path,
            open_bridge=box.env.open_bridge,
            timeout=1.0,
        )
        return e

    monkeypatch.setattr(doctor, "DoctorEnv", env_like_box)
    assert doctor.main(["--root", str(box.root)]) == 0
    assert "0 failed" in capsys.readouterr().out
