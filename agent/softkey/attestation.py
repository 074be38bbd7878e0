"""Packed attestation for the soft key: a root CA and one leaf per AAGUID whose certificate follows the
packed-format rules (OU "Authenticator Attestation", CA=false, AAGUID extension).

The root is a throwaway one per process, unless KEYDESK_SOFTKEY_CA_DIR names a directory holding
`attestation-root.pem` and `attestation-root.key` (an EC CA certificate and its unencrypted PKCS#8 key):
then that root signs the leaves, so another process (`keydesk demo`) can trust the soft key's model."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID, ObjectIdentifier

AAGUID_EXTENSION = ObjectIdentifier("1.3.6.1.4.1.45724.1.1.4")
_ORG = "keydesk test authenticators"
CA_DIR_ENV = "KEYDESK_SOFTKEY_CA_DIR"
CA_CERT_FILE, CA_KEY_FILE = "attestation-root.pem", "attestation-root.key"


class AuthorityError(ValueError):
    """The root named by KEYDESK_SOFTKEY_CA_DIR is missing or unusable."""


@dataclass(frozen=True)
class Authority:
    certificate: x509.Certificate
    private_key: ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class AttestationKey:
    certificate_der: bytes
    private_key: ec.EllipticCurvePrivateKey

    def sign(self, data: bytes) -> bytes:
        return self.private_key.sign(data, ec.ECDSA(hashes.SHA256()))


def _name(common_name: str, unit: str | None = None) -> x509.Name:
    parts = [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "SE"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, _ORG),
    ]
    if unit:
        parts.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit))
    parts.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(parts)


def _validity(builder: x509.CertificateBuilder) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return builder.not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=3650))


@cache
def authority() -> Authority:
    """The root that signs the leaves: the one in KEYDESK_SOFTKEY_CA_DIR when set, else a throwaway."""
    where = os.environ.get(CA_DIR_ENV, "").strip()
    return load_authority(Path(where)) if where else _throwaway_authority()


def load_authority(directory: Path) -> Authority:
    """A root CA from `directory` (see the module docstring); refuses anything that could not sign leaves."""
    try:
        cert = x509.load_pem_x509_certificate((directory / CA_CERT_FILE).read_bytes())
        key = serialization.load_pem_private_key((directory / CA_KEY_FILE).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise AuthorityError(f"{CA_DIR_ENV}={directory}: cannot read the attestation root ({exc})") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise AuthorityError(f"{CA_DIR_ENV}={directory}: the root's key must be an EC key")
    if cert.public_key() != key.public_key():
        raise AuthorityError(f"{CA_DIR_ENV}={directory}: the key does not belong to the certificate")
    try:
        is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    if not is_ca:
        raise AuthorityError(
            f"{CA_DIR_ENV}={directory}: the certificate is not a CA (BasicConstraints ca=true)"
        )
    return Authority(cert, key)


def _throwaway_authority() -> Authority:
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name("keydesk soft key attestation root")
    builder = (
        _validity(x509.CertificateBuilder())
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
    )
    return Authority(builder.sign(key, hashes.SHA256()), key)


@cache
def attestation_key(aaguid: bytes) -> AttestationKey:
    root = authority()
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        _validity(x509.CertificateBuilder())
        .subject_name(_name("keydesk soft key", "Authenticator Attestation"))
        .issuer_name(root.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.UnrecognizedExtension(AAGUID_EXTENSION, b"\x04\x10" + aaguid), critical=False)
    )
    cert = builder.sign(root.private_key, hashes.SHA256())
    return AttestationKey(cert.public_bytes(serialization.Encoding.DER), key)


def root_certificate_pem() -> bytes:
    """The root to trust in verifiers (py_webauthn's pem_root_certs_bytes_by_fmt)."""
    return authority().certificate.public_bytes(serialization.Encoding.PEM)


def root_certificate_der() -> bytes:
    """The root to trust in python-fido2's AttestationVerifier.ca_lookup."""
    return authority().certificate.public_bytes(serialization.Encoding.DER)
