"""The box's long-term keys, kept in its state directory (the persistent partition on the box).

- The signing identity (P-256): made at first start; the hash of its public point is in every QR
  code, so whoever holds a card cannot impersonate the box (docs/protocol.md).
- The TLS certificate (self-signed, P-256) for the pairing page and, on the LAN, the viewer page;
  its SHA-256 fingerprint goes on the box's label (``appliance doctor`` prints it).

Key files are created 0600 in a 0700 directory and never logged.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from .errors import ApplianceError

logger = logging.getLogger(__name__)

IDENTITY_NAME = "identity.key"
TLS_CERT_NAME = "tls.crt"
TLS_KEY_NAME = "tls.key"
#: The box has no real-time clock and may start with a wrong date: a long validity avoids a
#: certificate "not yet valid" or expired because of it.
TLS_VALID_DAYS = 3650


class KeyFileError(ApplianceError, OSError):
    """A key file exists but cannot be read as a key."""


def _private_dir(path: Path) -> Path:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".new")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    tmp.replace(path)


def _load_key(path: Path) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
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


class BoxIdentity:
    """The box's long-term P-256 signing key."""

    def __init__(self, key: ec.EllipticCurvePrivateKey) -> None:
        self._key = key
        self.public_point = key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        self.key_hash = hashlib.sha256(self.public_point).digest()

    @classmethod
    def load_or_create(cls, state_dir: Path) -> BoxIdentity:
        path = _private_dir(Path(state_dir)) / IDENTITY_NAME
        if path.exists():
            return cls(_load_key(path))
        key = ec.generate_private_key(ec.SECP256R1())
        _write_private(path, _pem(key))
        logger.info("made the box's signing identity")
        return cls(key)

    def sign(self, data: bytes) -> bytes:
        """ECDSA P-256 SHA-256 over ``data``, as 64 raw bytes r || s (WebCrypto's format)."""
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

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


def _names(cert: x509.Certificate) -> set[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return {str(n) for n in san.get_values_for_type(x509.DNSName)} | {
        str(a) for a in san.get_values_for_type(x509.IPAddress)
    }


def load_or_create_tls(state_dir: Path, hostnames: Sequence[str]) -> TlsFiles:
    """The box's TLS certificate and key, made on first use and again when a name is missing
    (host names and IP addresses given as strings)."""
    directory = _private_dir(Path(state_dir))
    cert_path, key_path = directory / TLS_CERT_NAME, directory / TLS_KEY_NAME
    wanted = [h for h in dict.fromkeys(hostnames) if h]
    if cert_path.exists() and key_path.exists():
        try:
            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
            _load_key(key_path)
            if set(wanted) <= _names(cert):
                return TlsFiles(cert_path, key_path, fingerprint(cert))
        except (ValueError, KeyFileError):
            logger.warning("the TLS certificate is unreadable: making a new one")
    key = _load_key(key_path) if key_path.exists() else ec.generate_private_key(ec.SECP256R1())
    alt: list[x509.GeneralName] = []
    for name in wanted:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt.append(x509.DNSName(name))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, wanted[0] if wanted else "box")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=TLS_VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    _write_private(key_path, _pem(key))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    logger.info("made the box's TLS certificate")
    return TlsFiles(cert_path, key_path, fingerprint(cert))
