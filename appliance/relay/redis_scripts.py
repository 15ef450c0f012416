"""The Redis room store's steps as Lua scripts (redis_rooms.py): each step of a room is one
script, run by Redis atomically in one round trip (EVALSHA), so no other step of any process
comes between its reads and its writes.

Every script is called with ``ARGV[1]`` the key prefix, ``ARGV[2]`` the room's hash (SHA-256 of
its id: the id never reaches Redis) and ``ARGV[3]`` the calling process's clock
(``time.time()``), then its own arguments. The time is an argument, never Redis's ``TIME``: a
room's expiry is judged by the same clock as the store's reads, its count and the store in
memory (the relays' clocks agree through NTP, as the boxes' do with theirs); the keys' own expiry
(EXPIREAT) is Redis's, as before.

A script answers ``{0, ...}`` (done, with what it read) or ``{status, code}``, a refusal made
before it wrote anything. The scripts name the keys they touch themselves: the room's record,
its clients, queues and polls, the indexes (every room, a box's rooms, the gone rooms) and a
box's polls. That is for single-instance Redis only (docs/relay.md: one Redis, Sentinel or a
replica at most), not a Redis Cluster, where a script must be given all its keys in one slot.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from .store import (
    CLIENT_IDLE,
    GONE_FOR,
    MAX_EXPIRY,
    MAX_PENDING_KNOCKS,
    MAX_POLLS_PER_BOX,
    MAX_POLLS_PER_ROOM,
    MAX_QUEUE,
    MAX_ROOMS_PER_BOX,
    MAX_WAIT,
)

#: How long an index (all rooms, a box's rooms, the gone rooms) lives after its last change.
INDEX_LIFE = int(MAX_EXPIRY + GONE_FOR)
#: The refusal code a script gives for a client token the room does not know.
UNKNOWN_CLIENT = "unknown-client"

_PRELUDE = f"""
local P, H, NOW = ARGV[1], ARGV[2], tonumber(ARGV[3])
local GONE_FOR, INDEX_LIFE, CLIENT_IDLE = {GONE_FOR!r}, {INDEX_LIFE}, {CLIENT_IDLE!r}
local MAX_QUEUE, MAX_WAIT = {MAX_QUEUE}, {MAX_WAIT!r}
local function key(kind, id) return P .. kind .. ':' .. id end
local ROOM, GONE = key('room', H), key('gone', H)
local CLIENTS, TOBOX, POLLS = key('clients', H), key('tobox', H), key('polls', H)
local function inbox(handle) return key('inbox', H .. ':' .. handle) end
local function num(x) return string.format('%.17g', x) end
local function refuse(status, code) error({{status, code}}) end
-- a queued message's number and (to the box) its client, read without decoding the blob
local function n_of(entry) return tonumber(string.match(entry, '^%[%s*(%d+)')) end
local function sender_of(entry) return string.match(entry, '^%[%s*%d+%s*,%s*"([^"]*)"') end

local function meta()
  local flat = redis.call('HGETALL', ROOM)
  if #flat > 0 then
    local m = {{}}
    for i = 1, #flat, 2 do m[flat[i]] = flat[i + 1] end
    if tonumber(m.expires) > NOW then return m end
    refuse(410, 'expired')
  end
  local gone = redis.call('GET', GONE)
  if gone then refuse(410, gone) end
  refuse(404, 'unknown')
end

-- box: the hash of the box's token (compared as hashes: nothing about the token leaks)
local function owned(box)
  local m = meta()
  if m.box ~= box then refuse(404, 'unknown') end
  return m
end

local function client(handle)
  local raw = redis.call('HGET', CLIENTS, handle)
  if raw then return cjson.decode(raw) end
end

local function put(handle, c) redis.call('HSET', CLIENTS, handle, cjson.encode(c)) end

-- the client whose token hashes to ``token``
local function by_token(token)
  local flat = redis.call('HGETALL', CLIENTS)
  for i = 1, #flat, 2 do
    local c = cjson.decode(flat[i + 1])
    if c.t == token then return flat[i], c end
  end
  refuse(403, '{UNKNOWN_CLIENT}')
end

-- every key of the room expires with it (set again on each write: a list emptied is deleted)
local function expire(expires, handles)
  redis.call('EXPIREAT', ROOM, math.floor(expires + GONE_FOR) + 1)
  local at = math.floor(expires) + 60
  for _, k in ipairs({{CLIENTS, TOBOX, POLLS}}) do redis.call('EXPIREAT', k, at) end
  for _, handle in ipairs(handles) do redis.call('EXPIREAT', inbox(handle), at) end
end

local function index(name, expires)
  redis.call('ZADD', name, num(expires), H)
  redis.call('EXPIRE', name, INDEX_LIFE)
end

-- the room changed: bump its version, wake its polls on every process (side: whose polls it
-- concerns, 'b' the box's, 'v' the viewers', '*' all)
local function changed(side)
  redis.call('HINCRBY', ROOM, 'v', 1)
  redis.call('PUBLISH', key('bell', H), side)
end

-- forget the room, keeping only how it ended
local function finish(m, outcome)
  local expires = tonumber(m.expires)
  if expires <= NOW then outcome = 'expired' end
  local doomed = {{ROOM, CLIENTS, TOBOX, POLLS}}
  for _, handle in ipairs(redis.call('HKEYS', CLIENTS)) do doomed[#doomed + 1] = inbox(handle) end
  redis.call('DEL', unpack(doomed))
  local until_ = math.max(math.floor(expires + GONE_FOR), math.floor(NOW) + 1)
  redis.call('SET', GONE, outcome, 'EXAT', until_)
  redis.call('ZREM', key('rooms', 'all'), H)
  redis.call('ZREM', key('box', m.box), H)
  redis.call('ZADD', key('gone', 'all'), ARGV[3], H)
  redis.call('EXPIRE', key('gone', 'all'), INDEX_LIFE)
  redis.call('PUBLISH', key('bell', H), '*')
end

-- the box's messages after ``after`` (those up to it acknowledged: dropped): {{0, message...}}
local function box_take(after)
  local queue = redis.call('LRANGE', TOBOX, 0, -1)
  local acked = 0
  while acked < #queue and n_of(queue[acked + 1]) <= after do acked = acked + 1 end
  if acked > 0 then redis.call('LTRIM', TOBOX, acked, -1) end
  local out = {{0}}
  for i = acked + 1, #queue do out[#out + 1] = queue[i] end
  return out
end

-- a viewer's take: {{0, ready, seated, message...}}; ready 0 while there is nothing to say
local function viewer_take(m, handle, c, mine, after, final)
  local queue = redis.call('LRANGE', inbox(handle), 0, -1)
  local acked = 0
  while acked < #queue and n_of(queue[acked + 1]) <= after do acked = acked + 1 end
  local ready = c.r ~= '' or c.p ~= mine or acked < #queue
  if not ready and not final then return {{0, 0, 0}} end
  if c.r ~= '' and acked == #queue then refuse(403, c.r) end
  if acked > 0 then redis.call('LTRIM', inbox(handle), acked, -1) end
  local out = {{0, 1, (m.seat or '') == handle and 1 or 0}}
  for i = acked + 1, #queue do out[#out + 1] = queue[i] end
  return out
end

-- a message to the box: [n, "client", "kind", blob] (blob: already JSON)
local function to_box(m, handle, kind, blob)
  redis.call('RPUSH', TOBOX, '[' .. m.n .. ',"' .. handle .. '","' .. kind .. '",' .. blob .. ']')
  redis.call('LTRIM', TOBOX, -MAX_QUEUE * 8, -1)
  redis.call('HSET', ROOM, 'n', tonumber(m.n) + 1)
end
"""

_EPILOGUE = """
local ok, res = pcall(main)
if ok then return res end
if type(res) == 'table' and res.err == nil then return res end
return redis.error_reply(type(res) == 'table' and res.err or tostring(res))
"""

# ARGV[4..]: box, expires (already capped at MAX_EXPIRY from now)
_OPEN = f"""
local box, expires = ARGV[4], tonumber(ARGV[5])
local mine = key('box', box)
if redis.call('EXISTS', ROOM, GONE) > 0 then refuse(409, 'exists') end
if redis.call('ZCOUNT', mine, '(' .. ARGV[3], '+inf') >= {MAX_ROOMS_PER_BOX} then
  refuse(429, 'too-many-rooms')
end
if expires <= NOW then refuse(400, 'expired') end
redis.call('HSET', ROOM, 'box', box, 'expires', ARGV[5], 'n', 1)
expire(expires, {{}})
index(key('rooms', 'all'), expires)
index(mine, expires)
changed('*')
return {{0}}
"""

# ARGV[4..]: box, expires (capped)
_EXTEND = """
local box, expires = ARGV[4], tonumber(ARGV[5])
local m = owned(box)
if expires <= tonumber(m.expires) then refuse(400, 'bad-request') end
redis.call('HSET', ROOM, 'expires', ARGV[5])
expire(expires, redis.call('HKEYS', CLIENTS))
index(key('rooms', 'all'), expires)
index(key('box', box), expires)
changed('*')
return {0}
"""

# ARGV[4..]: box, outcome
_CLOSE = """
finish(owned(ARGV[4]), ARGV[5])
return {0}
"""

# no more: a room past its expiry ends (any process, once); one no longer held leaves the index
_REAP = """
local flat = redis.call('HGETALL', ROOM)
if #flat == 0 then
  redis.call('ZREM', key('rooms', 'all'), H)
  return {0}
end
local m = {}
for i = 1, #flat, 2 do m[flat[i]] = flat[i + 1] end
if tonumber(m.expires) <= NOW then finish(m, 'expired') end
return {0}
"""

# -> {0, box, expires}
_READ = """
local m = meta()
return {0, m.box, m.expires}
"""

# ARGV[4..]: box, after[, its poll's id, final ("1" or "")] -> {0, message...} (JSON); a poll
# that this take answers (messages, or final) ends with it
_BOX_TAKE = """
owned(ARGV[4])
local out = box_take(tonumber(ARGV[5]))
if (ARGV[6] or '') ~= '' and (#out > 1 or ARGV[7] == '1') then
  redis.call('ZREM', key('boxpolls', ARGV[4]), ARGV[6])
end
return out
"""

# ARGV[4..]: box, poll id ("": not waiting)[, after] -> {0, waiting[, message...]}: with
# ``after``, the poll's first take too, and a poll it answers (or not waiting) is never counted
_BOX_BEGIN = f"""
owned(ARGV[4])
local poll = ARGV[5]
local polls = key('boxpolls', ARGV[4])
if poll ~= '' and redis.call('ZCOUNT', polls, '(' .. ARGV[3], '+inf') >= {MAX_POLLS_PER_BOX} then
  refuse(429, 'slow-down')
end
local out = {{0, 0}}
if (ARGV[6] or '') ~= '' then
  out = box_take(tonumber(ARGV[6]))
  if #out > 1 or poll == '' then
    out[1] = 0
    table.insert(out, 2, 0)
    return out
  end
  out = {{0, 0}}
end
if poll ~= '' then
  redis.call('ZREMRANGEBYSCORE', polls, '-inf', ARGV[3])
  redis.call('ZADD', polls, num(NOW + MAX_WAIT + 5), poll)
  redis.call('EXPIRE', polls, math.floor(MAX_WAIT) + 60)
  out[2] = 1
end
return out
"""

# ARGV[4..]: box, handle, blob (JSON), seat ("1" or "")
_BOX_SEND = """
local m = owned(ARGV[4])
local handle, blob, seat = ARGV[5], ARGV[6], ARGV[7] ~= ''
local c = client(handle)
if not c then refuse(404, 'no-client') end
if redis.call('LLEN', inbox(handle)) >= MAX_QUEUE then refuse(429, 'queue-full') end
if seat then
  local previous = m.seat or ''
  if previous ~= handle and previous ~= '' then
    local p = client(previous)
    if p then
      p.r = 'taken'
      put(previous, p)
    end
  end
  redis.call('HSET', ROOM, 'seat', handle)
  c.r = ''
end
c.a = true
put(handle, c)
redis.call('RPUSH', inbox(handle), '[' .. m.n .. ',' .. blob .. ']')
expire(tonumber(m.expires), {handle})
redis.call('HSET', ROOM, 'n', tonumber(m.n) + 1)
changed('v')
return {0}
"""

# ARGV[4..]: box, handle, reason
_BOX_REFUSE = """
local m = owned(ARGV[4])
local handle = ARGV[5]
local c = client(handle)
if not c then refuse(404, 'no-client') end
c.r = ARGV[6]
put(handle, c)
if (m.seat or '') == handle then redis.call('HSET', ROOM, 'seat', '') end
changed('v')
return {0}
"""

# ARGV[4..]: blob (JSON), token hash, handle
_KNOCK = f"""
local m = meta()
local blob, token, handle = ARGV[4], ARGV[5], ARGV[6]
local idle, pending = {{}}, 0
local flat = redis.call('HGETALL', CLIENTS)
for i = 1, #flat, 2 do
  local c = cjson.decode(flat[i + 1])
  if flat[i] ~= m.seat and NOW - c.s > CLIENT_IDLE then
    idle[#idle + 1] = flat[i]
  elseif not c.a and c.r == '' then
    pending = pending + 1
  end
end
if pending >= {MAX_PENDING_KNOCKS} then refuse(429, 'slow-down') end
if redis.call('LLEN', TOBOX) >= MAX_QUEUE * 4 then refuse(429, 'slow-down') end
for _, gone in ipairs(idle) do
  redis.call('HDEL', CLIENTS, gone)
  redis.call('DEL', inbox(gone))
end
put(handle, {{t = token, r = '', a = false, s = NOW, p = 0}})
to_box(m, handle, 'knock', blob)
expire(tonumber(m.expires), {{handle}})
changed('b')
return {{0}}
"""

# ARGV[4..]: token hash, waiting ("1" or "")[, after] -> {0, handle, polls, poll id ("": not
# counted)[, ready, seated, message...]}: with ``after``, the poll's first take too (final
# unless waiting), and a poll it answers is never counted
_VIEWER_BEGIN = f"""
local m = meta()
local handle, c = by_token(ARGV[4])
local waiting = ARGV[5] ~= ''
if waiting and redis.call('ZCOUNT', POLLS, '(' .. ARGV[3], '+inf') >= {MAX_POLLS_PER_ROOM} then
  refuse(429, 'slow-down')
end
local previous = handle .. ':' .. c.p
c.p = c.p + 1
c.s = NOW
put(handle, c)
local out = {{0, handle, c.p, ''}}
if (ARGV[6] or '') ~= '' then
  local took = viewer_take(m, handle, c, c.p, tonumber(ARGV[6]), not waiting)
  for i = 2, #took do out[#out + 1] = took[i] end
  if took[2] == 1 then waiting = false end
end
if waiting then  -- by deadline: a process that dies mid-poll leaves nothing counted
  out[4] = handle .. ':' .. c.p
  redis.call('ZREMRANGEBYSCORE', POLLS, '-inf', ARGV[3])
  redis.call('ZADD', POLLS, num(NOW + MAX_WAIT + 5), out[4])
  redis.call('EXPIREAT', POLLS, math.floor(tonumber(m.expires)) + 60)
end
-- this client's previous poll ends now, if it still waits (on any process): told only then
-- (a poll that answered has ended, and telling every process of every poll costs them all)
if redis.call('ZSCORE', POLLS, previous) then changed('v') end
return out
"""

# ARGV[4..]: handle, its poll's number, after, final ("1" or "")[, its poll's id]
#   -> {0, ready, seated, message...} (JSON); a poll that this take answers ends with it
_VIEWER_TAKE = f"""
local m = meta()
local handle = ARGV[4]
local c = client(handle)
if not c then refuse(403, '{UNKNOWN_CLIENT}') end
local out = viewer_take(m, handle, c, tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7] ~= '')
if out[2] == 1 and (ARGV[8] or '') ~= '' then redis.call('ZREM', POLLS, ARGV[8]) end
return out
"""

# ARGV[4..]: token hash, blob (JSON)
_VIEWER_SEND = """
local m = meta()
local handle, c = by_token(ARGV[4])
if c.r ~= '' or (m.seat or '') ~= handle then refuse(403, 'no-seat') end
local mine = 0
for _, entry in ipairs(redis.call('LRANGE', TOBOX, 0, -1)) do
  if sender_of(entry) == handle then mine = mine + 1 end
end
if mine >= MAX_QUEUE then refuse(429, 'queue-full') end
to_box(m, handle, 'message', ARGV[5])
-- the box's queue may have been emptied (and deleted, expiry and all): again
expire(tonumber(m.expires), {handle})
changed('b')
return {0}
"""


_local = threading.local()


def thread_client(client: Any) -> Any:
    """``client`` (a redis.Redis) through one connection of its pool kept by the calling thread
    (a step's thread): a command goes out at once, without the pool's check of a connection it
    hands out (a system call per command, a fifth of a step's CPU here). The connection goes
    back to the pool when the thread ends."""
    mine: dict[int, Any] = _local.__dict__.setdefault("clients", {})
    pool = client.connection_pool
    found = mine.get(id(pool))
    if found is None or found.connection_pool is not pool:
        found = mine[id(pool)] = type(client)(connection_pool=pool, single_connection_client=True)
    return found


def _script(body: str) -> str:
    return _PRELUDE + "local function main()\n" + body + "end\n" + _EPILOGUE


@dataclass(frozen=True)
class Scripts:
    """Every step's script, registered on one client (redis-py's ``Script``: EVALSHA, loaded
    again by itself if Redis forgot it)."""

    open: Any
    extend: Any
    close: Any
    reap: Any
    read: Any
    box_take: Any
    box_begin: Any
    box_send: Any
    box_refuse: Any
    knock: Any
    viewer_begin: Any
    viewer_take: Any
    viewer_send: Any


def register(client: Any) -> Scripts:
    sources = {
        "open": _OPEN,
        "extend": _EXTEND,
        "close": _CLOSE,
        "reap": _REAP,
        "read": _READ,
        "box_take": _BOX_TAKE,
        "box_begin": _BOX_BEGIN,
        "box_send": _BOX_SEND,
        "box_refuse": _BOX_REFUSE,
        "knock": _KNOCK,
        "viewer_begin": _VIEWER_BEGIN,
        "viewer_take": _VIEWER_TAKE,
        "viewer_send": _VIEWER_SEND,
    }
    made = {name: client.register_script(_script(body)) for name, body in sources.items()}
    return Scripts(**made)
