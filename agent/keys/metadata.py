"""AAGUID -> key model, from a small offline table shipped with the agent (`aaguids.json`)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources


@dataclass(frozen=True)
class KeyModel:
    aaguid: str
    name: str
    vendor: str
    sources: tuple[str, ...] = ()


def normalise_aaguid(value: str | bytes | uuid.UUID) -> str:
    """The canonical lower-case dashed form; accepts 16 raw bytes, a UUID, or any UUID spelling."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes):
        if len(value) != 16:
            raise ValueError("an AAGUID is 16 bytes")
        return str(uuid.UUID(bytes=value))
    return str(uuid.UUID(value.strip()))


class ModelCatalog:
    def __init__(self, models: Iterable[KeyModel]) -> None:
        self._by_aaguid = {normalise_aaguid(m.aaguid): m for m in models}

    @classmethod
    def bundled(cls) -> ModelCatalog:
        return _bundled()

    def lookup(self, aaguid: str | bytes | uuid.UUID) -> KeyModel | None:
        try:
            return self._by_aaguid.get(normalise_aaguid(aaguid))
        except ValueError:
            return None

    def with_models(self, *models: KeyModel) -> ModelCatalog:
        return ModelCatalog([*self._by_aaguid.values(), *models])

    def __len__(self) -> int:
        return len(self._by_aaguid)


@cache
def _bundled() -> ModelCatalog:
    text = resources.files("agent.keys").joinpath("aaguids.json").read_text(encoding="utf-8")
    rows = json.loads(text)["models"]
    return ModelCatalog(
        KeyModel(r["aaguid"], r["name"], r["vendor"], tuple(r.get("sources", ()))) for r in rows
    )
