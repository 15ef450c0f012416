"""One viewer's RTCPeerConnection: H.264 forced, keyframe requests hooked, a status channel,
RTCP tapped for rate control, a time-sized retransmission history, paced RTP; and, when the box
sends sound and the viewer's offer asks for it, an Opus track in the same media stream
(aiortc gives every track of a connection one stream id). The offer's second audio m-line is the
room's: the room microphone goes out on it and the phone's voice (talk-back) comes in, as this
box has them; the phone's talk button comes in on the status channel."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import secrets
from collections import Counter
from collections.abc import Callable
from typing import Any

from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.rtcdatachannel import RTCDataChannel

from ..config import IceServer
from ..errors import SignallingError
from . import compat, compat_sound, lipsync, twcc_compat
from .fanout import PacketFanout
from .feedback import LinkSettings, Pacer, RateMode, SenderFeedback
from .sound import EncodedAudioTrack, SoundFanout
from .talkback import TalkBack
from .track import EncodedVideoTrack
from .twccrate import ProbeRequest

logger = logging.getLogger(__name__)

#: Constrained Baseline first: what every phone decodes in hardware.
_H264_ORDER = ("42e01f", "42001f")
MAX_SDP_BYTES = 16_384
#: The m-lines an offer may hold, by kind: the picture; the scanner's sound and the room's line
#: (talk-back); the data channel. No more, and no other kind: each would cost the box a
#: transceiver (a video one a decoder, were the phone to send on it).
MAX_LINES = {"video": 1, "audio": 2, "application": 1}
#: The largest message the phone may send on the data channel (a talk button's state).
MAX_MESSAGE_BYTES = 256
#: Seconds a connection's close is waited for. Its media stop at once (aiortc stops the senders
#: and, with BUNDLE as every browser offers it, shuts the one DTLS transport down before the ICE
#: transport); what can take longer is giving back a TURN allocation whose server has gone, a
#: request aioice retransmits for about 31 s. The core must not wait that long (the staff's
#: buttons, the next session): the rest finishes in the background (the connection, and its
#: DTLS state, let go when it ends), and the server frees the allocation when it expires anyway.
CLOSE_WAIT = 2.0
_closing: set[asyncio.Future[None]] = set()


def h264_codecs() -> list[Any]:
    """aiortc's H.264 codecs (Constrained Baseline first) and their RTX, nothing else."""
    caps = RTCRtpSender.getCapabilities("video")
    h264 = [c for c in caps.codecs if c.mimeType.lower() == "video/h264"]
    h264.sort(
        key=lambda c: (
            _H264_ORDER.index(c.parameters.get("profile-level-id", ""))
            if c.parameters.get("profile-level-id", "") in _H264_ORDER
            else len(_H264_ORDER)
        )
    )
    rtx = [c for c in caps.codecs if c.mimeType.lower() == "video/rtx"]
    return h264 + rtx


def opus_codecs() -> list[Any]:
    """aiortc's Opus codec alone: the sound thread sends finished Opus packets."""
    caps = RTCRtpSender.getCapabilities("audio")
    return [c for c in caps.codecs if c.mimeType.lower() == "audio/opus"]


def ice_configuration(servers: tuple[IceServer, ...]) -> RTCConfiguration:
    """The configured ICE servers, never aiortc's public default (an empty list stays empty)."""
    return RTCConfiguration(
        iceServers=[
            RTCIceServer(
                urls=list(s.urls), username=s.username or None, credential=s.credential or None
            )
            for s in servers
        ]
    )


def _room_direction(microphone: bool, speaker: bool) -> str:
    """The room's m-line in the box's answer: the microphone sent, the phone's voice received."""
    if microphone and speaker:
        return "sendrecv"
    if microphone:
        return "sendonly"
    return "recvonly" if speaker else "inactive"


class ViewerPeer:
    """The box's side of one viewer's connection."""

    def __init__(
        self,
        fanout: PacketFanout,
        sound: SoundFanout | None,
        ice_servers: tuple[IceServer, ...],
        on_keyframe_request: Callable[[], None],
        on_closed: Callable[[ViewerPeer], None],
        link: LinkSettings | None = None,
        *,
        room: SoundFanout | None = None,
        talkback: TalkBack | None = None,
        on_talk: Callable[[ViewerPeer, bool], None] = lambda peer, on: None,
    ) -> None:
        self.id = secrets.token_urlsafe(12)
        self._link = link or LinkSettings()
        rate = self._link.rate
        #: the rate controller's inputs and the pacer (None without rate control / pacing)
        self.feedback = SenderFeedback(rate, self._link.ladder) if rate is not None else None
        self.pacer = Pacer(rate.start_bps if rate else 4_000_000) if self._link.pacing else None
        self.stalled = False
        #: the seated viewer's connection (Viewers.adopt): only its voice may reach the room
        self.adopted = False
        #: the video transport's transport-wide congestion control (None: not negotiated)
        self.twcc: twcc_compat.TransportCc | None = None
        self._sender: Any = None
        self._probe: asyncio.Future[int] | None = None
        self._fanout = fanout
        self._sound = sound
        self._audio: EncodedAudioTrack | None = None
        self._room = room
        self._room_track: EncodedAudioTrack | None = None
        self._talkback = talkback
        self._on_talk = on_talk
        self._on_keyframe_request = on_keyframe_request
        self._on_closed = on_closed
        self._pc = RTCPeerConnection(ice_configuration(ice_servers))
        self._track: EncodedVideoTrack | None = None
        self._channel: RTCDataChannel | None = None
        self._status: dict[str, Any] | None = None
        self._closed = False
        self.keyframe_requests = 0
        #: each sender's RTP-to-capture-time mapping (lip sync), once answered
        self.sync: list[lipsync.CaptureMap] = []

        @self._pc.on("datachannel")
        def on_datachannel(channel: RTCDataChannel) -> None:
            self._channel = channel
            channel.on("message", self._viewer_said)

            @channel.on("open")
            def on_open() -> None:
                self._flush_status()

            @channel.on("message")
            def on_message(message: object) -> None:
                self._heard(message)

            if channel.readyState == "open":
                self._flush_status()

        @self._pc.on("connectionstatechange")
        async def on_state() -> None:
            state = self._pc.connectionState
            logger.info("viewer %s connection %s", self.short_id, state)
            if state in ("failed", "closed"):
                await self.close()

    @property
    def short_id(self) -> str:
        return self.id[:6]

    @property
    def dtls_fingerprint(self) -> bytes:
        """The SHA-256 fingerprint of this connection's DTLS certificate, as raw bytes (what the
        box commits to in its reply, before the offer; docs/protocol.md)."""
        return compat.dtls_fingerprint(self._pc)

    @property
    def connection_state(self) -> str:
        return str(self._pc.connectionState)

    async def answer(self, offer_sdp: str) -> str:
        """Apply the viewer's offer and return the box's answer (ICE gathered, non-trickle)."""
        lines = Counter(re.findall(r"^m=(\S+)", offer_sdp, re.MULTILINE))
        if len(offer_sdp) > MAX_SDP_BYTES or not lines["video"]:
            raise SignallingError("the offer is not a video offer")
        if any(count > MAX_LINES.get(kind, 0) for kind, count in lines.items()):
            raise SignallingError("the offer asks for more media lines than the box serves")
        self._track = EncodedVideoTrack(self._fanout)
        # The transceiver and codec preferences go in before the remote description: aiortc
        # matches the offer's m-line to this transceiver, and ignores preferences set later.
        transceiver = self._pc.addTransceiver(self._track, direction="sendonly")
        transceiver.setCodecPreferences(h264_codecs())
        sender = transceiver.sender
        compat.hook_keyframe_requests(sender, self._keyframe_requested)
        compat.keep_rtp_history(sender, self._link.rtx_history_s)
        self.sync = [lipsync.sync_to_capture(sender, lipsync.VIDEO_CLOCK)]
        audio, room = self._add_sound(lines["audio"])
        feedback = self.feedback
        if feedback is not None:
            compat.tap_rtcp(sender, feedback.on_report, feedback.on_remb, feedback.on_nack)
            compat.tap_sender_reports(sender, feedback.on_sr_sent)
        playout_delay = 0
        twcc_ids = (0, 0, 0)
        try:
            with compat.host_addresses(self._link.ice_addresses):
                await self._pc.setRemoteDescription(RTCSessionDescription(offer_sdp, "offer"))
                if self._link.playout_delay:
                    playout_delay = compat.negotiate_playout_delay(transceiver, offer_sdp)
                    logger.info("playout-delay extension: %s", playout_delay or "not offered")
                for sound in (audio, room):
                    if sound is not None:
                        compat_sound.opus_stereo_fec(sound)
                if self._link.transport_cc:
                    twcc_ids = (
                        twcc_compat.negotiate_transport_cc(transceiver, offer_sdp),
                        twcc_compat.negotiate_transport_cc(audio, offer_sdp) if audio else 0,
                        twcc_compat.negotiate_transport_cc(room, offer_sdp) if room else 0,
                    )
                await self._pc.setLocalDescription(await self._pc.createAnswer())
        except Exception as exc:
            await self.close()
            raise SignallingError("the offer cannot be answered") from exc
        self._listen(room)
        # after the remote description: bundling may have given the sender another transport;
        # stamped as a packet leaves, so before the pacer's tap (which then calls the stamping)
        self._sender = sender
        if twcc_ids[0]:
            self.twcc = twcc_compat.stamp_transport(sender, twcc_ids[0])
        for line, ext_id in ((audio, twcc_ids[1]), (room, twcc_ids[2])):
            if ext_id and line is not None:  # the sound counts in the transport-wide estimate
                twcc_compat.stamp_transport(line.sender, ext_id)
        if self.twcc is not None and feedback is not None:
            feedback.use_transport_cc(self.twcc.log)
            self.twcc.on_feedback = feedback.on_transport_feedback
        logger.info(
            "viewer %s: rate control on %s (transport-cc %s)",
            self.short_id,
            feedback.mode.value if feedback is not None else "nothing",
            "negotiated" if self.twcc is not None else "not offered",
        )
        pacer = self.pacer
        compat.tap_rtp_out(
            sender,
            feedback.on_sent if feedback is not None else lambda n, rtx, seq, key: None,
            pacer.delay if pacer is not None else None,
            feedback.allow_rtx if feedback is not None else lambda n, seq: True,
            playout_delay,
            (lambda: feedback.playout_delay) if feedback is not None else lambda: b"\x00" * 3,
        )
        return str(self._pc.localDescription.sdp)

    def _add_sound(self, lines: int) -> tuple[Any, Any]:
        """The scanner's transceiver (the offer's first audio m-line) and the room's (its second:
        the room microphone out, the phone's voice in), as this box has them, for an offer of
        ``lines`` audio m-lines; a line the box has nothing for is inactive (never received:
        aiortc would otherwise receive on it, into a queue nobody reads)."""
        audio = room = None
        if lines >= 1:
            if self._sound is not None:
                self._audio = EncodedAudioTrack(self._sound)
                audio = self._pc.addTransceiver(self._audio, direction="sendonly")
                self.sync.append(lipsync.sync_to_capture(audio.sender, lipsync.AUDIO_CLOCK))
            else:
                audio = self._pc.addTransceiver("audio", direction="inactive")
            audio.setCodecPreferences(opus_codecs())
            # every sender's history forgets by age: the process-wide modulus (65536) would
            # otherwise keep 22 minutes of sound packets (a leak the soak found)
            compat.keep_rtp_history(audio.sender, self._link.rtx_history_s)
        if lines >= 2:
            direction = _room_direction(self._room is not None, self._talkback is not None)
            if self._room is not None:
                self._room_track = EncodedAudioTrack(self._room)
                room = self._pc.addTransceiver(self._room_track, direction=direction)
                self.sync.append(lipsync.sync_to_capture(room.sender, lipsync.AUDIO_CLOCK))
            else:
                room = self._pc.addTransceiver("audio", direction=direction)
            compat_sound.bundle_with_offer(room)
            room.setCodecPreferences(opus_codecs())
            compat.keep_rtp_history(room.sender, self._link.rtx_history_s)
        return audio, room

    def _listen(self, room: Any) -> None:
        """The phone's voice (the room's m-line, when the box has a speaker) goes to talk-back."""
        if room is None or self._talkback is None:
            return
        track = room.receiver.track
        if track is not None and room.currentDirection in ("sendrecv", "recvonly"):
            self._talkback.attach(track, lambda: self.adopted and not self._closed)

    @property
    def rate_mode(self) -> RateMode | None:
        """Which feedback this viewer's rate follows (None: no rate control)."""
        return self.feedback.mode if self.feedback is not None else None

    def start_probe(self, probe: ProbeRequest) -> None:
        """Send the estimator's probe (retransmissions of recent packets, paced and stamped like
        every packet), unless one is still going."""
        feedback, twcc = self.feedback, self.twcc
        if feedback is None or twcc is None or self._closed:
            return
        if self._probe is not None and not self._probe.done():
            return
        self._probe = asyncio.ensure_future(
            twcc_compat.send_probe(
                self._sender,
                twcc,
                probe.cluster,
                probe.extra_bps,
                probe.duration_s,
                feedback.grant_probe,
            )
        )

    def _keyframe_requested(self) -> None:
        self.keyframe_requests += 1
        self._on_keyframe_request()

    def _viewer_said(self, message: object) -> None:
        """The page's one message: ``{"sound": true|false}``, the co-parent's sound on or off
        (lip sync: :attr:`SenderFeedback.sound_on`). Anything else is ignored."""
        if not isinstance(message, str) or len(message) > 256:
            return
        with contextlib.suppress(ValueError):
            said = json.loads(message)
            if isinstance(said, dict) and isinstance(said.get("sound"), bool):
                if self.feedback is not None:
                    self.feedback.sound_on = said["sound"]
                logger.info("viewer %s: sound %s", self.short_id, "on" if said["sound"] else "off")

    def send_status(self, status: dict[str, Any]) -> None:
        """Tell the viewer page the session state (over the DTLS-protected data channel)."""
        self._status = status
        self._flush_status()

    def _heard(self, message: object) -> None:
        """The phone's own messages on the data channel: only ``{"type": "talk", "on": bool}``
        (docs/protocol.md); anything else is ignored."""
        if not isinstance(message, str) or len(message) > MAX_MESSAGE_BYTES:
            return
        try:
            body = json.loads(message)
        except ValueError:
            return
        if isinstance(body, dict) and body.get("type") == "talk":
            on = body.get("on")
            if isinstance(on, bool):
                self._on_talk(self, on)

    def _flush_status(self) -> None:
        channel = self._channel
        if channel is not None and channel.readyState == "open" and self._status is not None:
            channel.send(json.dumps(self._status))

    async def close(self) -> None:
        """Close the connection and drop the track. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._probe is not None:
            self._probe.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._probe
        if self._track is not None:
            self._track.stop()
        for audio in (self._audio, self._room_track):
            if audio is not None:
                audio.stop()
        try:
            await close_connection(self._pc, self.short_id)
        finally:  # closed for the box even if its caller was cancelled meanwhile
            self._on_closed(self)


async def close_connection(pc: RTCPeerConnection, viewer: str) -> None:
    """Close ``pc``, waiting :data:`CLOSE_WAIT` at most: what is left of it (a TURN server's
    unanswered release) goes on without the caller."""
    closing = asyncio.ensure_future(pc.close())
    _closing.add(closing)  # held, even if the caller is cancelled
    closing.add_done_callback(_closing.discard)
    try:
        await asyncio.wait({closing}, timeout=CLOSE_WAIT)
    finally:
        if not closing.done():  # it goes on without its caller (timed out, or cancelled)
            closing.add_done_callback(_closed_late)
    if closing.done():
        closing.result()
    else:
        logger.info("viewer %s: its connection finishes closing in the background", viewer)


def _closed_late(closing: asyncio.Future[None]) -> None:
    if not closing.cancelled() and closing.exception() is not None:  # retrieved: logged once
        logger.warning("a connection's close failed late: %s", type(closing.exception()).__name__)
