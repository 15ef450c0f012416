"""The doctor's network checks: the relay over HTTPS with the box's token, and TURN by STUN.

The relay answers ``GET <relay.url>/api/box/ping`` with 200 when the ``Authorization: Bearer``
token is a box it knows, 401/403 when not. A TURN server answers a STUN Binding Request on its
listening port (UDP, TCP or TLS as its URL says). The token never appears in the report.
"""

from __future__ import annotations

import os
import socket
import ssl
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from .env import FAIL, OK, WARN, CheckResult, DoctorEnv

RELAY_CHECK_PATH = "/api/box/ping"
STUN_MAGIC = 0x2112A442


def relay_results(env: DoctorEnv) -> list[CheckResult]:
    relay = env.config.relay
    name = "relay"
    if not relay.url:
        fix = "set relay.url and relay.token in appliance.toml for viewers outside the clinic"
        return [CheckResult(name, WARN, "none configured: LAN viewers only", fix)]
    parts = urlsplit(relay.url)
    if parts.scheme != "https" or not parts.hostname:
        return [CheckResult(name, FAIL, "relay.url must be an https:// URL", "correct relay.url")]
    if not relay.token:
        fix = "ask the relay's operator for this box's token; put it in relay.token"
        return [CheckResult(name, FAIL, "relay.token is empty", fix)]
    host = parts.netloc
    ctx = env.ssl_context or ssl.create_default_context()
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=ctx)
    )
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked above
        relay.url.rstrip("/") + RELAY_CHECK_PATH,
        headers={"Authorization": f"Bearer {relay.token}", "User-Agent": "appliance-doctor"},
    )
    try:
        with opener.open(request, timeout=env.timeout) as response:
            if response.status == 200:
                return [CheckResult(name, OK, f"{host} reachable, token accepted")]
            code = response.status
    except urllib.error.HTTPError as exc:
        code = exc.code
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, ssl.SSLCertVerificationError):
            fix = "check the clock (see 'clock' above) and the relay's certificate chain"
            return [CheckResult(name, FAIL, f"{host}: certificate not trusted", fix)]
        return [CheckResult(name, FAIL, f"cannot reach {host}: {reason}", _NET_FIX)]
    except (OSError, TimeoutError) as exc:
        return [CheckResult(name, FAIL, f"cannot reach {host}: {exc}", _NET_FIX)]
    if code in (401, 403):
        fix = "the relay does not know this token: ask its operator to (re)register the box"
        return [CheckResult(name, FAIL, f"{host} refused the box's token", fix)]
    return [CheckResult(name, FAIL, f"{host} answered HTTP {code}", "check the relay's logs")]


_NET_FIX = "check the network cable or Wi-Fi, DNS, and that outbound HTTPS (TCP 443) is allowed"


def turn_results(env: DoctorEnv) -> list[CheckResult]:
    urls = [
        url
        for server in env.config.stream.ice_servers
        for url in server.urls
        if url.startswith(("turn:", "turns:"))
    ]
    if not urls:
        fix = "add a TURN server to stream.ice_servers unless the relay hands one out"
        return [CheckResult("turn", WARN, "none configured", fix)]
    out = []
    for url in urls:
        host, port, transport = parse_turn_url(url)
        where = f"{host}:{port} ({transport})"
        try:
            stun_ping(host, port, transport, env.timeout)
        except (OSError, ValueError) as exc:
            fix = f"allow outbound {transport.upper()} {port} to the TURN server; is coturn up?"
            out.append(CheckResult("turn", FAIL, f"{where}: no answer ({exc})", fix))
        else:
            out.append(CheckResult("turn", OK, f"{where} answers"))
    return out


def parse_turn_url(url: str) -> tuple[str, int, str]:
    """``turn:host[:port][?transport=tcp]`` / ``turns:...`` to (host, port, udp|tcp|tls)."""
    scheme, _, rest = url.partition(":")
    rest, _, query = rest.partition("?")
    transport = "tls" if scheme == "turns" else "udp"
    if "transport=tcp" in query and scheme == "turn":
        transport = "tcp"
    if rest.startswith("["):  # IPv6 literal
        host, _, tail = rest[1:].partition("]")
        port_text = tail.lstrip(":")
    else:
        host, _, port_text = rest.partition(":")
    port = int(port_text) if port_text else (5349 if scheme == "turns" else 3478)
    return host, port, transport


def stun_ping(host: str, port: int, transport: str, timeout: float) -> None:
    """Send a STUN Binding Request; raise unless a matching response comes back."""
    txid = os.urandom(12)
    request = (0x0001).to_bytes(2, "big") + bytes(2) + STUN_MAGIC.to_bytes(4, "big") + txid
    if transport == "udp":
        family = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
        with socket.socket(family[0], socket.SOCK_DGRAM) as udp:
            udp.settimeout(timeout)
            udp.sendto(request, family[4])
            reply = udp.recv(2048)
    else:
        with socket.create_connection((host, port), timeout=timeout) as raw:
            stream: socket.socket = raw
            if transport == "tls":
                stream = ssl.create_default_context().wrap_socket(raw, server_hostname=host)
            stream.sendall(request)
            reply = stream.recv(2048)
    if len(reply) < 20 or reply[8:20] != txid or reply[0:2] not in (b"\x01\x01", b"\x01\x11"):
        raise ValueError("not a STUN answer")
