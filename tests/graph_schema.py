"""Check Graph payloads against Microsoft's published schema.

v1.0 types are checked against the CSDL in tests/data (BaseType inheritance, aliases, enums, primitive
types, complex and navigation properties, derived types named by `@odata.type`). Types that exist only
in beta (hardware OATH) are checked against the msgraph-beta-sdk model classes: every key must be one of
the model's `get_field_deserializers()` keys, at every level.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import textwrap
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

CSDL_PATH = Path(__file__).parent / "data" / "graph-v1.0.csdl.xml"
_EDM = "{http://docs.oasis-open.org/odata/ns/edm}"
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_COLLECTION = re.compile(r"^Collection\((.+)\)$")
_INTEGERS = {"Edm.Int16", "Edm.Int32", "Edm.Int64", "Edm.Byte", "Edm.SByte"}
_NUMBERS = {"Edm.Double", "Edm.Single", "Edm.Decimal"}


@dataclass(frozen=True)
class PropertyDef:
    name: str
    type: str  # qualified; "Collection(...)" kept
    nullable: bool
    navigation: bool


@dataclass(frozen=True)
class StructuredType:
    name: str  # qualified, e.g. microsoft.graph.user
    base: str | None
    abstract: bool
    properties: dict[str, PropertyDef]
    open: bool = False  # OpenType="true": dynamic properties beyond the declared ones are allowed


@dataclass(frozen=True)
class EnumDef:
    name: str
    members: frozenset[str]
    flags: bool


class GraphSchema:
    """The v1.0 CSDL, parsed once: structured types, enums, and alias resolution."""

    def __init__(self, path: Path = CSDL_PATH) -> None:
        root = ET.parse(path).getroot()
        schemas = list(root.iter(f"{_EDM}Schema"))
        self._aliases = {s.get("Alias"): s.get("Namespace") for s in schemas if s.get("Alias")}
        self.types: dict[str, StructuredType] = {}
        self.enums: dict[str, EnumDef] = {}
        for schema in schemas:
            namespace = schema.get("Namespace", "")
            for node in schema:
                tag = node.tag.removeprefix(_EDM)
                if tag in ("EntityType", "ComplexType"):
                    self._add_type(namespace, node)
                elif tag == "EnumType":
                    qualified = f"{namespace}.{node.get('Name')}"
                    members = frozenset(m.get("Name", "") for m in node.iter(f"{_EDM}Member"))
                    self.enums[qualified] = EnumDef(qualified, members, node.get("IsFlags") == "true")

    def _add_type(self, namespace: str, node: ET.Element) -> None:
        qualified = f"{namespace}.{node.get('Name')}"
        props: dict[str, PropertyDef] = {}
        for child in node:
            tag = child.tag.removeprefix(_EDM)
            if tag in ("Property", "NavigationProperty"):
                name = child.get("Name", "")
                nullable = child.get("Nullable", "true") != "false"
                props[name] = PropertyDef(
                    name, self.resolve(child.get("Type", "")), nullable, tag != "Property"
                )
        base = node.get("BaseType")
        self.types[qualified] = StructuredType(
            qualified,
            self.resolve(base) if base else None,
            node.get("Abstract") == "true",
            props,
            # Entity types such as user are open only for directory extension attributes, which the
            # simulator never serves: keep them strict. Open complex types (webauthn extension inputs)
            # legitimately carry dynamic properties.
            node.get("OpenType") == "true" and node.tag == f"{_EDM}ComplexType",
        )

    def resolve(self, name: str) -> str:
        """Qualified name for `graph.x`, `#microsoft.graph.x`, `x` (default namespace) or Collection(...)."""
        name = name.lstrip("#")
        collection = _COLLECTION.match(name)
        if collection:
            return f"Collection({self.resolve(collection.group(1))})"
        if name.startswith("Edm."):
            return name
        if "." not in name:
            return f"microsoft.graph.{name}"
        prefix, _, rest = name.partition(".")
        if prefix in self._aliases:
            return f"{self._aliases[prefix]}.{rest}"
        return name

    def has_type(self, name: str) -> bool:
        return self.resolve(name) in self.types

    def properties(self, name: str) -> dict[str, PropertyDef]:
        """Own and inherited properties (walking BaseType up to entity)."""
        found: dict[str, PropertyDef] = {}
        current: str | None = self.resolve(name)
        while current is not None:
            structured = self.types[current]
            for key, prop in structured.properties.items():
                found.setdefault(key, prop)
            current = structured.base
        return found

    def is_derived(self, name: str, base: str) -> bool:
        current: str | None = self.resolve(name)
        target = self.resolve(base)
        while current is not None:
            if current == target:
                return True
            current = self.types[current].base if current in self.types else None
        return False

    # -- validation ----------------------------------------------------------------------------------

    def errors(self, value: Any, type_name: str, path: str = "$") -> list[str]:
        """Every way `value` departs from `type_name` (an empty list when it conforms)."""
        qualified = self.resolve(type_name)
        collection = _COLLECTION.match(qualified)
        if collection:
            if not isinstance(value, list):
                return [f"{path}: expected a collection of {collection.group(1)}, got {type(value).__name__}"]
            return [
                e
                for i, item in enumerate(value)
                for e in self.errors(item, collection.group(1), f"{path}[{i}]")
            ]
        if qualified in self.types:
            return self._structured_errors(value, qualified, path)
        if qualified in self.enums:
            return self._enum_errors(value, self.enums[qualified], path)
        if qualified.startswith("Edm."):
            return _primitive_errors(value, qualified, path)
        return [f"{path}: unknown type {qualified}"]

    def _structured_errors(self, value: Any, declared: str, path: str) -> list[str]:
        if not isinstance(value, dict):
            return [f"{path}: expected an object of {declared}, got {type(value).__name__}"]
        actual = declared
        if "@odata.type" in value:
            actual = self.resolve(str(value["@odata.type"]))
            if actual not in self.types:  # a beta-only type nested in a v1.0 one
                return [f"{path}{p[1:]}" for p in beta_model_errors(value, declared)]
            if not self.is_derived(actual, declared):
                return [f"{path}: @odata.type {actual} does not derive from {declared}"]
        if self.types[actual].abstract:
            return [f"{path}: {actual} is abstract; the payload must name a concrete @odata.type"]
        props = self.properties(actual)
        problems: list[str] = []
        for key, item in value.items():
            problems += self._member_errors(key, item, props, actual, path)
        return problems

    def _member_errors(
        self, key: str, item: Any, props: dict[str, PropertyDef], owner: str, path: str
    ) -> list[str]:
        if key.startswith("@"):
            return [] if key.startswith("@odata.") else [f"{path}: unexpected instance annotation {key}"]
        if "@" in key:
            prop_name, _, annotation = key.partition("@")
            if prop_name in props and annotation.startswith("odata."):
                return []
            return [f"{path}: unexpected property annotation {key}"]
        prop = props.get(key)
        if prop is None and self.types[owner].open:
            return []  # a dynamic property of an open type (webauthn extension inputs, for one)
        if prop is None:
            return [f"{path}: {owner} has no property '{key}'"]
        if item is None:
            is_collection = prop.type.startswith("Collection(")
            if is_collection or not prop.nullable:
                return [f"{path}.{key}: null is not allowed for {prop.type}"]
            return []
        return self.errors(item, prop.type, f"{path}.{key}")

    @staticmethod
    def _enum_errors(value: Any, enum: EnumDef, path: str) -> list[str]:
        if not isinstance(value, str):
            return [f"{path}: expected a {enum.name} member name, got {value!r}"]
        names = [v.strip() for v in value.split(",")] if enum.flags else [value]
        bad = [n for n in names if n not in enum.members]
        return [f"{path}: {bad} not in {enum.name} {sorted(enum.members)}"] if bad else []


def _primitive_errors(value: Any, edm: str, path: str) -> list[str]:
    ok: bool
    if edm in ("Edm.String", "Edm.Binary", "Edm.Duration", "Edm.TimeOfDay"):
        ok = isinstance(value, str)
    elif edm == "Edm.Boolean":
        ok = isinstance(value, bool)
    elif edm in _INTEGERS:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif edm in _NUMBERS:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif edm == "Edm.Guid":
        ok = isinstance(value, str) and bool(_GUID.match(value))
    elif edm == "Edm.DateTimeOffset":
        ok = isinstance(value, str) and _is_datetime(value)
    elif edm == "Edm.Date":
        ok = isinstance(value, str) and _is_date(value)
    else:
        ok = True  # Edm.Stream, Edm.Untyped and friends: any JSON value
    return [] if ok else [f"{path}: {value!r} is not a valid {edm}"]


def _is_datetime(text: str) -> bool:
    if not re.match(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,7})?(Z|[+-]\d{2}:\d{2})$", text):
        return False
    try:
        datetime.fromisoformat(re.sub(r"(\.\d{6})\d+", r"\1", text).replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _is_date(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


@lru_cache(maxsize=1)
def load_schema() -> GraphSchema:
    return GraphSchema()


# -- beta-only types: the msgraph-beta-sdk models are the published contract ------------------------------
# The models' get_field_deserializers() bodies are read statically: calling them on an Entity subclass
# imports every one of the SDK's ~3,000 model modules, which costs seconds per test run.

_BETA_MODELS = "msgraph_beta.generated.models"


@dataclass(frozen=True)
class BetaField:
    key: str
    reader: str  # the ParseNode method the SDK uses, e.g. get_object_value, get_enum_value
    model: str | None  # the class passed to it, for objects and enums


def _class_name(type_name: str) -> str:
    short = type_name.lstrip("#").rsplit(".", 1)[-1]
    return short[0].upper() + short[1:]


def _beta_class(class_name: str) -> type:
    module = re.sub(r"(?<!^)(?=[A-Z])", "_", class_name).lower()
    return getattr(importlib.import_module(f"{_BETA_MODELS}.{module}"), class_name)


@cache
def _own_fields(klass: type) -> dict[str, BetaField]:
    found: dict[str, BetaField] = {}
    method = ast.parse(textwrap.dedent(inspect.getsource(klass.get_field_deserializers)))  # type: ignore[attr-defined]
    for table in (n for n in ast.walk(method) if isinstance(n, ast.Dict)):
        for key, value in zip(table.keys, table.values, strict=True):
            if not isinstance(key, ast.Constant) or not isinstance(key.value, str):
                continue
            call = next(
                c
                for c in ast.walk(value)
                if isinstance(c, ast.Call)
                and isinstance(c.func, ast.Attribute)
                and c.func.attr.startswith("get_")
            )
            assert isinstance(call.func, ast.Attribute)
            model = call.args[0].id if call.args and isinstance(call.args[0], ast.Name) else None
            found[key.value] = BetaField(key.value, call.func.attr, model)
    return found


@cache
def beta_fields(class_name: str) -> dict[str, BetaField]:
    """The keys `get_field_deserializers()` accepts for a beta model, inherited ones included."""
    found: dict[str, BetaField] = {}
    for klass in _beta_class(class_name).__mro__:
        if klass.__module__.startswith(_BETA_MODELS):
            for key, f in _own_fields(klass).items():
                found.setdefault(key, f)
    return found


def _beta_enum_errors(value: Any, enum_name: str, path: str) -> list[str]:
    allowed = {m.value for m in _beta_class(enum_name)}  # type: ignore[attr-defined]
    names = [v.strip() for v in value.split(",")] if isinstance(value, str) else [value]
    bad = [n for n in names if n not in allowed]
    return [f"{path}: {bad} not in {enum_name} {sorted(allowed)}"] if bad else []


def _beta_value_errors(value: Any, f: BetaField, path: str) -> list[str]:
    if value is None or f.model is None:
        return []
    if f.reader == "get_object_value":
        return beta_model_errors(value, f.model, path)
    if f.reader == "get_collection_of_object_values":
        if not isinstance(value, list):
            return [f"{path}: expected a collection"]
        return [e for i, item in enumerate(value) for e in beta_model_errors(item, f.model, f"{path}[{i}]")]
    if f.reader == "get_enum_value":
        return _beta_enum_errors(value, f.model, path)
    if f.reader == "get_collection_of_enum_values" and isinstance(value, list):
        return [e for i, item in enumerate(value) for e in _beta_enum_errors(item, f.model, f"{path}[{i}]")]
    return []


def beta_model_errors(entity: Any, type_name: str, path: str = "$") -> list[str]:
    if not isinstance(entity, dict):
        return [f"{path}: expected an object of {type_name}"]
    declared = _class_name(type_name)
    actual = _class_name(str(entity.get("@odata.type") or declared))
    if not issubclass(_beta_class(actual), _beta_class(declared)):
        return [f"{path}: {actual} is not a {declared}"]
    known = beta_fields(actual)
    problems: list[str] = []
    for key, value in entity.items():
        prop, _, annotation = key.partition("@")
        if annotation:
            if annotation.startswith("odata.") and (not prop or prop in known):
                continue
            problems.append(f"{path}: unexpected annotation {key}")
        elif key not in known:
            problems.append(f"{path}: {actual} has no property '{key}'")
        else:
            problems += _beta_value_errors(value, known[key], f"{path}.{key}")
    return problems


# -- the one call tests make ---------------------------------------------------------------------------------


def schema_errors(entity: Any, type_name: str) -> list[str]:
    schema = load_schema()
    actual = entity.get("@odata.type") if isinstance(entity, dict) else None
    if schema.has_type(type_name) and (actual is None or schema.has_type(str(actual))):
        return schema.errors(entity, type_name)
    if not isinstance(entity, dict):
        return [f"$: expected an object of beta type {type_name}"]
    return beta_model_errors(entity, type_name)


def assert_matches_schema(entity: dict[str, Any], type_name: str) -> None:
    """Fail unless `entity` uses only properties Microsoft's schema defines for `type_name` (or the
    derived type its `@odata.type` names), with values of the declared types."""
    problems = schema_errors(entity, type_name)
    assert not problems, f"{type_name} does not match the published schema:\n  " + "\n  ".join(problems)
