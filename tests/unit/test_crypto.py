"""The box's long-term keys: made once, private on disk, stable, and what the doctor reads."""

from __future__ import annotations

import datetime
import hashlib
import logging
import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from appliance.crypto import BoxIdentity, KeyFileError, load_or_create_tls
from appliance.session import seal


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_identity_is_made_once_private_and_signs_raw(tmp_path, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    state = tmp_path / "state"
    first = BoxIdentity.load_or_create(state)
    assert mode(state) == 0o700
    assert mode(state / "identity.key") == 0o600
    assert b"PRIVATE KEY" in (state / "identity.key").read_bytes()
    again = BoxIdentity.load_or_create(state)
    assert again.public_point == first.public_point, "the identity survives a restart"
    assert len(first.public_point) == 65 and first.public_point[0] == 4
    assert first.key_hash == hashlib.sha256(first.public_point).digest()

    sig = first.sign(b"data")
    assert len(sig) == 64
    seal.load_point(first.public_point).verify(
        seal.der_signature(sig), b"data", ec.ECDSA(hashes.SHA256())
    )
    pem = (state / "identity.key").read_text()
    body = "".join(pem.splitlines()[1:-1])
    logged = caplog.text + repr(first)
    assert body[:40] not in logged and first.public_point.hex() not in logged


def test_a_loose_state_directory_and_key_are_made_private(tmp_path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o755)
    state.chmod(0o755)
    BoxIdentity.load_or_create(state)
    (state / "identity.key").chmod(0o644)
    BoxIdentity.load_or_create(state)
    assert mode(state) == 0o700 and mode(state / "identity.key") == 0o600


def test_an_unreadable_identity_is_an_error_not_a_new_key(tmp_path) -> None:
    (tmp_path / "identity.key").write_text("not a key")
    with pytest.raises(KeyFileError, match="identity.key"):
        BoxIdentity.load_or_create(tmp_path)
    other = ec.generate_private_key(ec.SECP384R1())
    (tmp_path / "identity.key").write_bytes(
        other.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(KeyFileError, match="P-256"):
        BoxIdentity.load_or_create(tmp_path)


def sans(path: Path) -> tuple[set[str], set[str]]:
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return set(san.get_values_for_type(x509.DNSName)), {
        str(a) for a in san.get_values_for_type(x509.IPAddress)
    }


def test_the_tls_certificate_names_hosts_and_addresses(tmp_path) -> None:
    tls = load_or_create_tls(tmp_path, ["box.local", "localhost", "127.0.0.1", "::1"])
    assert (tls.cert, tls.key) == (tmp_path / "tls.crt", tmp_path / "tls.key")
    assert mode(tls.key) == 0o600
    dns, ips = sans(tls.cert)
    assert dns == {"box.local", "localhost"} and ips == {"127.0.0.1", "::1"}
    cert = x509.load_pem_x509_certificate(tls.cert.read_bytes())
    key = serialization.load_pem_private_key(tls.key.read_bytes(), None)
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    assert cert.public_key() == key.public_key()
    assert cert.signature_hash_algorithm is not None
    assert cert.not_valid_after_utc - cert.not_valid_before_utc > datetime.timedelta(days=3600)
    # the label's fingerprint is what `appliance doctor` computes from the same file
    der = ssl.PEM_cert_to_DER_cert(tls.cert.read_text())
    digest = hashlib.sha256(der).hexdigest().upper()
    assert tls.fingerprint == ":".join(digest[i : i + 2] for i in range(0, 64, 2))
    # and a TLS server takes the pair
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls.cert, tls.key)


def test_the_certificate_is_kept_until_a_name_is_missing(tmp_path) -> None:
    first = load_or_create_tls(tmp_path, ["box.local", "127.0.0.1"])
    assert load_or_create_tls(tmp_path, ["BOX.local", "127.0.0.1"]) == first
    assert load_or_create_tls(tmp_path, ["127.0.0.1"]) == first, "a subset is enough"
    key = first.key.read_bytes()
    second = load_or_create_tls(tmp_path, ["192.168.1.20"])
    assert second.fingerprint != first.fingerprint
    assert first.key.read_bytes() == key, "the key stays"
    dns, ips = sans(second.cert)
    assert dns == {"box.local"} and ips == {"127.0.0.1", "192.168.1.20"}, "old names are kept"
    assert load_or_create_tls(tmp_path, ["box.local", "192.168.1.20"]) == second
    assert not list(tmp_path.glob("*.new"))


def test_a_certificate_made_with_a_wrong_clock_is_valid_once_it_is_right(tmp_path) -> None:
    in_1970 = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
    tls = load_or_create_tls(tmp_path, ["box.local"], now=in_1970)
    cert = x509.load_pem_x509_certificate(tls.cert.read_bytes())
    now = datetime.datetime.now(datetime.UTC)
    assert cert.not_valid_before_utc < in_1970
    assert cert.not_valid_after_utc > now + datetime.timedelta(days=3 * 365)
    assert load_or_create_tls(tmp_path, ["box.local"]) == tls, "still good: not remade"


def test_a_certificate_that_is_not_the_keys_is_remade(tmp_path) -> None:
    first = load_or_create_tls(tmp_path, ["box.local"])
    other = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([])
    now = datetime.datetime.now(datetime.UTC)
    foreign = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(other.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("box.local")]), critical=False)
        .sign(other, hashes.SHA256())
    )
    first.cert.write_bytes(foreign.public_bytes(serialization.Encoding.PEM))
    again = load_or_create_tls(tmp_path, ["box.local"])
    cert = x509.load_pem_x509_certificate(again.cert.read_bytes())
    key = serialization.load_pem_private_key(again.key.read_bytes(), None)
    assert cert.public_key() == key.public_key()
    first.cert.write_text("torn")
    assert load_or_create_tls(tmp_path, ["box.local"]).cert.read_text().startswith("-----BEGIN")


def test_an_expired_certificate_is_remade(tmp_path) -> None:
    first = load_or_create_tls(tmp_path, ["box.local", "10.0.0.1"])
    in_20_years = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=20 * 365)
    later = load_or_create_tls(tmp_path, ["box.local"], now=in_20_years)
    assert later.fingerprint != first.fingerprint
    assert sans(later.cert) == ({"box.local"}, {"10.0.0.1"})
