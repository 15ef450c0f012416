"""The composition root's builders, one for each part but the core's (in :mod:`appliance.box`).

:meth:`appliance.box.Box.build` calls them in order; each takes the config, the ports and parts
it needs (built before it, never bound later), and registers what it starts on the
``ExitStack`` it is given, so a failure in a later step stops what the earlier ones started,
in reverse order. Only these builders and the box read the config to construct objects.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .board import Resolved
from .capture.bridge import BridgeAudioControls
from .capture.masks import MaskStore
from .capture.registry import make_source
from .config import Config, SoundKind, SourceKind
from .core import (
    Core,
    Inbox,
    Press,
    VerifiedKnock,
    ViewerAnswered,
    ViewerBye,
    ViewerCancel,
    ViewerLeft,
    ViewerLink,
    ViewerTalk,
)
from .crypto import BoxIdentity, TlsFiles, load_or_create_tls
from .encode.keyframes import KeyframePolicy
from .encode.registry import make_encoder_factory
from .eventlog import EventLog
from .httpd.dispatch import PathDispatch
from .httpd.server import WebServer
from .panel import Panel, make_pin_factory
from .passwords import hash_password
from .relay import paths as relay_paths
from .relay.server import THREADS as RELAY_THREADS
from .relay.server import Relay, relay_config_for_box
from .seams import Seams
from .session.session import Verdict
from .signalling.client import RelayClient
from .signalling.gate import Gate, GateHooks
from .sound.alsa import AlsaSound
from .sound.base import SoundSource
from .sound.hdmi import AudioControls
from .sound.opus import OpusEncoder
from .sound.registry import make_sound_source
from .sound.speaker import AlsaSpeaker
from .state import State
from .stream.fanout import PacketFanout
from .stream.feedback import LinkSettings
from .stream.media import Media
from .stream.peers import ViewerPeer
from .stream.pipeline import MediaPipeline
from .stream.ports import MediaControl
from .stream.sound import SoundFanout, SoundPipeline
from .stream.talkback import TalkBack
from .stream.viewers import Viewers, viewer_health
from .web.app import create_app
from .web.backend import CoreBackend
from .web.facade import LoopFacade

logger = logging.getLogger(__name__)


def password_hash(config: Config) -> str:
    """The pairing password's hash: first boot writes it; a plain password given in a config
    (development) is hashed in memory here. Empty: the page refuses every login."""
    if config.pairing.password_hash:
        return config.pairing.password_hash
    if config.pairing.password:
        return hash_password(config.pairing.password)
    return ""


@dataclass(frozen=True)
class Served:
    """The web server, bound and started (the pairing page and the built-in relay behind it)."""

    web: WebServer
    dispatch: PathDispatch
    tls: TlsFiles | None
    #: what a phone or a tablet on the LAN is told (None: the address the server listens on)
    public_host: str | None


@dataclass(frozen=True)
class Signalling:
    """The box's side of the sealed protocol: the relay client, the gate, the built-in relay."""

    client: RelayClient
    gate: Gate
    relay: Relay | None
    viewer_origin: str


def build_panel(config: Config, seams: Seams, inbox: Inbox, undo: contextlib.ExitStack) -> Panel:
    """The button and the LED; a press goes to the core's queue."""
    panel = Panel(
        config.panel,
        on_press=functools.partial(post_press, inbox),
        pin_factory=seams.pin_factory or make_pin_factory(config.panel.pin_factory),
    )
    undo.callback(panel.close)
    return panel


def build_media(
    config: Config,
    resolved: Resolved,
    seams: Seams,
    keys: Path,
    loop: asyncio.AbstractEventLoop,
    undo: contextlib.ExitStack,
) -> tuple[Media, PacketFanout]:
    """The media side: source, encoder, keyframe policy, the packets' fan-out (the media thread
    publishes to it on ``loop``), the saved privacy mask, applied from the first frame, and the
    sound (``audio.source``; none for ``off``)."""
    keyframes = KeyframePolicy()
    fanout = PacketFanout(keyframes)
    source = seams.source or make_source(config, resolved, bridge=seams.bridge, root=seams.root)
    make_encoder = make_encoder_factory(
        config, resolved, device=seams.encoder_device, root=seams.root
    )
    pipeline = MediaPipeline(
        source,
        make_encoder,
        fanout.publisher(loop),
        keyframes=keyframes,
        keep_time_strip=resolved.source is SourceKind.SYNTHETIC,
    )
    undo.callback(pipeline.stop)  # closes the source
    sound = build_sound(config, loop, seams)
    if sound is not None:
        undo.callback(sound.stop)
    room = build_room_microphone(config, loop, seams.microphone)
    if room is not None:
        undo.callback(room.stop)
    talkback = None
    if config.room.speaker:
        talkback = TalkBack(functools.partial(AlsaSpeaker, config.room.speaker))
        undo.callback(talkback.stop)
    masks = MaskStore(keys / "mask.json", config.mask.rects)
    media = Media(pipeline, masks, sound, room=room, talkback=talkback)
    return media, fanout


def build_sound(
    config: Config, loop: asyncio.AbstractEventLoop, seams: Seams | None = None
) -> SoundPipeline | None:
    """The sound thread for ``audio.source`` (None: ``off``). The source is checked here (a bad
    key stops the start) and made again each time the sound starts; ``hdmi`` reads its rate
    from the bridge's controls (the seams' fake bridge in tests)."""
    audio = config.audio
    if audio.source is SoundKind.OFF:
        return None
    controls: AudioControls | None = None
    if audio.source is SoundKind.HDMI:
        fake = seams.bridge if seams is not None else None
        if isinstance(fake, AudioControls):
            controls = fake
        else:
            root = seams.root if seams is not None else Path("/")
            controls = BridgeAudioControls(config.capture.device, config.capture.subdevice, root)
    make_sound_source(audio, controls)
    return SoundPipeline(
        functools.partial(make_sound_source, audio, controls),
        OpusEncoder(audio.bitrate, dtx=audio.dtx),
        SoundFanout(),
        loop,
    )


def build_room_microphone(
    config: Config,
    loop: asyncio.AbstractEventLoop,
    make_source: Callable[[], SoundSource] | None = None,
) -> SoundPipeline | None:
    """The room microphone's sound thread (``room.microphone``; None: none), off until the
    staff switch it on (the core's hearing); the device is opened only while it sends."""
    room = config.room
    if not room.microphone:
        return None
    return SoundPipeline(
        make_source or functools.partial(AlsaSound, room.microphone),
        OpusEncoder(room.bitrate, application="voip"),
        SoundFanout(),
        loop,
        enabled=False,
    )


def build_viewers(
    config: Config, media: MediaControl, fanout: PacketFanout, inbox: Inbox
) -> Viewers:
    """The viewers' peers: they drive the media through its port."""
    picture = (config.capture.width, config.capture.height, float(config.capture.fps))
    return Viewers(
        config.stream.ice_servers,
        media,
        fanout,
        on_left=functools.partial(tell_left, inbox),
        link=LinkSettings.from_config(config.stream, config.encode.bitrate, picture),
        on_health=functools.partial(tell_health, inbox),
        on_talk=functools.partial(tell_talk, inbox),
    )


def build_server(
    config: Config, keys: Path, lan_hosts: tuple[str, ...], undo: contextlib.ExitStack
) -> Served:
    """The web server, bound and started first, so the box knows its own URL (the built-in
    relay's origin); what it serves is mounted later (:func:`build_pages`)."""
    tls = None
    if config.web.tls:
        names = (f"{config.box.name}.local", "localhost", "127.0.0.1", "::1", *lan_hosts)
        tls = load_or_create_tls(keys, names)
    # What a phone or a tablet on the LAN is told: the LAN address given (the demo's --lan),
    # else the box's mDNS name when it listens on every address (the shipped config), else
    # the address it listens on (loopback in the demo and the tests).
    public_host = lan_hosts[0] if lan_hosts else None
    if public_host is None and config.web.host in ("0.0.0.0", "::"):  # noqa: S104
        public_host = f"{config.box.name}.local"
    dispatch = PathDispatch(relay_paths.PREFIXES)
    web = WebServer(
        dispatch,
        config.web.host,
        config.web.port,
        certfile=str(tls.cert) if tls else None,
        keyfile=str(tls.key) if tls else None,
        threads=RELAY_THREADS,
    )
    web.start()
    undo.callback(web.stop)
    return Served(web, dispatch, tls, public_host)


def build_signalling(
    config: Config,
    served: Served,
    identity: BoxIdentity,
    events: EventLog,
    inbox: Inbox,
    viewers: Viewers,
    undo: contextlib.ExitStack,
) -> Signalling:
    """The relay client (to the configured relay, or to a built-in one mounted on the web
    server) and the gate that judges knocks through the core's queue."""
    relay: Relay | None = None
    web, tls = served.web, served.tls
    if config.relay.url:
        relay_url, token, ca = config.relay.url.rstrip("/"), config.relay.token, None
        viewer_origin = relay_url
    else:
        token = secrets.token_urlsafe(32)
        relay = Relay(relay_config_for_box(token)).start()
        undo.callback(relay.stop)
        served.dispatch.inner = relay.app
        # its own client reaches it on loopback (the certificate names 127.0.0.1), never at
        # the address it listens on: 0.0.0.0 on the LAN is nobody's address
        relay_url, ca = web.local_url(), (str(tls.cert) if tls else None)
        viewer_origin = web.url(served.public_host)
    client = RelayClient(relay_url, token, ca_file=ca)

    async def judge(salt: bytes, seat: bytes, name: str | None, handle: str) -> Verdict:
        verdict: Verdict = await inbox.ask(VerifiedKnock(salt, seat, name, handle))
        return verdict

    gate = Gate(
        client,
        identity,
        events,
        GateHooks(
            judge=judge,
            answered=lambda peer, code: inbox.post(ViewerAnswered(peer, code)),
            bye=lambda: inbox.post(ViewerBye()),
            leave=lambda: inbox.post(ViewerCancel()),
            make_peer=viewers.make,
            release_peer=viewers.release,
        ),
    )
    return Signalling(client, gate, relay, viewer_origin)


def follow_core(core: Core, media: Media, panel: Panel) -> None:
    """The media's mode, who hears what and the panel's LED follow the core's state."""

    def show(state: State) -> None:
        panel.show(state, core.expiring, core.hearing.microphone)

    core.add_listener(media.follow_state)
    core.add_listener(lambda old, new: show(new))
    core.add_expiry_listener(lambda expiring: show(core.state))
    core.add_hearing_listener(media.set_hearing)
    core.add_hearing_listener(lambda hearing: show(core.state))
    panel.show(State.IDLE)


def build_pages(
    config: Config,
    loop: asyncio.AbstractEventLoop,
    core: Core,
    media: MediaControl,
    events: EventLog,
    served: Served,
    warnings: int,
) -> None:
    """The staff's pairing page, mounted on the running web server (the last step: the media
    and its saved mask work without it)."""
    backend = CoreBackend(LoopFacade(loop), core, media, events.entries)
    served.dispatch.outer = create_app(
        backend,
        password_hash=password_hash(config),
        secure_cookies=served.tls is not None,
        room_name=config.box.name,
        default_minutes=config.pairing.valid_minutes,
        record=events.record,
        config_warnings=warnings,
    )


def post_press(inbox: Inbox, long: bool) -> None:
    """The panel's button (on gpiozero's thread): a press for the core's queue."""
    inbox.post_threadsafe(Press(long=long))


def tell_left(inbox: Inbox, peer: ViewerPeer) -> None:
    """A seated viewer's connection closed: the core hears of it (while it runs)."""
    if inbox.open:
        inbox.post(ViewerLeft(peer))


def tell_talk(inbox: Inbox, on: bool) -> None:
    """The seated viewer's talk button: the core decides whether the room hears it."""
    if inbox.open:
        inbox.post(ViewerTalk(on))


def tell_health(inbox: Inbox, peer: ViewerPeer, stalled: bool) -> None:
    """A viewer's path died or came back: a log line, and the core tells the staff."""
    viewer_health(peer, stalled)
    if inbox.open:
        inbox.post(ViewerLink(peer, stalled))
