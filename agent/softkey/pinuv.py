"""The authenticator's half of the CTAP2 PIN/UV auth protocols 1 and 2 (our own reading of CTAP 2.1 §6.5)."""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from fido2.ctap import CtapError

ERR = CtapError.ERR


def cose_p256(public_key: ec.EllipticCurvePublicKey, alg: int) -> dict[int, Any]:
    numbers = public_key.public_numbers()
    return {1: 2, 3: alg, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")}


def peer_public_key(cose: Mapping[int, Any] | None) -> ec.EllipticCurvePublicKey:
    if not isinstance(cose, Mapping) or cose.get(1) != 2 or cose.get(-1) != 1:
        raise CtapError(ERR.INVALID_PARAMETER)
    try:
        x = int.from_bytes(cose[-2], "big")
        y = int.from_bytes(cose[-3], "big")
        return ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()
    except (KeyError, TypeError, ValueError) as exc:
        raise CtapError(ERR.INVALID_PARAMETER) from exc


class ProtocolV1:
    version = 1

    def shared_secret(self, own: ec.EllipticCurvePrivateKey, peer: Mapping[int, Any] | None) -> bytes:
        z = own.exchange(ec.ECDH(), peer_public_key(peer))
        return self._kdf(z)

    def _kdf(self, z: bytes) -> bytes:
        return hashlib.sha256(z).digest()

    def encrypt(self, key: bytes, plaintext: bytes) -> bytes:
        enc = Cipher(algorithms.AES(key[-32:]), modes.CBC(b"\0" * 16)).encryptor()
        return enc.update(plaintext) + enc.finalize()

    def decrypt(self, key: bytes, ciphertext: bytes) -> bytes:
        if not ciphertext or len(ciphertext) % 16:
            raise CtapError(ERR.INVALID_PARAMETER)
        dec = Cipher(algorithms.AES(key[-32:]), modes.CBC(b"\0" * 16)).decryptor()
        return dec.update(ciphertext) + dec.finalize()

    def authenticate(self, key: bytes, message: bytes) -> bytes:
        return hmac.new(key[:32], message, hashlib.sha256).digest()[:16]

    def verify(self, key: bytes, message: bytes, signature: bytes | None) -> bool:
        if not signature:
            return False
        return hmac.compare_digest(self.authenticate(key, message), bytes(signature))


class ProtocolV2(ProtocolV1):
    version = 2

    def _kdf(self, z: bytes) -> bytes:
        return _hkdf(z, b"CTAP2 HMAC key") + _hkdf(z, b"CTAP2 AES key")

    def encrypt(self, key: bytes, plaintext: bytes) -> bytes:
        iv = os.urandom(16)
        enc = Cipher(algorithms.AES(key[32:]), modes.CBC(iv)).encryptor()
        return iv + enc.update(plaintext) + enc.finalize()

    def decrypt(self, key: bytes, ciphertext: bytes) -> bytes:
        if len(ciphertext) < 32 or len(ciphertext) % 16:
            raise CtapError(ERR.INVALID_PARAMETER)
        dec = Cipher(algorithms.AES(key[32:]), modes.CBC(ciphertext[:16])).decryptor()
        return dec.update(ciphertext[16:]) + dec.finalize()

    def authenticate(self, key: bytes, message: bytes) -> bytes:
        return hmac.new(key[:32], message, hashlib.sha256).digest()


def _hkdf(z: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"\0" * 32, info=info).derive(z)


def protocol(version: object, supported: tuple[int, ...]) -> ProtocolV1:
    if version is None:
        raise CtapError(ERR.MISSING_PARAMETER)
    if version not in supported:
        raise CtapError(ERR.INVALID_PARAMETER)
    return ProtocolV2() if version == 2 else ProtocolV1()
