"""The box's long-term keys, kept in its state directory (the persistent partition on the box).

- The signing identity (P-256): made at first start; the hash of its public point is in every QR
  code, so whoever holds a card cannot impersonate the box (docs/protocol.md).
- The TLS certificate (self-signed, P-256) for the pairing page and, on the LAN, the viewer page;
  its SHA-256 fingerprint goes on the box's label (``appliance doctor`` prints the same one, from
  the same ``tls.crt``).

Key files are written atomically, 0600, in a 0700 directory, and never logged. A key file that
cannot be read is an error, never silently replaced: the identity is pinned in printed links and
the certificate's fingerprint on the label.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import logging
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from . import files
from .errors import ApplianceError

logger = logging.getLogger(__name__)

IDENTITY_NAME = "identity.key"
TLS_CERT_NAME = "tls.crt"
TLS_KEY_NAME = "tls.key"
#: About ten years of validity.
TLS_VALID_DAYS = 3650
#: The box has no real-time clock and may start with a wrong date (the image's build time, or
#: 1970). A certificate is valid from before this date and for ten years after it or after now,
#: whichever is later, so neither a clock that starts late nor one that starts early makes it
#: "not yet valid" or expired once the clock is right.
CLOCK_FLOOR = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)


class KeyFileError(ApplianceError, OSError):
    """A key file exists but cannot be read as a key."""


def _private_dir(path: Path) -> Path:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        try:
            path.chmod(0o700)
        except OSError:
            logger.warning("the state directory is readable by others and cannot be restricted")
    return path


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` beside ``path`` then rename it in place (a power cut leaves either the old
    file or the new one), never through a link (:func:`appliance.files.write_atomic`)."""
    files.write_atomic(path, data, mode)


def _restrict(path: Path) -> None:
    """A key file readable by others (copied in by hand, say) is made 0600 (never through a
    link)."""
    try:
        files.restrict(path, 0o600)
    except OSError:
        logger.warning("%s is readable by others and cannot be restricted", path.name)


def _read(path: Path) -> bytes:
    try:
        return files.read_regular(path)
    except OSError as exc:
        raise KeyFileError(
            f"{path.name} is not a regular file: remove it to make a new one"
        ) from exc


def _load_key(path: Path) -> ec.EllipticCurvePrivateKey:
    _restrict(path)
    try:
        key = serialization.load_pem_private_key(_read(path), password=None)
    except (ValueError, TypeError) as exc:
        raise KeyFileError(
            f"{path.name} is not a private key: remove it to make a new one"
        ) from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise KeyFileError(f"{path.name} is not a P-256 key: remove it to make a new one")
    return key


def _pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _point(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


class BoxIdentity:
    """The box's long-term P-256 signing key.

    ``public_point`` is the 65-byte uncompressed point, ``key_hash`` its SHA-256 (the
    ``box_key_hash`` in every link).
    """

    def __init__(self, key: ec.EllipticCurvePrivateKey) -> None:
        self._key = key
        self.public_point = _point(key.public_key())
        self.key_hash = hashlib.sha256(self.public_point).digest()

    def __repr__(self) -> str:
        return f"BoxIdentity({self.key_hash.hex()[:8]})"

    @classmethod
    def load_or_create(cls, state_dir: Path) -> BoxIdentity:
        """The identity in ``<state_dir>/identity.key`` (PEM, PKCS#8), made on first use."""
        path = _private_dir(Path(state_dir)) / IDENTITY_NAME
        if path.exists():
            return cls(_load_key(path))
        key = ec.generate_private_key(ec.SECP256R1())
        _write_atomic(path, _pem(key), 0o600)
        logger.info("made the box's signing identity")
        return cls(key)

    def sign(self, data: bytes) -> bytes:
        """ECDSA P-256 SHA-256 over ``data``, as 64 raw bytes r || s (WebCrypto's format)."""
        r, s = decode_dss_signature(self._key.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")


@dataclass(frozen=True)
class TlsFiles:
    cert: Path
    key: Path
    #: SHA-256 of the certificate (DER), as "AB:CD:...": for the box's label.
    fingerprint: str


def fingerprint(cert: x509.Certificate) -> str:
    digest = cert.fingerprint(hashes.SHA256()).hex().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def _normal(name: str) -> str:
    """A host name in lower case, an IP address in its canonical form."""
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        return name.strip().lower().rstrip(".")


def _names(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    dns = [_normal(str(n)) for n in san.get_values_for_type(x509.DNSName)]
    return dns + [str(a) for a in san.get_values_for_type(x509.IPAddress)]


def _usable(
    cert: x509.Certificate, key: ec.EllipticCurvePrivateKey, now: datetime.datetime
) -> bool:
    if _point(key.public_key()) != _point_of(cert):
        return False
    # An expired certificate is replaced only when the clock is plausibly right.
    return now < CLOCK_FLOOR or cert.not_valid_after_utc > now


def _point_of(cert: x509.Certificate) -> bytes:
    public = cert.public_key()
    return _point(public) if isinstance(public, ec.EllipticCurvePublicKey) else b""


def load_or_create_tls(
    state_dir: Path, hostnames: Sequence[str], *, now: datetime.datetime | None = None
) -> TlsFiles:
    """The box's TLS certificate and key (``<state_dir>/tls.crt``, ``tls.key``), made on first
    use and again when a requested name is missing (host names, and IP addresses given as
    strings), when it has expired or when it does not match the key. A new certificate keeps
    the old one's names and the key, so the names asked for at different times do not make it
    change back and forth. ``now`` is for the tests (the box's clock may be wrong)."""
    directory = _private_dir(Path(state_dir))
    cert_path, key_path = directory / TLS_CERT_NAME, directory / TLS_KEY_NAME
    wanted = [n for n in dict.fromkeys(_normal(h) for h in hostnames if h.strip()) if n]
    now = now or datetime.datetime.now(datetime.UTC)
    key = _load_key(key_path) if key_path.exists() else None
    names: list[str] = []
    if key is not None and cert_path.exists():
        try:
            cert = x509.load_pem_x509_certificate(_read(cert_path))
        except (ValueError, KeyFileError):
            logger.warning("the TLS certificate is unreadable: making a new one")
        else:
            names = _names(cert)
            if set(wanted) <= set(names) and _usable(cert, key, now):
                return TlsFiles(cert_path, key_path, fingerprint(cert))
    if key is None:
        key = ec.generate_private_key(ec.SECP256R1())
        _write_atomic(key_path, _pem(key), 0o600)
    names = list(dict.fromkeys([*wanted, *names]))
    cert = _self_signed(key, names, now)
    _write_atomic(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    logger.info("made the box's TLS certificate")
    return TlsFiles(cert_path, key_path, fingerprint(cert))


def _self_signed(
    key: ec.EllipticCurvePrivateKey, names: list[str], now: datetime.datetime
) -> x509.Certificate:
    alt: list[x509.GeneralName] = []
    for name in names:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt.append(x509.DNSName(name))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0] if names else "box")])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(min(now, CLOCK_FLOOR) - datetime.timedelta(days=1))
        .not_valid_after(max(now, CLOCK_FLOOR) + datetime.timedelta(days=TLS_VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
    )
    if alt:
        builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
    return builder.sign(key, hashes.SHA256())
