"""The checks, each a function of the :class:`~.env.DoctorEnv` returning its results."""

from __future__ import annotations

import errno
import hashlib
import re
import ssl
from pathlib import Path

from .. import board as board_mod
from ..board import Board
from ..capture import edid as edid_mod
from ..capture.bridge import Bridge, BridgeNodes, V4L2Bridge, driver_bound, find_bridge
from ..clock import TIME_ERROR, adjtimex_state
from ..config import EncoderKind, SourceKind
from . import net
from .env import (
    CMA_WANTED_KB,
    FAIL,
    MEM_FAIL_KB,
    MEM_WARN_KB,
    OK,
    OUR_GPIO_CONSUMERS,
    TEMP_FAIL,
    TEMP_WARN,
    TLS_CERT_NAME,
    WARN,
    CheckResult,
    DoctorEnv,
)


def check_config(env: DoctorEnv) -> list[CheckResult]:
    warnings = [CheckResult("config", WARN, w.detail, w.fix) for w in env.config_warnings]
    if env.config_error:
        fix = "correct appliance.toml, then rerun"
        return [CheckResult("config", FAIL, env.config_error, fix), *warnings]
    return warnings or [CheckResult("config", OK, "valid")]


def check_board(env: DoctorEnv) -> list[CheckResult]:
    model = board_mod.model(env.root) or "unknown"
    if env.on_pi:
        return [CheckResult("board", OK, model)]
    return [CheckResult("board", WARN, f"{model}: not a Raspberry Pi 4/5", "run on the box")]


def _hdmi(env: DoctorEnv) -> bool:
    return board_mod.resolve(env.config, env.the_board, env.root).source is SourceKind.HDMI


def check_bridge(env: DoctorEnv) -> list[CheckResult]:
    if not _hdmi(env):
        return [CheckResult("hdmi bridge", OK, "not used (capture.source is not hdmi)")]
    bound = driver_bound(env.root)
    nodes = find_bridge(env.root, env.config.capture.device, env.config.capture.subdevice)
    overlay = "add 'dtoverlay=tc358743' to config.txt, check the CSI ribbon (both ends), reboot"
    if not bound:
        return [CheckResult("hdmi bridge", FAIL, "no tc358743 driver bound", overlay)]
    if nodes is None:
        return [
            CheckResult("hdmi bridge", FAIL, f"driver bound ({bound[0]}), no video node", overlay)
        ]
    if env.the_board is Board.PI5 and not nodes.subdev:
        return [CheckResult("hdmi bridge", FAIL, "no tc358743 subdevice node", overlay)]
    out = [CheckResult("hdmi bridge", OK, f"tc358743 on i2c {bound[0]}, {nodes.video}")]
    return out + _probe_bridge(env, nodes)


def _probe_bridge(env: DoctorEnv, nodes: BridgeNodes) -> list[CheckResult]:
    bridge = (env.open_bridge or _real_bridge)(nodes)
    try:
        bridge.open()
        loaded = bridge.get_edid()
        timings_exc: OSError | None = None
        try:
            timings = bridge.query_dv_timings()
        except OSError as exc:
            timings_exc = exc
        cable = bridge.cable_present()
    except OSError as exc:
        fix = "stop other programs using the bridge; check 'dmesg | grep tc358743'"
        return [CheckResult("edid", FAIL, f"cannot query the bridge: {exc}", fix)]
    finally:
        bridge.close()
    edid_fix = "the appliance loads it at start; by hand: v4l2-ctl --set-edid=file=<edid.bin>"
    if not loaded:
        out = [CheckResult("edid", FAIL, "no EDID loaded: sources see no display", edid_fix)]
    else:
        modes = ", ".join(str(t) for t in edid_mod.offered_modes(loaded))
        out = [
            CheckResult("edid", OK, f"loaded, offers {modes}")
            if edid_mod.valid(loaded)
            else CheckResult("edid", FAIL, "the loaded EDID is damaged", edid_fix)
        ]
    pixfmt = "RGB888" if env.the_board is Board.PI5 else "UYVY"
    if timings_exc is None:
        if timings.interlaced or timings.width > 1920:
            fix = "set the scanner's HDMI output to 1080p30/50 or 720p60"
            out.append(CheckResult("signal", FAIL, f"{timings} is not supported", fix))
        elif edid_mod.csi_rate(timings, edid_mod.BITS_PER_PIXEL[pixfmt]) > 2 * edid_mod.LANE_RATE:
            fix = "set the scanner's HDMI output to 1080p30 (or 720p60)"
            out.append(CheckResult("signal", FAIL, f"{timings} is too fast for 2 CSI lanes", fix))
        else:
            out.append(CheckResult("signal", OK, str(timings)))
    elif timings_exc.errno == errno.ENOLINK:
        what = "no cable (no +5 V)" if cable is False else "cable present, no picture"
        fix = "switch the scanner on, enable its HDMI output, check the HDMI cable"
        out.append(CheckResult("signal", WARN, f"no signal: {what}", fix))
    elif timings_exc.errno == errno.ENOLCK:
        fix = "try another HDMI cable; set the scanner's output to 1080p30/50 or 720p60"
        out.append(CheckResult("signal", FAIL, "a signal the bridge cannot lock to", fix))
    else:
        fix = "check 'dmesg | grep tc358743'"
        out.append(CheckResult("signal", FAIL, f"timings query failed: {timings_exc}", fix))
    return out


def _real_bridge(nodes: BridgeNodes) -> Bridge:
    return V4L2Bridge(nodes.video, nodes.subdev, nodes.media)


def check_encoder(env: DoctorEnv) -> list[CheckResult]:
    resolved = board_mod.resolve(env.config, env.the_board, env.root)
    device = env.config.encode.device
    if resolved.encoder is EncoderKind.HARDWARE:
        if board_mod.hardware_encoder_present(env.config, env.root):
            return [CheckResult("encoder", OK, f"hardware H.264 at {device}")]
        fix = "set encode.encoder = 'auto' (software) or check the bcm2835-codec driver"
        return [CheckResult("encoder", FAIL, f"{device} is missing", fix)]
    import av

    if "libx264" not in av.codecs_available:
        fix = "reinstall PyAV with libx264 (pip install --force-reinstall av)"
        return [CheckResult("encoder", FAIL, "software encoder libx264 missing", fix)]
    if env.the_board is Board.PI4:
        fix = "check that /dev/video11 exists (bcm2835-codec) to use the hardware encoder"
        return [CheckResult("encoder", WARN, "software (libx264) on a Pi 4", fix)]
    return [CheckResult("encoder", OK, "software (libx264)")]


def _meminfo(env: DoctorEnv) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in (env.read("proc/meminfo") or "").splitlines():
        key, _, rest = line.partition(":")
        if rest.strip().split()[:1]:
            out[key] = int(rest.split()[0])
    return out


def check_cma(env: DoctorEnv) -> list[CheckResult]:
    total = _meminfo(env).get("CmaTotal")
    fix = "in config.txt: dtoverlay=vc4-kms-v3d,cma-256 (or cma=256M in cmdline.txt), reboot"
    if total is None:
        if env.on_pi:
            return [CheckResult("cma", FAIL, "no CMA reserved", fix)]
        return [CheckResult("cma", OK, "not needed off the Pi")]
    detail = f"{total // 1024} MB reserved"
    if total < CMA_WANTED_KB:
        return [CheckResult("cma", FAIL if total < CMA_WANTED_KB // 2 else WARN, detail, fix)]
    return [CheckResult("cma", OK, detail)]


def check_gpio(env: DoctorEnv) -> list[CheckResult]:
    panel = env.config.panel
    pins = {"button": panel.button_pin, "led": panel.led_pin}
    if panel.button_pin == panel.led_pin:
        fix = "give panel.button_pin and panel.led_pin different BCM numbers"
        return [CheckResult("gpio", FAIL, "button and LED on the same pin", fix)]
    rc, out = env.run(["gpioinfo"])  # every chip: the header is gpiochip0 or gpiochip4 (Pi 5)
    if rc == 127:
        status = WARN if env.on_pi else OK
        detail = "gpioinfo not installed" + ("" if env.on_pi else " (not needed off the Pi)")
        return [CheckResult("gpio", status, detail, "apt install gpiod")]
    ours: list[str] = []
    theirs: list[str] = []
    for role, pin in pins.items():
        m = re.search(rf'"GPIO{pin}".*', out)  # by line name, whichever chip holds it
        if m is None:
            continue
        text = m.group(0)
        consumer = re.search(r'consumer="([^"]*)"|"[^"]*"\s+"([^"]+)"', text)
        if consumer and "unused" not in text:
            who = consumer.group(1) or consumer.group(2)
            (ours if who in OUR_GPIO_CONSUMERS else theirs).append(f"BCM{pin} ({role}): {who}")
    if theirs:
        fix = "remove the overlay or stop the program holding the pin, or choose other panel pins"
        return [CheckResult("gpio", FAIL, "in use by others: " + "; ".join(theirs), fix)]
    if ours:
        fix = "expected while the appliance runs; otherwise stop what holds the pins"
        return [CheckResult("gpio", WARN, "held by gpiozero: " + "; ".join(ours), fix)]
    return [CheckResult("gpio", OK, f"BCM{panel.button_pin} button, BCM{panel.led_pin} LED free")]


def check_clock(env: DoctorEnv) -> list[CheckResult]:
    fix = (
        "the Pi has no real-time clock: allow NTP (UDP 123) out; see 'timedatectl timesync-status'"
    )
    rc, out = env.run(["timedatectl", "show", "-p", "NTPSynchronized", "--value"])
    if rc == 0 and out.strip() in ("yes", "no"):
        synced = out.strip() == "yes"
    else:
        state = adjtimex_state() if env.root == Path("/") else None
        if state is None:
            return [CheckResult("clock", WARN, "cannot tell whether NTP synchronised", fix)]
        synced = state != TIME_ERROR
    if synced:
        return [CheckResult("clock", OK, "synchronised (NTP)")]
    return [CheckResult("clock", FAIL, "not synchronised: TLS and session expiry need it", fix)]


def check_relay(env: DoctorEnv) -> list[CheckResult]:

    return net.relay_results(env)


def check_turn(env: DoctorEnv) -> list[CheckResult]:

    return net.turn_results(env)


def check_root_ro(env: DoctorEnv) -> list[CheckResult]:
    for line in (env.read("proc/mounts") or "").splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[1] == "/":
            options = parts[3].split(",")
            if "ro" in options or parts[2] == "overlay":
                return [CheckResult("root filesystem", OK, f"read-only ({parts[2]})")]
            fix = "enable the overlay: sudo raspi-config nonint enable_overlayfs, reboot"
            detail = "writable: frames or keys could reach the SD card"
            return [CheckResult("root filesystem", FAIL if env.on_pi else WARN, detail, fix)]
    return [CheckResult("root filesystem", WARN, "cannot read /proc/mounts", "")]


def check_memory(env: DoctorEnv) -> list[CheckResult]:
    available = _meminfo(env).get("MemAvailable")
    fix = "stop other services; the box wants 300 MB free (2 GB Pi 4 or larger)"
    if available is None:
        return [CheckResult("memory", WARN, "cannot read /proc/meminfo", "")]
    detail = f"{available // 1024} MB available"
    if available < MEM_FAIL_KB:
        return [CheckResult("memory", FAIL, detail, fix)]
    return [CheckResult("memory", WARN if available < MEM_WARN_KB else OK, detail, fix)]


def check_thermal(env: DoctorEnv) -> list[CheckResult]:
    out = []
    fix = "use the official PSU (5.1 V 3 A / 5 A on a Pi 5); add a heatsink or fan; free the vents"
    raw = env.read("sys/class/thermal/thermal_zone0/temp")
    if raw is not None and raw.strip().lstrip("-").isdigit():
        temp = int(raw) / 1000
        status = FAIL if temp >= TEMP_FAIL else WARN if temp >= TEMP_WARN else OK
        out.append(CheckResult("temperature", status, f"{temp:.1f} °C", fix))
    rc, text = env.run(["vcgencmd", "get_throttled"])
    m = re.search(r"throttled=(0x[0-9a-fA-F]+)", text)
    if rc != 0 or m is None:
        status = WARN if env.on_pi else OK
        out.append(
            CheckResult(
                "throttling", status, "vcgencmd not available", "apt install libraspberrypi-bin"
            )
        )
        return out
    bits = int(m.group(1), 16)
    names = {0: "under-voltage", 1: "frequency capped", 2: "throttled", 3: "soft temperature limit"}
    now = [n for b, n in names.items() if bits & (1 << b)]
    past = [n for b, n in names.items() if bits & (1 << (b + 16))]
    if now:
        out.append(CheckResult("throttling", FAIL, "now: " + ", ".join(now), fix))
    elif past:
        out.append(CheckResult("throttling", WARN, "since boot: " + ", ".join(past), fix))
    else:
        out.append(CheckResult("throttling", OK, "never throttled"))
    return out


def check_certificate(env: DoctorEnv) -> list[CheckResult]:
    path = env.cert_path or Path(env.config.box.state_dir) / TLS_CERT_NAME
    fix = "start the appliance once: it makes its certificate on first boot"
    try:
        pem = path.read_text()
        der = ssl.PEM_cert_to_DER_cert(pem)
    except (OSError, ValueError) as exc:
        return [CheckResult("tls certificate", FAIL, f"cannot read {path.name}: {exc}", fix)]
    digest = hashlib.sha256(der).hexdigest().upper()
    pretty = ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))
    return [CheckResult("tls certificate", OK, f"SHA-256 {pretty} (for the label)")]
