"""KEYDESK_SOFTKEY_CA_DIR: the soft key's attestation root can come from a directory (so `keydesk demo`,
another process, can trust it); unset, the throwaway root per process is unchanged."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from agent.softkey.attestation import (
    CA_CERT_FILE,
    CA_DIR_ENV,
    CA_KEY_FILE,
    AuthorityError,
    load_authority,
)
from bot.sandbox.demo_desk import make_attestation_root

# prints the root in use and checks the leaf for the soft key's AAGUID chains to it
PROBE = """
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives import hashes
from agent.softkey import SOFT_AAGUID
from agent.softkey.attestation import attestation_key, authority, root_certificate_pem
root = authority().certificate
leaf = x509.load_der_x509_certificate(attestation_key(bytes(SOFT_AAGUID)).certificate_der)
root.public_key().verify(leaf.signature, leaf.tbs_certificate_bytes, ec.ECDSA(hashes.SHA256()))
assert leaf.issuer == root.subject
print(root_certificate_pem().decode(), end="")
"""


def probe(ca_dir: Path | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != CA_DIR_ENV}
    if ca_dir is not None:
        env[CA_DIR_ENV] = str(ca_dir)
    return subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_the_root_in_the_directory_signs_the_leaves(tmp_path: Path) -> None:
    pem = make_attestation_root(tmp_path)
    done = probe(tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.encode() == pem


def test_without_the_variable_each_process_makes_its_own_root() -> None:
    first, second = probe(None), probe(None)
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert "BEGIN CERTIFICATE" in first.stdout and first.stdout != second.stdout


def test_a_usable_root_loads(tmp_path: Path) -> None:
    pem = make_attestation_root(tmp_path)
    root = load_authority(tmp_path)
    assert root.certificate.public_bytes(serialization.Encoding.PEM) == pem


def test_a_missing_root_is_refused_clearly(tmp_path: Path) -> None:
    with pytest.raises(AuthorityError, match=CA_DIR_ENV):
        load_authority(tmp_path)


def test_a_key_of_another_certificate_is_refused(tmp_path: Path) -> None:
    make_attestation_root(tmp_path)
    other = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / CA_KEY_FILE).write_bytes(
        other.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    with pytest.raises(AuthorityError, match="does not belong"):
        load_authority(tmp_path)


def test_a_certificate_that_is_not_a_ca_is_refused(tmp_path: Path) -> None:
    make_attestation_root(tmp_path)
    key = serialization.load_pem_private_key((tmp_path / CA_KEY_FILE).read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    cert = x509.load_pem_x509_certificate((tmp_path / CA_CERT_FILE).read_bytes())
    leafish = (
        x509.CertificateBuilder()
        .subject_name(cert.subject)
        .issuer_name(cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(cert.not_valid_before_utc)
        .not_valid_after(cert.not_valid_after_utc)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    (tmp_path / CA_CERT_FILE).write_bytes(leafish.public_bytes(serialization.Encoding.PEM))
    with pytest.raises(AuthorityError, match="not a CA"):
        load_authority(tmp_path)
