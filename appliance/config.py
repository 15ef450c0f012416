"""One typed, frozen configuration, loaded from TOML and validated once at start.

Every section is a frozen dataclass. The loader walks the dataclasses, so adding a setting is
adding a field: its type, default and (in ``metadata``) its bounds. Invalid values fail with a
:class:`~appliance.errors.ConfigError` that names the key, the bad value and what is allowed; an
unknown key is a :class:`~appliance.configwarnings.ConfigWarning` (a typo never stops the box)
unless it would make the box unsafe. With no file at all the defaults run the demo.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

from .configvalues import convert, kind
from .configwarnings import RETIRED, ConfigWarning, retired, unknown
from .errors import ConfigError
from .limits import MAX_MINUTES, MIN_MINUTES

T = TypeVar("T")
logger = logging.getLogger(__name__)


class SourceKind(enum.Enum):
    SYNTHETIC = "synthetic"
    FILE = "file"
    HDMI = "hdmi"
    HDMI_FAKE = "hdmi-fake"  # the HDMI path over a fake TC358743 (demo, bench, image smoke)
    CAMERA = "camera"
    AUTO = "auto"


class SoundKind(enum.Enum):
    OFF = "off"  # no sound track at all
    SYNTHETIC = "synthetic"  # a fetal-heartbeat Doppler-like sound with timed clicks
    FILE = "file"  # a clip's sound track (tests)
    ALSA = "alsa"  # any ALSA capture PCM by name (the base of the hdmi and usb kinds)
    HDMI = "hdmi"  # the TC358743's I2S card (dtoverlay=tc358743-audio), rate from the bridge
    USB = "usb"  # a USB Audio Class line-in adapter or speakerphone, by ALSA card name


class EncoderKind(enum.Enum):
    SOFTWARE = "software"
    HARDWARE = "hardware"
    HARDWARE_FAKE = "hardware-fake"  # the M2M path over a fake encoder device (demo, bench)
    AUTO = "auto"


class PinFactoryKind(enum.Enum):
    DEFAULT = "default"
    MOCK = "mock"


def _bounds(lo: float | None = None, hi: float | None = None, **extra: Any) -> dict[str, Any]:
    return {"min": lo, "max": hi, **extra}


@dataclass(frozen=True)
class BoxConfig:
    #: The room name: the box's mDNS name (``<name>.local``) and the name printed on cards.
    name: str = field(default="demo", metadata={"pattern": "hostname"})
    #: Where the box keeps its long-term keys (persistent partition on the real box).
    state_dir: str = ".state"


@dataclass(frozen=True)
class CaptureConfig:
    source: SourceKind = SourceKind.AUTO
    width: int = field(default=1920, metadata=_bounds(160, 1920, multiple=2))
    height: int = field(default=1080, metadata=_bounds(120, 1200, multiple=2))
    fps: int = field(default=30, metadata=_bounds(1, 60))
    #: For ``source = "file"``: any clip PyAV can open; it loops.
    file: str = ""
    #: For ``source = "hdmi"``: the bridge's video node ("" = find it by driver name).
    device: str = ""
    #: For ``source = "hdmi"`` on a Pi 5: the bridge's subdevice node ("" = find it).
    subdevice: str = ""
    #: For ``source = "hdmi"``: the EDID file loaded into the bridge ("" = the packaged one).
    edid: str = ""


@dataclass(frozen=True)
class EncodeConfig:
    encoder: EncoderKind = EncoderKind.AUTO
    #: Target bitrate in bit/s (ultrasound speckle compresses badly: 4 Mbit/s at 1080p).
    bitrate: int = field(default=4_000_000, metadata=_bounds(200_000, 20_000_000))
    #: Seconds between keyframes nobody asked for: a backstop (docs/reliability.md).
    keyframe_interval: float = field(default=10.0, metadata=_bounds(0.5, 30.0))
    #: Threads for the software encoder; 0 = the board's choice: 4 on a Pi 5 (1080p30 needs
    #: them), 1 elsewhere (x264's sliced threads cost more CPU than they save in latency on a PC:
    #: docs/performance.md).
    threads: int = field(default=0, metadata=_bounds(0, 16))
    #: The hardware encoder's memory-to-memory device.
    device: str = "/dev/video11"


@dataclass(frozen=True)
class AudioConfig:
    """The sound sent with the picture (docs/privacy.md: who hears what)."""

    source: SoundKind = SoundKind.OFF
    #: For ``source = "file"``: any clip PyAV can open with a sound track; it loops.
    file: str = ""
    #: For ``source = "alsa"``: the ALSA capture PCM's name (e.g. ``hw:CARD=tc358743``).
    device: str = "default"
    #: For ``hdmi`` and ``usb``: the ALSA card's name as ``arecord -l`` shows it in brackets
    #: ("" = ``tc358743`` for hdmi; a usb adapter's must be given).
    card: str = field(default="", metadata={"pattern": "alsa-card"})
    #: Send silence as a packet every 400 ms instead of every 20 ms (a silence gate: Opus DTX).
    dtx: bool = True
    #: Opus bitrate in bit/s (stereo, 48 kHz, 20 ms frames, in-band FEC).
    bitrate: int = field(default=64_000, metadata=_bounds(16_000, 256_000))


@dataclass(frozen=True)
class RoomConfig:
    """The exam room's own sound (docs/privacy.md: who hears what): a speakerphone, with its
    own echo cancellation (the box does none)."""

    #: The room microphone's ALSA capture PCM (e.g. ``plughw:CARD=Speaker``); "" = none. Never
    #: on by itself: the staff switch it on for a session, and it goes off at every pause.
    microphone: str = ""
    #: The speakerphone's ALSA playback PCM for talk-back (e.g. ``plughw:CARD=Speaker``);
    #: "" = none. Talk-back is off until the staff allow it for a session.
    speaker: str = ""
    #: Opus bitrate in bit/s for the room microphone.
    bitrate: int = field(default=32_000, metadata=_bounds(16_000, 128_000))


@dataclass(frozen=True)
class IceServer:
    urls: tuple[str, ...] = ()
    username: str = ""
    credential: str = field(default="", metadata={"secret": True})


@dataclass(frozen=True)
class StreamConfig:
    #: STUN/TURN servers handed to the peer connection. Empty by default: nothing is contacted.
    ice_servers: tuple[IceServer, ...] = ()
    #: Restrict ICE host candidates to these local addresses (empty = every interface).
    ice_addresses: tuple[str, ...] = ()
    #: Adapt the bitrate and the picture (frame rate, then size) to the viewer's link from its
    #: RTCP feedback (docs/rate-control.md); off: always ``encode.bitrate``.
    rate_control: bool = True
    #: The lowest bitrate rate control goes down to (bit/s); ``encode.bitrate`` is the highest.
    min_bitrate: int = field(default=300_000, metadata=_bounds(100_000, 4_000_000))
    #: Spread each frame's RTP packets over a few milliseconds instead of one burst.
    pacing: bool = True
    #: Seconds of sent packets kept to answer the viewer's retransmission requests (NACK).
    rtx_history: float = field(default=2.0, metadata=_bounds(1.0, 10.0))
    #: Tell the viewer's browser how long to buffer (the playout-delay RTP header extension, when
    #: it offers it): nothing on a clean link, one retransmission's worth while packets are lost
    #: (docs/performance.md, docs/reliability.md: it lowers the latency and the frames skipped).
    playout_delay: bool = True
    #: Transport-wide congestion control where the viewer's browser offers it (Chromium,
    #: Firefox): the box stamps every packet, the browser reports when each arrived, and a
    #: delay-based estimator sets the rate (docs/rate-control.md); off: receiver reports and REMB.
    transport_cc: bool = True


@dataclass(frozen=True)
class WebConfig:
    host: str = "127.0.0.1"
    port: int = field(default=8080, metadata=_bounds(0, 65535))
    #: Serve HTTPS with the box's self-signed certificate (required for a phone on the LAN).
    tls: bool = False


@dataclass(frozen=True)
class PanelConfig:
    pin_factory: PinFactoryKind = PinFactoryKind.DEFAULT
    #: BCM pin of the momentary button (to ground; the internal pull-up is used).
    button_pin: int = field(default=17, metadata=_bounds(2, 27))
    #: BCM pin of the LED (through its resistor to ground).
    led_pin: int = field(default=27, metadata=_bounds(2, 27))
    #: Seconds the button must be held for a long press (end the session).
    hold_time: float = field(default=3.0, metadata=_bounds(0.5, 10.0))
    #: Seconds of contact bounce to ignore.
    bounce_time: float = field(default=0.05, metadata=_bounds(0.0, 0.5))


@dataclass(frozen=True)
class RelayConfig:
    #: The relay's base URL (https://...), "" = the demo's built-in relay on loopback.
    url: str = field(default="", metadata={"pattern": "relay-url"})
    #: This box's token at the relay. A secret: on the real box first boot moves it from the
    #: boot partition to the persistent partition.
    token: str = ""


@dataclass(frozen=True)
class PairingConfig:
    #: The staff's pairing-page password, as given by the technician in appliance.toml.
    #: A secret: first boot hashes it into ``password_hash`` in the persistent partition and
    #: removes it from the boot partition. There is no default.
    password: str = field(
        default="",
        metadata={
            "secret": True,
            "nonblank": "nobody on the staff can log in to the pairing page with it; write the "
            'staff\'s password there: [pairing] password = "..."',
        },
    )
    #: scrypt hash of the password (written by first boot, never by hand).
    password_hash: str = ""
    #: How long a session's link stays valid, in minutes (opened ahead, e.g. at check-in).
    valid_minutes: int = field(default=90, metadata=_bounds(MIN_MINUTES, MAX_MINUTES))
    #: The longest a session may last from its opening, in minutes: "extend" (+15 min, +30 min,
    #: +1 h, offered from 10 minutes before the expiry) never pushes the expiry past it.
    max_minutes: int = field(default=180, metadata=_bounds(MIN_MINUTES, MAX_MINUTES))
    #: Admit the viewer without the staff (no verification of the code). Off by default; the
    #: box warns at start when it is on.
    pre_admit: bool = False


@dataclass(frozen=True)
class WifiConfig:
    country: str = ""
    ssid: str = ""
    #: A secret: moved off the boot partition at boot.
    password: str = field(default="", metadata={"secret": True})


@dataclass(frozen=True)
class SshConfig:
    #: OpenSSH public keys allowed to log in as the technician; empty = SSH stays off.
    authorized_keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class MaskRect:
    """A rectangle blanked before encoding, in fractions of the picture (0 to 1), so it holds at
    any resolution the scanner switches to."""

    x: float = field(default=0.0, metadata=_bounds(0.0, 1.0))
    y: float = field(default=0.0, metadata=_bounds(0.0, 1.0))
    w: float = field(default=0.0, metadata=_bounds(0.0, 1.0))
    h: float = field(default=0.0, metadata=_bounds(0.0, 1.0))


@dataclass(frozen=True)
class MaskConfig:
    """The privacy mask: where this scanner model prints the patient's name, id, birth date."""

    #: The scanner model the mask was drawn for (a label for the technician).
    scanner: str = ""
    rects: tuple[MaskRect, ...] = ()


@dataclass(frozen=True)
class LogConfig:
    level: str = field(default="INFO", metadata={"choices": ("DEBUG", "INFO", "WARNING", "ERROR")})


@dataclass(frozen=True)
class Config:
    box: BoxConfig = BoxConfig()
    capture: CaptureConfig = CaptureConfig()
    encode: EncodeConfig = EncodeConfig()
    audio: AudioConfig = AudioConfig()
    room: RoomConfig = RoomConfig()
    stream: StreamConfig = StreamConfig()
    web: WebConfig = WebConfig()
    panel: PanelConfig = PanelConfig()
    relay: RelayConfig = RelayConfig()
    pairing: PairingConfig = PairingConfig()
    wifi: WifiConfig = WifiConfig()
    ssh: SshConfig = SshConfig()
    mask: MaskConfig = MaskConfig()
    log: LogConfig = LogConfig()

    def replace(self, **sections: Any) -> Config:
        """Return a copy with some settings changed: ``cfg.replace(web={"port": 0})``."""
        return load_dict(_merge(to_dict(self), sections))


# -- loading -------------------------------------------------------------------------------------


def load(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """Load the config from a TOML file (``None``: defaults only), then apply ``overrides``."""
    data = read_toml(Path(path)) if path is not None else {}
    if overrides:
        data = _merge(data, overrides)
    return load_dict(data)


def read_toml(p: Path) -> dict[str, Any]:
    """A TOML file as plain data; a missing, unreadable or malformed file is a ConfigError."""
    text = read_text(p)
    try:
        return tomllib.loads(text.removeprefix("\ufeff"))  # a BOM from a Windows editor
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {p} is not valid TOML: {exc}") from None


#: The largest config file read (a box's is a few KiB; a relay's lists a token hash per box).
MAX_CONFIG_BYTES = 512 * 1024


def read_text(p: Path) -> str:
    """A config file's text; a missing, unreadable, oversized or non-UTF-8 file is a
    :class:`ConfigError` (nothing past :data:`MAX_CONFIG_BYTES` is read)."""
    try:
        with p.open("rb") as file:
            raw = file.read(MAX_CONFIG_BYTES + 1)
        if len(raw) > MAX_CONFIG_BYTES:
            raise ConfigError(
                f"config file {p} is over {MAX_CONFIG_BYTES // 1024} KiB: it is not a config "
                "(a box's is a few KiB); copy the sample config back and edit it"
            )
        return raw.decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {p} does not exist") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {p} is not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise ConfigError(f"config file {p} cannot be read: {exc.strerror}") from None


def load_dict(data: dict[str, Any]) -> Config:
    """Build and validate a :class:`Config` from plain data (as parsed from TOML); every problem
    at once in one :class:`ConfigError`. Warnings are logged."""
    config, problems, warnings = salvage(data)
    if problems:
        raise ConfigError(explain(problems))
    for warning in warnings:
        logger.warning("%s", warning)
    return config


def salvage(data: Any) -> tuple[Config, list[ConfigError], list[ConfigWarning]]:
    """Build a :class:`Config` from every valid part of ``data``: a key with a bad value keeps its
    default, an unknown key is left out; the problems and the warnings come back, each naming its
    key."""
    problems: list[ConfigError] = []
    warnings: list[ConfigWarning] = []
    return _build(Config, data, "", problems, warnings), problems, warnings


def explain(problems: list[Any]) -> str:
    """One message for several problems (one per line when there are more than one)."""
    if len(problems) == 1:
        return str(problems[0])
    return f"{len(problems)} problems:\n" + "\n".join(f"- {p}" for p in problems)


def build(cls: type[T], data: dict[str, Any], prefix: str = "") -> T:
    """Validate ``data`` against any frozen config dataclass ``cls`` (e.g. the relay's own);
    warnings are logged."""
    problems: list[ConfigError] = []
    warnings: list[ConfigWarning] = []
    built = _build(cls, data, prefix, problems, warnings)
    for warning in warnings:
        logger.warning("%s", warning)
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise ConfigError(explain(problems), key=problems[0].key)
    return cast(T, built)


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge two plain config dicts (``extra`` wins)."""
    return _merge(base, extra)


def to_dict(obj: Any) -> Any:
    """The config as plain TOML-able data (enums as their values)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, tuple):
        return [to_dict(v) for v in obj]
    if isinstance(obj, enum.Enum):
        return obj.value
    return obj


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _build(
    cls: Any, data: Any, prefix: str, problems: list[ConfigError], warnings: list[ConfigWarning]
) -> Any:
    """``cls`` from ``data``: what is wrong goes to ``problems`` and keeps its default."""
    where = prefix.rstrip(".") or "the top level"
    if not isinstance(data, dict):
        problems.append(ConfigError(f"{where} must be a table, got {kind(data)}", key=where))
        return cls()
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key, value in data.items():
        if f"{prefix}{key}" in RETIRED:
            warnings.append(retired(f"{prefix}{key}"))
        elif key not in fields:
            found = unknown(prefix, key, value, list(fields))
            if isinstance(found, ConfigError):
                problems.append(found)
            else:
                warnings.append(found)

    def table(tp: Any, value: Any, prefix: str) -> Any:
        """A table in a list (``[[mask.rects]]``): its problems as one, its warnings kept."""
        inner: list[ConfigError] = []
        built = _build(tp, value, prefix, inner, warnings)
        if len(inner) == 1:
            raise inner[0]
        if inner:
            raise ConfigError(explain(inner), key=inner[0].key)
        return built

    kwargs = {}
    for name, f in fields.items():
        if name not in data:
            continue
        if dataclasses.is_dataclass(hints[name]):
            kwargs[name] = _build(hints[name], data[name], f"{prefix}{name}.", problems, warnings)
            continue
        try:
            kwargs[name] = convert(hints[name], data[name], f"{prefix}{name}", f.metadata, table)
        except ConfigError as exc:
            exc.key = exc.key or f"{prefix}{name}"
            problems.append(exc)
    return cls(**kwargs)
