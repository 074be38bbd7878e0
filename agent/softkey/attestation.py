"""Packed attestation for the soft key: a throwaway root CA per process and one leaf per AAGUID whose
certificate follows the packed-format rules (OU "Authenticator Attestation", CA=false, AAGUID extension)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID, ObjectIdentifier

AAGUID_EXTENSION = ObjectIdentifier("1.3.6.1.4.1.45724.1.1.4")
_ORG = "keydesk test authenticators"


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
