"""Graph's excludeCredentials ids come in three encodings (plain base64url, standard base64 with
padding, and base64url with a padding-count digit). Decode each into every valid reading: a wrong
candidate never matches a credential on the key, a missing one would let a duplicate through."""

from __future__ import annotations

import base64
import binascii
from contextlib import suppress


def _b64(text: str) -> bytes:
    body = text.replace("-", "+").replace("_", "/").rstrip("=")
    return base64.b64decode(body + "=" * (-len(body) % 4), validate=True)


def graph_id_candidates(value: str) -> list[bytes]:
    text = value.strip()
    out: list[bytes] = []
    with suppress(binascii.Error, ValueError):
        out.append(_b64(text))
    if text and text[-1] in "012" and (len(text) - 1 + int(text[-1])) % 4 == 0:
        try:
            alt = _b64(text[:-1])
        except (binascii.Error, ValueError):
            alt = b""
        if alt and alt not in out:
            out.append(alt)
    if not out:
        raise ValueError("a credential id in excludeCredentials could not be decoded")
    return out
