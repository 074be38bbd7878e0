"""The server's own Ed25519 key that signs jobs for desk agents.

Kept in a file named by KEYDESK_AGENT_SIGNING_KEY_FILE, not in the database: the database is backed up,
dumped and read by more people than the server's secrets volume, and the house rule is that private keys
never rest there. The file is created once with owner-only permissions; every replica mounts the same
one (a Kubernetes secret, a Docker secret). Losing it means re-pairing every agent.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent import protocol
from bot.logs import get_logger

log = get_logger(__name__)

_cache: dict[Path, Ed25519PrivateKey] = {}
_lock = threading.Lock()


def server_key(path: Path) -> Ed25519PrivateKey:
    """Load the signing key, creating it (0600) the first time."""
    path = path.expanduser().resolve()
    with _lock:
        found = _cache.get(path)
        if found is not None:
            return found
        key = _load_or_create(path)
        _cache[path] = key
        return key


def _load_or_create(path: Path) -> Ed25519PrivateKey:
    try:
        return protocol.load_private_key_pem(path.read_bytes())
    except FileNotFoundError:
        pass
    key = protocol.new_private_key()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another replica won the race: use its key
        return protocol.load_private_key_pem(path.read_bytes())
    with os.fdopen(fd, "wb") as out:
        out.write(protocol.private_key_pem(key))
    log.info(
        "desk.server_key.created",
        path=str(path),
        fingerprint=protocol.fingerprint(protocol.public_key_text(key)),
    )
    return key
