"""A security-key PIN held in memory only: repr, str, format and logging all show a mask."""

from __future__ import annotations

import secrets
from typing import Any, NoReturn

MAX_PIN_BYTES = 63  # CTAP 2.1: a PIN is at most 63 bytes of UTF-8


class Pin:
    """A PIN on its way to a key. It never prints, pickles or compares by identity leak."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        object.__setattr__(self, "_value", value)

    def reveal(self) -> str:
        return str(object.__getattribute__(self, "_value"))

    @property
    def length(self) -> int:
        """Length in Unicode code points, the unit CTAP uses for the minimum PIN length."""
        return len(self.reveal())

    @property
    def byte_length(self) -> int:
        return len(self.reveal().encode("utf-8"))

    def __repr__(self) -> str:
        return "Pin('********')"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Pin) and secrets.compare_digest(
            other.reveal().encode("utf-8"), self.reveal().encode("utf-8")
        )

    def __hash__(self) -> int:
        return hash(("Pin", self.reveal()))

    def __setattr__(self, name: str, value: Any) -> NoReturn:
        raise AttributeError("Pin is immutable")

    def __reduce__(self) -> NoReturn:
        raise TypeError("a Pin cannot be pickled or copied out of memory")


def random_pin(length: int = 8) -> Pin:
    """A random numeric PIN (for keys prepared for pickup; the technician never sees it)."""
    if not 4 <= length <= MAX_PIN_BYTES:
        raise ValueError("a PIN has 4 to 63 digits")
    return Pin("".join(secrets.choice("0123456789") for _ in range(length)))
