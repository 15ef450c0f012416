"""`make bench-relay`: the relay under a clinic group's load, over loopback (docs/relay.md,
docs/performance.md).

N boxes, each with a room and its long poll always waiting, and N viewers (each from an address
of its own, forwarded as a reverse proxy would: 198.18.0.0/15, the benchmarking range), each
knocked, seated and polling (20 s polls, the first of each a random 5-20 s: real boxes and phones
do not all start in the same second, so their polls do not all end in the same one). Then a
dozen sealed-size messages each way per room, paced to ``--rate`` messages/s in all, each
stamped with its sending time so the receiving side's poll measures the forwarding latency;
meanwhile, every few seconds, a staff action (a room extended)
and a new knock on a room of their own are timed (answered, and heard by the box's waiting poll).
With two processes, one is killed (SIGKILL) part way: every room and session must survive it
(counted). Then every room closes. Bounded in count (``--rooms``, ``--messages``) and time
(``--cap``). Prints a table; writes JSON and a PNG beside it (``--out``).

    python -m bench.relayload --processes 1 --rooms 1000 --rate 200
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import random
import ssl
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench import relayrig
from bench.relayrig import Stats

RETRY_STATUSES = (502, 503, 504)
POLL_WAIT = 20


def token(i: int) -> str:
    return f"load-box-token-{i:05d}-" + "t" * 20


def room_id(i: int) -> str:
    return f"loadroom-{i:06d}-abcdefgh"


def address(i: int) -> str:
    return f"198.18.{i // 250}.{i % 250 + 1}"


def box_pause(n: int) -> float:
    """The box's client after its poll's n-th failure (signalling/client.py): 0.5 s doubling
    to 15 s, jittered to 50-100 %."""
    return min(0.5 * 2**n, 15.0) * random.uniform(0.5, 1.0)  # noqa: S311 - jitter


def viewer_pause(n: int) -> float:
    """The viewer page after its poll failed (viewer.js, ``notices``): 2 s."""
    return 2.0


def send_pause(n: int) -> float:
    """Any other call tried again (a send, an open, a knock): 0.5 s."""
    return 0.5


class Client:
    """HTTP as the box's client and the viewer page do it: a connection refused or a 502-504
    (a relay process gone) is tried again shortly; anything else is the caller's."""

    def __init__(self, http: aiohttp.ClientSession, base: str, stats: Stats) -> None:
        self.http, self.base, self.stats = http, base, stats

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        tries: list[float] | None = None,
        pause: Any = send_pause,
    ) -> tuple[int, Any]:
        """``tries``, if given, gets each attempt's start (s since the rig started); a failed
        attempt waits ``pause(n)`` s before the next, as the real client of that call does."""
        for n in range(20):
            if tries is not None:
                tries.append(time.monotonic() - self.stats.origin)
            try:
                async with self.http.request(
                    method, self.base + path, json=body, headers=headers
                ) as r:
                    if r.status in RETRY_STATUSES:
                        self.stats.retry(str(r.status), method)
                        await asyncio.sleep(pause(n))
                        continue
                    if r.content_type == "application/json":
                        return r.status, await r.json()
                    return r.status, None
            except (aiohttp.ClientError, TimeoutError) as exc:
                self.stats.retry(type(exc).__name__, method)
                if not isinstance(exc, aiohttp.ServerDisconnectedError):
                    await asyncio.sleep(pause(n))  # a kept-alive connection the proxy had closed
                    # is tried again at once, as browsers and the box's client do
        self.stats.errors["gave up after retries"] += 1
        return 0, None


class Pacer:
    """Hands out send slots at ``rate`` per second, in order of asking."""

    def __init__(self, rate: float) -> None:
        self.gap, self.next = 1.0 / rate, time.monotonic()

    async def slot(self) -> None:
        now = time.monotonic()
        at = self.next = max(self.next, now) + self.gap
        await asyncio.sleep(at - now)


class Room:
    """One box, its room and (unless a probe room) its viewer."""

    def __init__(self, i: int, client: Client, stats: Stats, blob: int) -> None:
        self.i, self.client, self.stats, self.blob = i, client, stats, blob
        self.room, self.box = room_id(i), {"Authorization": f"Bearer {token(i)}"}
        self.viewer: dict[str, str] = {}
        self.handle = ""
        self.seated = asyncio.Event()
        self.knocks: asyncio.Queue[float] = asyncio.Queue()  # when a knock reached the box
        self.seen: set[str] = set()
        self.closing = False
        self.tasks: list[asyncio.Task[None]] = []

    def stamped(self, kind: str, k: int) -> str:
        head = f"{kind}:{self.i}:{k}:{time.monotonic():.6f}:"
        return head + "A" * max(0, self.blob - len(head))

    def heard(self, blob: str, tries: list[float]) -> None:
        """A message delivered by the poll whose attempts started at ``tries``."""
        kind, _, k, sent, _ = blob.split(":", 4)
        key = f"{kind}:{k}"
        if key in self.seen:
            self.stats.duplicates += 1
            return
        self.seen.add(key)
        now = time.monotonic()
        self.stats.delivered += 1
        self.stats.latencies.append((now - self.stats.origin, (now - float(sent)) * 1000))
        self.stats.traced(f"{kind}:{self.i}:{k}", float(sent), now, tries)

    async def open(self) -> None:
        expires = {"expires": time.time() + 3600}
        status, _ = await self.client.call("PUT", f"/api/box/rooms/{self.room}", expires, self.box)
        if status != 201:
            self.stats.errors[f"open {status}"] += 1
        self.tasks.append(asyncio.create_task(self.box_loop()))

    async def box_loop(self) -> None:
        after, path = 0, f"/api/box/rooms/{self.room}/messages"
        wait = random.uniform(5, POLL_WAIT)  # noqa: S311 - boxes start at different times
        while not self.closing:
            tries: list[float] = []
            status, got = await self.client.call(
                "GET", f"{path}?after={after}&wait={wait:.1f}", None, self.box, tries, box_pause
            )
            wait = POLL_WAIT
            if status == 200:
                for message in got["messages"]:
                    after = max(after, message["n"])
                    if message["kind"] == "knock":
                        await self.knocked(message)
                    else:
                        self.heard(message["blob"], tries)
            elif status in (404, 410) and not self.closing:
                self.stats.rooms_lost.add(self.i)
                return
            elif not self.closing:
                self.stats.errors[f"box poll {status}"] += 1
                await asyncio.sleep(1)

    async def knocked(self, message: dict[str, Any]) -> None:
        if message["blob"] == "probe":  # a probe's knock: the staff would see it; refuse it
            self.knocks.put_nowait(time.monotonic())
            body = {"client": message["client"], "reason": "refused"}
            await self.client.call("POST", f"/api/box/rooms/{self.room}/refuse", body, self.box)
            return
        self.handle = message["client"]
        body = {"client": self.handle, "blob": self.stamped("seat", 0), "seat": True}
        status, _ = await self.client.call(
            "POST", f"/api/box/rooms/{self.room}/messages", body, self.box
        )
        if status != 204:
            self.stats.errors[f"seat {status}"] += 1

    async def knock(self) -> None:
        headers = {"X-Forwarded-For": address(self.i)}
        status, got = await self.client.call(
            "POST", f"/api/rooms/{self.room}/knock", {"blob": "knock"}, headers
        )
        if status != 202:
            self.stats.errors[f"knock {status}"] += 1
            return
        self.viewer = {"Authorization": f"Bearer {got['client']}", **headers}
        self.tasks.append(asyncio.create_task(self.viewer_loop()))

    async def viewer_loop(self) -> None:
        after, path = 0, f"/api/rooms/{self.room}/messages"
        wait = random.uniform(5, POLL_WAIT)  # noqa: S311 - phones arrive at different times
        while not self.closing:
            tries: list[float] = []
            status, got = await self.client.call(
                "GET",
                f"{path}?after={after}&wait={wait:.1f}",
                None,
                self.viewer,
                tries,
                viewer_pause,
            )
            wait = POLL_WAIT
            if status == 200:
                for message in got["messages"]:
                    after = max(after, message["n"])
                    if message["blob"].startswith("seat:"):
                        self.seen.add("seat:0")
                        self.seated.set()
                    else:
                        self.heard(message["blob"], tries)
            elif status in (403, 404, 410) and not self.closing:
                self.stats.sessions_lost.add(self.i)
                return
            elif not self.closing:
                self.stats.errors[f"viewer poll {status}"] += 1
                await asyncio.sleep(1)

    async def exchange(self, pacer: Pacer, messages: int) -> None:
        to_box, to_viewer = (
            f"/api/rooms/{self.room}/messages",
            f"/api/box/rooms/{self.room}/messages",
        )
        for k in range(messages):
            await pacer.slot()
            self.stats.sent += 1
            status, _ = await self.client.call(
                "POST", to_box, {"blob": self.stamped("v2b", k)}, self.viewer
            )
            self.stats.answered[f"v2b:{self.i}:{k}"] = time.monotonic()
            if status != 204:
                self.stats.errors[f"viewer send {status}"] += 1
            await pacer.slot()
            self.stats.sent += 1
            body = {"client": self.handle, "blob": self.stamped("b2v", k)}
            status, _ = await self.client.call("POST", to_viewer, body, self.box)
            self.stats.answered[f"b2v:{self.i}:{k}"] = time.monotonic()
            if status != 204:
                self.stats.errors[f"box send {status}"] += 1

    async def close(self) -> None:
        self.closing = True
        status, _ = await self.client.call("DELETE", f"/api/box/rooms/{self.room}", None, self.box)
        if status != 204:
            self.stats.errors[f"close {status}"] += 1


async def probe(rooms: list[Room], n: int, stats: Stats) -> None:
    """A staff action (extend) and a new knock, timed: answered, and heard by the box's poll."""
    target = rooms[n % len(rooms)]
    started = time.monotonic()
    later = {"expires": time.time() + 7200}
    await target.client.call("PUT", f"/api/box/rooms/{target.room}/expiry", later, target.box)
    staff = time.monotonic() - started
    headers = {"X-Forwarded-For": address(60_000 + n)}
    started = time.monotonic()
    status, _ = await target.client.call(
        "POST", f"/api/rooms/{target.room}/knock", {"blob": "probe"}, headers
    )
    answered = time.monotonic() - started
    try:
        heard = await asyncio.wait_for(target.knocks.get(), 10) - started
    except TimeoutError:
        heard = float("inf")
        stats.errors["probe knock not heard"] += 1
    stats.probes.append(
        {"staff_s": staff, "knock_answered_s": answered, "knock_heard_s": heard, "status": status}
    )


async def in_batches(coros: list[Any], size: int = 50) -> None:
    for start in range(0, len(coros), size):
        await asyncio.gather(*coros[start : start + size])


async def set_up(
    args: argparse.Namespace, rooms: list[Room], probes: list[Room], stats: Stats
) -> list[Room]:
    """Every room opened (its box polling), every phone knocked and seated: those seated."""
    await in_batches([r.open() for r in rooms + probes])
    await in_batches([r.knock() for r in rooms])
    seating = [asyncio.create_task(r.seated.wait()) for r in rooms]
    await asyncio.wait(seating, timeout=args.cap)
    unseated = [r for r in rooms if not r.seated.is_set()]
    if unseated:  # a relay that could not seat them all in time: the rest go on alone
        stats.errors["viewer not seated in time"] += len(unseated)
    return [r for r in rooms if r.seated.is_set()]


async def exchange(
    args: argparse.Namespace,
    rig: relayrig.Rig,
    rooms: list[Room],
    probes: list[Room],
    stats: Stats,
    result: dict[str, Any],
) -> None:
    """The messages both ways at the rate asked, the probes, and (two processes) the kill."""
    t1 = time.monotonic()
    pacer = Pacer(args.rate)
    exchanges = asyncio.gather(*(r.exchange(pacer, args.messages) for r in rooms))
    expected = result["expected"] = len(rooms) * args.messages * 2
    n = 0
    while not exchanges.done() and time.monotonic() - t1 < args.cap:
        if (
            rig.kill
            and result["killed_at"] is None
            and time.monotonic() - t1 > (0.4 * expected / args.rate)
        ):
            result["killed_at"] = time.monotonic() - stats.origin
            result["killed"] = "relay a"
            await asyncio.to_thread(rig.kill["relay a"])
        if probes and time.monotonic() - t1 > (n + 1) * args.probe_every:
            await probe(probes, n, stats)
            n += 1
        await asyncio.sleep(0.2)
    try:
        await asyncio.wait_for(exchanges, max(1.0, args.cap - (time.monotonic() - t1)))
    except TimeoutError:  # a relay that could not keep up: measured on what it forwarded
        stats.errors["messages not sent within --cap"] += 1
    for _ in range(100):  # the last messages on their way: 10 s at most
        if stats.delivered >= expected:
            break
        await asyncio.sleep(0.1)


async def drive(args: argparse.Namespace, rig: relayrig.Rig) -> dict[str, Any]:
    sampler = relayrig.Sampler(rig.processes)
    stats = Stats(sampler.origin)
    context = ssl.create_default_context(cafile=rig.cafile) if rig.cafile else None
    # idle connections closed before HAProxy's own 10 s keep-alive closes them under a request
    connector = aiohttp.TCPConnector(
        limit=0, ssl=context if context else False, keepalive_timeout=5
    )
    timeout = aiohttp.ClientTimeout(total=POLL_WAIT + 20)
    result: dict[str, Any] = {"killed_at": None}
    traced = aiohttp.TraceConfig()  # each new connection (a TLS handshake through HAProxy)

    async def connected(*_: Any) -> None:
        stats.connects.append(round(time.monotonic() - stats.origin, 3))

    traced.on_connection_create_end.append(connected)
    async with aiohttp.ClientSession(
        connector=connector, timeout=timeout, trace_configs=[traced]
    ) as http:
        client = Client(http, rig.url, stats)
        every = [Room(i, client, stats, args.blob) for i in range(args.rooms)]
        probes = [Room(args.rooms + p, client, stats, args.blob) for p in range(args.probes)]
        sampling = asyncio.create_task(sampler.run())
        t0 = time.monotonic()
        rooms = await set_up(args, every, probes, stats)
        result["setup_s"], result["seated"] = time.monotonic() - t0, len(rooms)
        gc.freeze()  # the instrument's own rooms and connections: out of its collector's passes
        await asyncio.sleep(2)  # every poll waiting again
        sampler.sample()
        latest = sampler.samples[-1].items()
        result["connected_rss_mib"] = {k: v["rss_mib"] for k, v in latest if k != "t" and v}
        cpu0, t1 = sampler.cpu_times(), time.monotonic()
        await exchange(args, rig, rooms, probes, stats, result)
        t2, cpu1 = time.monotonic(), sampler.cpu_times()
        result["exchange_s"] = t2 - t1
        result["cpu_pct"] = {k: 100 * (cpu1[k] - cpu0.get(k, 0.0)) / (t2 - t1) for k in cpu1}
        statuses = await asyncio.gather(
            *(
                client.call("GET", f"/api/rooms/{r.room}", None, {"X-Forwarded-For": address(r.i)})
                for r in rooms
            )
        )
        await in_batches([r.close() for r in every + probes])
        tasks = [t for r in every + probes for t in r.tasks]
        await asyncio.wait(tasks, timeout=POLL_WAIT + 5)
        for task in tasks:
            task.cancel()
        sampling.cancel()
    missing = [r.i for r in rooms if len(r.seen) < 1 + 2 * args.messages]
    stats.rooms_lost |= {
        r.i for r, (status, _) in zip(rooms, statuses, strict=True) if status != 204
    }
    result["samples"] = sampler.samples
    return relayrig.report(args, stats, sampler, result, missing)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.relayload", description=__doc__)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2], choices=[1, 2])
    parser.add_argument("--server", choices=["aiohttp", "threaded"], default="aiohttp")
    parser.add_argument("--rooms", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=12, help="each way, per room")
    parser.add_argument("--rate", type=float, default=200.0, help="messages/s in all")
    parser.add_argument("--blob", type=int, default=1400, help="bytes per sealed message")
    parser.add_argument("--probes", type=int, default=4, help="rooms for the timed probes")
    parser.add_argument("--probe-every", type=float, default=5.0)
    parser.add_argument("--no-kill", action="store_true", help="two processes: kill none")
    parser.add_argument("--cap", type=float, default=600.0, help="seconds per phase at most")
    parser.add_argument("--out", default="bench/results")
    parser.add_argument("--serve-threaded", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_threaded:
        relayrig.serve_threaded(args.serve_threaded)
        return 0
    from appliance.relay.config import hash_token

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    boxes = [hash_token(token(i)) for i in range(args.rooms + args.probes)]
    for processes in args.processes:
        args.processes = processes
        with (
            tempfile.TemporaryDirectory(prefix="relayload-") as tmp,
            _rig(args, Path(tmp), boxes) as rig,
        ):
            if args.no_kill:
                rig.kill = {}
            result = asyncio.run(drive(args, rig))
            name = f"relayload-{processes}p-{args.server}-{args.rooms}"
            for log in Path(tmp).rglob("*.log"):  # the processes' own logs (no id, no address)
                kept = out / f"{name}-logs" / log.relative_to(tmp)
                kept.parent.mkdir(parents=True, exist_ok=True)
                kept.write_bytes(log.read_bytes()[-200_000:])
        relayrig.plot(out / f"{name}.png", result, result["samples"])
        (out / f"{name}.json").write_text(json.dumps(result, indent=1))
        print(f"\n== {result['title']} ({out / name}.json, .png)")
        print(relayrig.table(result))
    return 0


def _rig(args: argparse.Namespace, workdir: Path, boxes: list[str]) -> Any:
    if args.processes == 1:
        return relayrig.one_process(workdir, boxes, args.server)
    return relayrig.two_processes(workdir, boxes)


if __name__ == "__main__":
    sys.exit(main())
