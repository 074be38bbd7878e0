"""All tables. Importing this package registers every model on `Base.metadata`."""

from __future__ import annotations

import importlib
import pkgutil

from bot.store.db import Base

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

metadata = Base.metadata
