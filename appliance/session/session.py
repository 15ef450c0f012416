"""One exam's session: its room, its secret, its validity window and its one seat. Pure logic.

A session is opened by the staff (page or button), lives until its end (long press, page or
expiry; a viewer leaving ends nothing), and is then forgotten: :meth:`Session.forget`
drops the secret, the seat and the viewer's name, and the room id is never used again.

The seat (docs/protocol.md, "The seat") is the viewer's ECDH public key. The first knock the box
accepts takes it; the same key knocking again is the same phone coming back; any other key is
refused while the seat is held. Refusing a viewer frees the seat and bans that key.
"""

from __future__ import annotations

import enum
import hashlib
import time
from dataclasses import dataclass, field

from .seal import SeenSalts, new_room_id, new_secret

#: Salts remembered per session to refuse a replayed knock, for the keys that held the seat and
#: for every other key, each (the oldest forgotten first: replay protection is never a lock).
MAX_SALTS = 4096
#: Other phones turned away while the seat was held, remembered (for the staff's page) at most.
MAX_TURNED_AWAY = 16


class Verdict(enum.Enum):
    """What to do with a knock whose seal verified."""

    NEW = "new"  # nobody holds the seat: this viewer takes it
    RETURNING = "returning"  # the seat's holder is back (a drop, a reload)
    TAKEN = "taken"  # someone else holds the seat
    BANNED = "banned"  # the staff refused this viewer: the relay tells it "refused"
    REPLAY = "replay"  # this salt was seen before: a replayed knock


@dataclass
class Viewer:
    """Whoever holds the seat. ``name`` is what they typed (optional), shown to the staff only."""

    seat: bytes
    name: str | None = field(default=None, repr=False)
    code: str | None = None
    admitted: bool = False
    connected: bool = False
    #: When (monotonic) the viewer's connection dropped; None while connected or before.
    left_at: float | None = None
    #: The picture is not reaching them (no receiver report for ``vocab.STALL_AFTER_S``): the
    #: box waits for the path to come back or for the phone to reconnect.
    stalled: bool = False
    #: The relay's handle for this viewer's current connection attempt.
    client: str = ""
    #: When (wall clock) the current code was made; ``renewed``: this seat had a code before
    #: (every connection makes a new one: a reload or a reconnection shows a new code).
    code_at: float | None = None
    renewed: bool = False

    def new_code(self, code: str) -> None:
        """The viewer's connection was answered: ``code`` is the one both sides show now."""
        self.renewed = self.code_at is not None
        self.code, self.code_at = code, time.time()


@dataclass
class Session:
    """A session's secrets and seat, held in memory only."""

    room: str = field(repr=False)
    secret: bytes = field(repr=False)
    box_key_hash: bytes
    #: End of the validity window, seconds since the epoch (wall clock: it is printed on the card).
    expires: int
    opened_at: float = field(default_factory=time.monotonic)
    #: When it opened, wall clock (the furthest extension counts from it).
    opened_wall: float = field(default_factory=time.time)
    #: The staff extended it (as often as they like, up to the longest a session may last).
    extended: bool = False
    viewer: Viewer | None = None
    _salts: SeenSalts = field(default_factory=lambda: SeenSalts(MAX_SALTS), repr=False)
    _seat_salts: SeenSalts = field(default_factory=lambda: SeenSalts(MAX_SALTS), repr=False)
    _banned: set[bytes] = field(default_factory=set, repr=False)
    #: Other phones' keys turned away ("taken") since they last held the seat.
    turned_away: set[bytes] = field(default_factory=set, repr=False)

    @classmethod
    def new(cls, box_key_hash: bytes, valid_minutes: int, now: float | None = None) -> Session:
        now = time.time() if now is None else now
        return cls(
            room=new_room_id(),
            secret=new_secret(),
            box_key_hash=box_key_hash,
            expires=int(now + valid_minutes * 60),
            opened_wall=now,
        )

    @property
    def short_id(self) -> str:
        """For logs: a short hash of the room id, never the id itself."""
        return hashlib.sha256(self.room.encode()).hexdigest()[:8]

    def expired(self, now: float | None = None) -> bool:
        return (time.time() if now is None else now) >= self.expires

    def judge(self, salt: bytes, seat: bytes) -> Verdict:
        """Decide on a knock whose seal verified, and remember its salt: with the seat's keys'
        if this key gets or holds the seat, else with every other key's. Knocks from other keys,
        however many, never push the seat's own salts out: its phone always gets back in, and
        its old knocks stay refused as replays."""
        if salt in self._seat_salts or salt in self._salts:
            return Verdict.REPLAY
        if seat in self._banned:
            verdict = Verdict.BANNED
        elif self.viewer is None:
            verdict = Verdict.NEW
        else:
            verdict = Verdict.RETURNING if self.viewer.seat == seat else Verdict.TAKEN
        seated = verdict in (Verdict.NEW, Verdict.RETURNING)
        (self._seat_salts if seated else self._salts).add(salt)
        return verdict

    def seat(self, seat: bytes, name: str | None, client: str) -> Viewer:
        """Give the seat to ``seat`` (or refresh its holder's connection handle)."""
        self.turned_away.discard(seat)
        if self.viewer is None or self.viewer.seat != seat:
            self.viewer = Viewer(seat=seat, name=name)
        else:
            self.viewer.name = name or self.viewer.name
        self.viewer.client = client
        self.viewer.code = None
        return self.viewer

    def turn_away(self, seat: bytes) -> bool:
        """Another phone knocked while the seat was held: remember it for the staff (True the
        first time for that key)."""
        if seat in self.turned_away or len(self.turned_away) >= MAX_TURNED_AWAY:
            return False
        self.turned_away.add(seat)
        return True

    def refuse(self) -> None:
        """The staff refused the viewer: free the seat, ban that key for this session."""
        if self.viewer is not None:
            self._banned.add(self.viewer.seat)
            self.viewer = None

    def release(self) -> None:
        """Let another phone in: the seat is free for the next knock; nobody is banned."""
        self.viewer = None

    def forget(self) -> None:
        """Drop every secret, key and name. (Python cannot scrub memory: the references go, and
        the objects are freed; nothing of them was ever written to disk or to a log.)"""
        self.secret = b""
        self.viewer = None
        self._salts.clear()
        self._seat_salts.clear()
        self._banned.clear()
        self.turned_away.clear()
