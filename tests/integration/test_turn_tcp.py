"""The box's stream relayed over TURN over TCP through a real coturn, with the TCP upload capped.

The box's network lets no UDP out (the rig drops every datagram from its media address,
127.0.0.2), so its only working candidate is the relay it allocates over TCP from coturn on
127.0.0.1; the viewer (aiortc, no TURN of its own) reaches that relay over UDP. The rig caps the
box -> coturn TCP connection (its destination port is coturn's) at 1.5 Mbit/s with a 300 ms
drop-tail queue. The box starts at 4 Mbit/s: it must back off below the cap, keep frames coming
and keep its TURN/TCP send buffer within compat's bound; once it has backed off, that buffer
must drain (with ``stream.rate_control = false`` it stays full: docs/reliability.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import statistics
import struct
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from appliance.relay.config import RelayConfig, TurnConfig
from appliance.relay.turn import mint_turn
from appliance.stream import compat
from bench.netem import Impairment
from tests.support import turn
from tests.support.rig import needs_rig, require_rig
from tests.support.viewer_client import AiortcViewer
from tests.support.wait import until_async

pytestmark = [pytest.mark.slow, needs_rig]

BOX_MEDIA = "127.0.0.2"
CAP_BPS = 1_500_000


@pytest.fixture
def net() -> Iterator[Impairment]:
    require_rig()
    with Impairment(max_seconds=120) as rig:
        yield rig


def _turn_tcp_protocol(box: Any) -> Any:
    """The aioice TURN/TCP client protocol under the box's nominated ICE pair (None if the pair
    is not a relay over TCP)."""
    peer = box.box.viewers.peers[0]
    ice = peer._pc.getTransceivers()[0].sender.transport.transport
    pair = ice._connection._nominated.get(1)
    if pair is None or pair.local_candidate.type != "relay":
        return None
    inner = getattr(pair.protocol.transport, "_TurnTransport__inner_protocol", None)
    return inner if isinstance(inner, compat.aioice.turn.TurnClientTcpProtocol) else None


#: the kernel's unsent bytes on a TCP socket (linux/sockios.h)
SIOCOUTQNSD = 0x894B


class Sampler(threading.Thread):
    """Every 0.1 s: the box's target, its TURN/TCP connection's user-space send buffer (what
    compat bounds) and the kernel's unsent bytes on that socket (SIOCOUTQNSD)."""

    def __init__(self, box: Any, protocol: Any) -> None:
        super().__init__(name="turn-tcp-sampler", daemon=True)
        self.box, self.protocol = box, protocol
        self.rows: list[tuple[float, int, int, int]] = []  # (t, target bps, buffer, kernel)
        self.halt = threading.Event()

    def run(self) -> None:
        fd = self.protocol.transport.get_extra_info("socket").fileno()
        while not self.halt.wait(0.1):

            def read() -> tuple[int, int]:
                decision = self.box.box.viewers.decision
                target = decision.target_bps if decision is not None else 0
                return target, self.protocol.transport.get_write_buffer_size()

            try:
                target, buffered = self.box.call(read)
                raw = fcntl.ioctl(fd, SIOCOUTQNSD, struct.pack("i", 0))
            except Exception:  # noqa: BLE001 - the box is stopping
                return
            self.rows.append((time.monotonic(), target, buffered, struct.unpack("i", raw)[0]))

    def since(self, t: float) -> list[tuple[float, int, int, int]]:
        return [r for r in self.rows if r[0] >= t]


@contextlib.asynccontextmanager
async def _relayed(
    box_factory: Any, net: Impairment, workdir: Path, rate_control: bool
) -> AsyncIterator[tuple[Any, AiortcViewer, Sampler]]:
    """A box relaying over TURN/TCP through coturn, capped; a viewer watching; the sampler."""
    with turn.coturn(workdir) as port:
        url = f"turn:127.0.0.1:{port}?transport=tcp"
        (server,) = mint_turn(
            RelayConfig(turn=TurnConfig(secret=turn.SECRET, urls=(url,))), "r", 600
        )
        net.blackout()  # no UDP from the box's address: only TURN over TCP gets through
        net.cap_tcp(CAP_BPS / 1e6, queue_ms=300, dport=port)
        box = box_factory(
            stream={
                "ice_addresses": [BOX_MEDIA],
                "ice_servers": [server],
                "rate_control": rate_control,
            },
            encode={"bitrate": 4_000_000, "threads": 1},
        )
        compat.confine_host_addresses(("127.0.0.1",))
        viewer = AiortcViewer(box.viewer_url)
        await viewer.connect()
        sampler: Sampler | None = None
        try:
            await asyncio.to_thread(box.press)
            assert await viewer.frames(1, timeout=20), "no frame through TURN over TCP"
            protocol = box.call(lambda: _turn_tcp_protocol(box))
            assert protocol is not None, "the box's media goes through its TURN/TCP allocation"
            sampler = Sampler(box, protocol)
            sampler.start()
            yield box, viewer, sampler
        finally:
            if sampler is not None:
                sampler.halt.set()
                sampler.join(2)
            await viewer.close()


def _report(sampler: Sampler, net: Impairment, settled: list[tuple[float, int, int, int]]) -> str:
    return (
        f"send buffer at most {max(r[2] for r in sampler.rows)} B, median "
        f"{statistics.median(r[2] for r in settled)} B over the last 3 s; kernel unsent at most "
        f"{max(r[3] for r in sampler.rows)} B; dropped {compat.dropped['turn_tcp']} so far; "
        f"bottleneck {net.queue_stats(tcp=True)}"
    )


async def test_over_turn_tcp_under_a_1_5_mbit_cap_the_box_backs_off_and_its_buffer_drains(
    box_factory: Any, net: Impairment, tmp_path: Path
) -> None:
    async with _relayed(box_factory, net, tmp_path, rate_control=True) as (box, viewer, sampler):
        start = time.monotonic()
        await until_async(
            lambda: sampler.rows and 0 < sampler.rows[-1][1] < CAP_BPS,
            timeout=15.0,
            interval=0.1,
            what="a target below the 1.5 Mbit/s cap",
        )
        below_after = time.monotonic() - start
        encoder = box.call(lambda: box.box.pipeline.encoder)
        await until_async(lambda: encoder.bitrate < CAP_BPS, 2.0, 0.1, "the encoder's rate")
        await viewer.frames(1000, timeout=0.1)  # what queued before the back-off
        frames = await viewer.frames(1000, timeout=6.0)
        settled = sampler.since(time.monotonic() - 3.0)
        decision = box.call(lambda: box.box.viewers.decision)
        print(
            f"target below the cap {below_after:.1f} s after the first frame; {len(frames)} "
            f"frames in 6 s; {_report(sampler, net, settled)}; {decision}"
        )
        assert net.queue_stats(tcp=True)["sent_bytes"] > 300_000, "the media crossed the cap"
        assert len(frames) >= 45, f"{len(frames)} frames in 6 s over TURN/TCP under the cap"
        assert statistics.median(r[1] for r in settled) < CAP_BPS, "the target stays under"
        assert max(r[2] for r in sampler.rows) <= compat.TURN_TCP_MAX_BUFFER + 2048
        drained = statistics.median(r[2] for r in settled)
        assert drained < 64 * 1024, f"the send buffer did not drain: median {drained} B"


async def test_without_rate_control_the_turn_tcp_buffer_fills_to_its_bound_and_no_further(
    box_factory: Any, net: Impairment, tmp_path: Path
) -> None:
    # what the test above would see if the controller did nothing: 4 Mbit/s into 1.5
    before = compat.dropped["turn_tcp"]
    async with _relayed(box_factory, net, tmp_path, rate_control=False) as (box, viewer, sampler):
        frames = await viewer.frames(1000, timeout=6.0)
        settled = sampler.since(time.monotonic() - 3.0)
        print(f"{len(frames)} frames in 6 s; {_report(sampler, net, settled)}")
        assert box.call(lambda: box.box.viewers.decision) is None
        worst = max(r[2] for r in sampler.rows)
        # the bound: a packet is refused once TURN_TCP_MAX_BUFFER bytes wait (one may go over)
        assert compat.TURN_TCP_MAX_BUFFER - 2048 <= worst <= compat.TURN_TCP_MAX_BUFFER + 2048
        assert statistics.median(r[2] for r in settled) > 128 * 1024, "it stays full"
        assert compat.dropped["turn_tcp"] > before, "the box drops instead of queueing"
        assert frames, "frames still arrive, damaged"
        # and under it the kernel keeps little unsent (TCP_NOTSENT_LOWAT; a write may overshoot
        # it by one segment's worth of buffer): not the megabytes its own autotuning would allow
        unsent = max(r[3] for r in sampler.rows)
        assert unsent <= compat.TURN_TCP_NOTSENT_LOWAT + 64 * 1024, f"{unsent} B unsent"
