"""Registration guides: YAML data turned into typed values, checked at startup, filled per organisation.

The shipped guides live in the `bot.guides` package. An organisation can add a folder
(`KEYDESK_GUIDES_DIR`) holding `org.yaml` (its name, contact, sign-in page, key models, PIN length)
and guide files that replace a shipped guide (same `id`), add a new one, or extend one
(`extends: fido2` plus `extra_steps` placed `after:`/`before:` a step, or at the end).
Everything that could go wrong with a guide is found by `GuideLibrary.load`, never while a user
is halfway through: `render` only fills in values.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields, replace
from enum import StrEnum
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, TypeVar

import yaml

SHIPPED_PACKAGE = "bot.guides"
MAX_STEPS = 25
SECTION_TEXT_LIMIT = 3000  # Slack's limit for one section block's text
TITLE_LIMIT = 150  # Slack's limit for a header block, the most a title may end up in
RUNTIME_VALUE_ROOM = 100  # characters reserved for each placeholder when checking lengths at load
ORG_FILE_NAMES = frozenset({"org.yaml", "org.yml"})
MIN_PIN_LENGTH, MAX_PIN_LENGTH = 4, 63  # the range a FIDO2 key accepts for its PIN
DEFAULT_TAP_EXPIRY = "the expiry time shown when you reveal it"
NO_KEY_MODELS = "security key"

_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_E = TypeVar("_E", bound=StrEnum)


class GuideMethod(StrEnum):
    FIDO2 = "fido2"
    HARDWARE_OATH = "hardware_oath"
    AUTHENTICATOR = "authenticator"


class Device(StrEnum):
    """Which device the user has in hand for a step."""

    COMPUTER = "computer"
    PHONE = "phone"
    KEY = "key"


class Placeholder(StrEnum):
    """The only names a guide text may contain in braces, e.g. `{sign_in_url}`."""

    SIGN_IN_URL = "sign_in_url"
    SUPPORT_CONTACT = "support_contact"
    ORG_NAME = "org_name"
    PIN_MIN_LENGTH = "pin_min_length"
    KEY_MODELS = "key_models"
    TAP_EXPIRY = "tap_expiry"


PLACEHOLDERS = frozenset(p.value for p in Placeholder)


@dataclass(frozen=True)
class GuideStep:
    id: str
    title: str
    text: str
    tip: str | None = None
    expect: str | None = None
    device: Device | None = None


@dataclass(frozen=True)
class Guide:
    id: str
    method: GuideMethod
    title: str
    summary: str
    default: bool
    estimated_minutes: int
    steps: tuple[GuideStep, ...]

    def step_index(self, step_id: str) -> int:
        """Position of a step; ValueError if the guide has no such step."""
        for index, step in enumerate(self.steps):
            if step.id == step_id:
                return index
        raise ValueError(f"guide '{self.id}' has no step '{step_id}'")


@dataclass(frozen=True)
class OrgProfile:
    org_name: str = "your organisation"
    support_contact: str = "the IT helpdesk"
    sign_in_url: str = "https://aka.ms/mysecurityinfo"
    key_models: tuple[str, ...] = ()
    pin_min_length: int = MIN_PIN_LENGTH

    def __post_init__(self) -> None:
        if not MIN_PIN_LENGTH <= self.pin_min_length <= MAX_PIN_LENGTH:
            raise ValueError(f"pin_min_length must be {MIN_PIN_LENGTH}-{MAX_PIN_LENGTH}")
        object.__setattr__(self, "key_models", tuple(self.key_models))

    def values(self) -> dict[str, str]:
        """Every placeholder's value from this profile (tap_expiry gets a neutral wording)."""
        return {
            Placeholder.SIGN_IN_URL: self.sign_in_url,
            Placeholder.SUPPORT_CONTACT: self.support_contact,
            Placeholder.ORG_NAME: self.org_name,
            Placeholder.PIN_MIN_LENGTH: str(self.pin_min_length),
            Placeholder.KEY_MODELS: human_list(self.key_models) or NO_KEY_MODELS,
            Placeholder.TAP_EXPIRY: DEFAULT_TAP_EXPIRY,
        }


def human_list(items: Iterable[str]) -> str:
    """'A', 'A or B', 'A, B or C'."""
    words = list(items)
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " or " + words[-1]


class GuideError(Exception):
    """A guide or org file is unusable; the message names the file, the step and the problem."""

    def __init__(self, problem: str, *, source: str | None = None, step: str | None = None) -> None:
        self.problem, self.source, self.step = problem, source, step
        where = ", ".join(part for part in (source, step) if part)
        super().__init__(f"{where}: {problem}" if where else problem)


class UnknownGuideError(GuideError, LookupError):
    """No guide with that id (or method) is loaded."""


# --- templates ------------------------------------------------------------------------------

_FORMATTER = string.Formatter()


def template_names(template: str) -> list[str]:
    """The placeholder names in a text; ValueError (with a human reason) for anything unsafe."""
    return [name for _, name in _template_parts(template) if name is not None]


def _template_parts(template: str) -> list[tuple[str, str | None]]:
    try:
        parsed = list(_FORMATTER.parse(template))
    except ValueError:
        raise ValueError(
            "has a '{' or '}' that is not part of a placeholder (write {{ or }} for a literal brace)"
        ) from None
    parts: list[tuple[str, str | None]] = []
    for literal, name, spec, conversion in parsed:
        if name is not None:
            _check_placeholder(name, spec, conversion)
        parts.append((literal, name))
    return parts


def _check_placeholder(name: str, spec: str | None, conversion: str | None) -> None:
    shown = "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
    if not _NAME.match(name):
        raise ValueError(
            f"contains the placeholder {shown}, which is not allowed: "
            "use a plain name such as {sign_in_url}"
        )
    if name not in PLACEHOLDERS:
        known = ", ".join("{" + p + "}" for p in sorted(PLACEHOLDERS))
        raise ValueError(f"contains unknown placeholder {shown} (known: {known})")
    if spec or conversion:
        raise ValueError(f"contains the placeholder {shown}, which is not allowed: write it as {{{name}}}")


def fill(template: str, values: Mapping[str, str]) -> str:
    """Fill a checked template. Only plain names are looked up; nothing is evaluated."""
    return "".join(literal + (values[name] if name else "") for literal, name in _template_parts(template))


def escape_mrkdwn(value: str) -> str:
    """Slack control characters in a value that must show as typed."""
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# --- YAML -----------------------------------------------------------------------------------


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key written twice in one mapping instead of keeping the last."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[object] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if isinstance(key, str) and key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"the key '{key}' appears twice", key_node.start_mark
            )
        seen.add(key if isinstance(key, str) else id(key_node))
    return loader.construct_mapping(node, deep=True)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def parse_yaml(text: str, source: str) -> object:
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = exc.problem or exc.context or "the file cannot be parsed"
        raise GuideError(f"YAML syntax error{at}: {problem}", source=source) from None
    except yaml.YAMLError as exc:
        raise GuideError(f"YAML syntax error: {exc}", source=source) from None


def _read_text(file: Traversable, source: str) -> str:
    try:
        return file.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise GuideError("is not UTF-8 text", source=source) from None
    except OSError as exc:
        raise GuideError(f"cannot be read ({exc.strerror or exc})", source=source) from None


# --- field reading --------------------------------------------------------------------------


@dataclass
class _Fields:
    """One YAML mapping being read, with where it came from for error messages."""

    data: dict[str, Any]
    source: str
    step: str | None = None

    @classmethod
    def of(cls, data: object, source: str, what: str, step: str | None = None) -> _Fields:
        if not isinstance(data, dict):
            raise GuideError(f"{what} must be a mapping of 'name: value' lines", source=source, step=step)
        return cls(data, source, step)

    def fail(self, problem: str) -> GuideError:
        return GuideError(problem, source=self.source, step=self.step)

    def only(self, allowed: Iterable[str]) -> None:
        allowed = sorted(allowed)
        for key in self.data:
            if key not in allowed:
                raise self.fail(f"unknown field '{key}' (allowed: {', '.join(allowed)})")

    def has(self, key: str) -> bool:
        return key in self.data

    def text(self, key: str) -> str:
        value = self.data.get(key)
        if value is None:
            raise self.fail(f"missing field '{key}'")
        if not isinstance(value, str) or not value.strip():
            raise self.fail(f"'{key}' must be non-empty text")
        return value.strip()

    def optional_text(self, key: str) -> str | None:
        return self.text(key) if self.data.get(key) is not None else None

    def slug(self, key: str) -> str:
        value = self.text(key)
        if not _SLUG.match(value):
            raise self.fail(f"'{key}' '{value}' must be lowercase letters, digits, '-' or '_'")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(f"'{key}' must be true or false")
        return value

    def integer(self, key: str, default: int, low: int, high: int) -> int:
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self.fail(f"'{key}' must be a whole number from {low} to {high}")
        return value

    def choice(self, key: str, enum: type[_E]) -> _E | None:
        value = self.data.get(key)
        if value is None:
            return None
        try:
            return enum(value)
        except ValueError:
            raise self.fail(f"'{key}' must be one of: {', '.join(e.value for e in enum)}") from None

    def items(self, key: str) -> list[object]:
        value = self.data.get(key)
        if not isinstance(value, list) or not value:
            raise self.fail(f"'{key}' must be a list with at least one entry")
        return value


# --- checks ---------------------------------------------------------------------------------


class _Checker:
    """Checks texts against one organisation's values, leaving room for per-user values."""

    def __init__(self, org: OrgProfile) -> None:
        self._sample = {name: value.ljust(RUNTIME_VALUE_ROOM, "x") for name, value in org.values().items()}

    def guide(self, guide: Guide, source: str) -> None:
        self.header(guide, source)
        self.shape(guide.steps, source)
        for position, step in enumerate(guide.steps, 1):
            self.step(step, source, _step_label(position, step.id))

    def header(self, guide: Guide, source: str) -> None:
        self._text(guide.title, "title", TITLE_LIMIT, source, None)
        self._text(guide.summary, "summary", SECTION_TEXT_LIMIT, source, None)

    def step(self, step: GuideStep, source: str, label: str) -> None:
        self._text(step.title, "title", TITLE_LIMIT, source, label)
        for name in ("text", "tip", "expect"):
            value = getattr(step, name)
            if value is not None:
                self._text(value, name, SECTION_TEXT_LIMIT, source, label)

    @staticmethod
    def shape(steps: tuple[GuideStep, ...], source: str) -> None:
        if not steps:
            raise GuideError("has no steps", source=source)
        if len(steps) > MAX_STEPS:
            raise GuideError(f"has {len(steps)} steps; a guide may have at most {MAX_STEPS}", source=source)
        seen: set[str] = set()
        for position, step in enumerate(steps, 1):
            if step.id in seen:
                label = _step_label(position, step.id)
                raise GuideError(
                    f"duplicate step id '{step.id}' (step ids must be unique)", source=source, step=label
                )
            seen.add(step.id)

    def _text(self, value: str, name: str, limit: int, source: str, step: str | None) -> None:
        try:
            filled = fill(value, self._sample)
        except ValueError as exc:
            raise GuideError(f"'{name}' {exc}", source=source, step=step) from None
        if len(filled) > limit:
            raise GuideError(
                f"'{name}' would be {len(filled)} characters with its placeholders filled in (each counted "
                f"as at least {RUNTIME_VALUE_ROOM}); Slack shows at most {limit}",
                source=source,
                step=step,
            )


def _check_rendered(guide: Guide) -> None:
    """After filling in per-user values: the same Slack limits, without placeholder parsing."""
    where = f"guide '{guide.id}'"
    texts: list[tuple[str, str | None, str | None, int]] = [
        ("title", None, guide.title, TITLE_LIMIT),
        ("summary", None, guide.summary, SECTION_TEXT_LIMIT),
    ]
    for position, step in enumerate(guide.steps, 1):
        label = _step_label(position, step.id)
        texts.append(("title", label, step.title, TITLE_LIMIT))
        texts.extend(
            (name, label, getattr(step, name), SECTION_TEXT_LIMIT) for name in ("text", "tip", "expect")
        )
    for name, step_label, value, limit in texts:
        if value is not None and len(value) > limit:
            problem = f"'{name}' is {len(value)} characters after rendering; Slack shows at most {limit}"
            raise GuideError(problem, source=where, step=step_label)


def _step_label(position: int, step_id: object) -> str:
    return f"step {position} '{step_id}'" if isinstance(step_id, str) and step_id else f"step {position}"


# --- parsing --------------------------------------------------------------------------------

_GUIDE_FIELDS = ("id", "method", "title", "summary", "default", "estimated_minutes", "steps")
_EXTENSION_FIELDS = ("extends", "id", "title", "summary", "default", "estimated_minutes", "extra_steps")
_STEP_FIELDS = ("id", "title", "text", "tip", "expect", "device")
_PLACEMENT_FIELDS = ("after", "before")
_MAX_MINUTES = 240


def _parse_step(data: object, source: str, label: str, *, extra: bool = False) -> tuple[GuideStep, _Fields]:
    if isinstance(data, dict):
        label = f"{label} '{data['id']}'" if isinstance(data.get("id"), str) else label
    f = _Fields.of(data, source, "a step", step=label)
    f.only(_STEP_FIELDS + (_PLACEMENT_FIELDS if extra else ()))
    step = GuideStep(
        id=f.slug("id"),
        title=f.text("title"),
        text=f.text("text"),
        tip=f.optional_text("tip"),
        expect=f.optional_text("expect"),
        device=f.choice("device", Device),
    )
    return step, f


def _parse_guide(f: _Fields, checker: _Checker) -> Guide:
    f.only(_GUIDE_FIELDS)
    method = f.choice("method", GuideMethod)
    if method is None:
        raise f.fail(f"missing field 'method' (one of: {', '.join(m.value for m in GuideMethod)})")
    steps = tuple(
        _parse_step(item, f.source, f"step {position}")[0]
        for position, item in enumerate(f.items("steps"), 1)
    )
    if not f.has("estimated_minutes"):
        raise f.fail("missing field 'estimated_minutes'")
    guide = Guide(
        id=f.slug("id"),
        method=method,
        title=f.text("title"),
        summary=f.text("summary"),
        default=f.boolean("default", False),
        estimated_minutes=f.integer("estimated_minutes", 0, 1, _MAX_MINUTES),
        steps=steps,
    )
    checker.guide(guide, f.source)
    return guide


def _extend(f: _Fields, base: Guide, checker: _Checker) -> Guide:
    """A copy of `base` with the file's header changes and extra steps (the file is `extends: ...`)."""
    f.only(_EXTENSION_FIELDS)
    steps = list(base.steps)
    anchors: dict[str, str] = {}  # step id -> the extra step last placed after it (keeps file order)
    extra = f.items("extra_steps") if f.has("extra_steps") else []
    for position, item in enumerate(extra, 1):
        step, sf = _parse_step(item, f.source, f"extra step {position}", extra=True)
        checker.step(step, f.source, sf.step or "")
        if any(s.id == step.id for s in steps):
            raise sf.fail(f"guide '{base.id}' already has a step '{step.id}' (step ids must be unique)")
        steps.insert(_placement(sf, steps, anchors, base.id, step.id), step)
    new_id = f.slug("id") if f.has("id") else base.id
    guide = replace(
        base,
        id=new_id,
        title=f.optional_text("title") or base.title,
        summary=f.optional_text("summary") or base.summary,
        # extending in place keeps the base's default; a derived guide is default only if it says so
        default=f.boolean("default", base.default and new_id == base.id),
        estimated_minutes=f.integer("estimated_minutes", base.estimated_minutes, 1, _MAX_MINUTES),
        steps=tuple(steps),
    )
    checker.guide(guide, f.source)
    return guide


def _placement(
    sf: _Fields, steps: list[GuideStep], anchors: dict[str, str], guide_id: str, new_id: str
) -> int:
    if sf.has("after") and sf.has("before"):
        raise sf.fail("give 'after' or 'before', not both")
    key = "after" if sf.has("after") else "before" if sf.has("before") else None
    if key is None:
        return len(steps)
    target = sf.data[key]
    ids = [s.id for s in steps]
    if not isinstance(target, str) or target not in ids:
        raise sf.fail(f"'{key}: {target}' is not a step of guide '{guide_id}' (its steps: {', '.join(ids)})")
    if key == "before":
        return ids.index(target)
    anchor = anchors.get(target, target)
    anchors[target] = new_id
    return ids.index(anchor) + 1


def _parse_org(data: object, source: str, base: OrgProfile) -> OrgProfile:
    if data is None:
        return base
    f = _Fields.of(data, source, "org.yaml")
    f.only(fl.name for fl in fields(OrgProfile))
    changes: dict[str, Any] = {
        k: f.text(k) for k in ("org_name", "support_contact", "sign_in_url") if f.has(k)
    }
    url = changes.get("sign_in_url", "https://")
    if not url.startswith(("https://", "http://")) or " " in url:
        raise f.fail(f"'sign_in_url' must be a web address starting with https://, not '{url}'")
    if f.has("key_models"):
        models = f.data["key_models"]
        if not isinstance(models, list) or not all(isinstance(m, str) and m.strip() for m in models):
            raise f.fail(
                "'key_models' must be a list of key model names, e.g. [YubiKey 5 NFC, YubiKey 5C NFC]"
            )
        changes["key_models"] = tuple(m.strip() for m in models)
    if f.has("pin_min_length"):
        changes["pin_min_length"] = f.integer("pin_min_length", 0, MIN_PIN_LENGTH, MAX_PIN_LENGTH)
    return replace(base, **changes)


# --- files ----------------------------------------------------------------------------------


def _yaml_files(folder: Traversable) -> list[Traversable]:
    files = [
        item
        for item in folder.iterdir()
        if item.is_file() and item.name.endswith((".yaml", ".yml")) and not item.name.startswith(".")
    ]
    return sorted(files, key=lambda item: item.name)


def _shipped_files() -> list[tuple[str, object]]:
    order = {m.value: i for i, m in enumerate(GuideMethod)}
    found = []
    for file in _yaml_files(resources.files(SHIPPED_PACKAGE)):
        source = f"bot/guides/{file.name}"
        data = parse_yaml(_read_text(file, source), source)
        method = data.get("method") if isinstance(data, dict) else None
        found.append((order.get(str(method), len(order)), source, data))
    return [(source, data) for _, source, data in sorted(found, key=lambda row: (row[0], row[1]))]


def _org_folder(folder: Path) -> tuple[Path | None, list[Path]]:
    """(the org.yaml if any, the guide files), both sorted by name."""
    if not folder.is_dir():
        raise GuideError("is not a folder (the guides folder must hold guide YAML files)", source=str(folder))
    files = [Path(str(item)) for item in _yaml_files(folder)]
    org_files = [p for p in files if p.name in ORG_FILE_NAMES]
    if len(org_files) > 1:
        raise GuideError("has both org.yaml and org.yml; keep one", source=str(folder))
    return (org_files[0] if org_files else None), [p for p in files if p.name not in ORG_FILE_NAMES]


def _load_file(path: Path) -> object:
    return parse_yaml(_read_text(path, str(path)), str(path))


# --- assembling the library -----------------------------------------------------------------


@dataclass
class _Assembly:
    """Guides in load order, with the file each came from; org files applied on top of shipped ones."""

    checker: _Checker
    guides: dict[str, Guide] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    org_defined: set[str] = field(default_factory=set)
    declared_default: dict[str, str] = field(default_factory=dict)

    def add(self, source: str, data: object, *, shipped: bool) -> None:
        if data is None:
            raise GuideError(
                "is empty; a guide needs id, method, title, summary, estimated_minutes and steps",
                source=source,
            )
        f = _Fields.of(data, source, "a guide file")
        guide = _parse_guide(f, self.checker)
        taken = guide.id in self.org_defined or (shipped and guide.id in self.guides)
        if taken:
            raise GuideError(
                f"guide '{guide.id}' is already defined in {self.sources[guide.id]}", source=source
            )
        if not shipped:
            self.org_defined.add(guide.id)
            self._note_default(guide, source, f.data)
        self.guides[guide.id] = guide
        self.sources[guide.id] = source

    def extend(self, source: str, data: object) -> None:
        f = _Fields.of(data, source, "a guide file")
        base_id = f.slug("extends")
        if base_id not in self.guides:
            known = ", ".join(self.guides)
            raise f.fail(f"'extends: {base_id}' names no guide (known guides: {known})")
        guide = _extend(f, self.guides[base_id], self.checker)
        if guide.id != base_id and guide.id in self.guides:
            raise f.fail(f"guide '{guide.id}' is already defined in {self.sources[guide.id]}")
        self._note_default(guide, source, f.data)
        self.guides[guide.id] = guide
        self.sources[guide.id] = source

    def _note_default(self, guide: Guide, source: str, data: dict[str, Any]) -> None:
        if data.get("default") is True:
            self.declared_default[guide.id] = source
        elif "default" in data:
            self.declared_default.pop(guide.id, None)

    def settle_default(self, where: str) -> list[Guide]:
        """An organisation's `default: true` wins over the shipped default; exactly one remains."""
        if len(self.declared_default) > 1:
            first, second = list(self.declared_default.items())[:2]
            problem = (
                f"guides '{first[0]}' ({first[1]}) and '{second[0]}' ({second[1]}) are both marked default"
            )
            raise GuideError(problem + "; mark only one", source=where)
        chosen = next(iter(self.declared_default), None)
        guides = [replace(g, default=g.id == chosen) if chosen else g for g in self.guides.values()]
        defaults = [g.id for g in guides if g.default]
        if len(defaults) != 1:
            problem = (
                "no guide is marked 'default: true'"
                if not defaults
                else (f"guides {', '.join(defaults)} are all marked 'default: true'")
            )
            raise GuideError(problem + "; mark exactly one (the guide new users start with)", source=where)
        return guides


class GuideLibrary:
    """The loaded, checked guides. `get` returns templates; `render` fills them in for one user."""

    def __init__(self, guides: Iterable[Guide], org: OrgProfile | None = None) -> None:
        self.org = org or OrgProfile()
        checker = _Checker(self.org)
        ordered = list(guides)
        for guide in ordered:
            checker.guide(guide, f"guide '{guide.id}'")
        ids = [g.id for g in ordered]
        if len(set(ids)) != len(ids):
            raise GuideError(f"guide ids must be unique, got {', '.join(ids)}")
        if sum(g.default for g in ordered) != 1:
            raise GuideError("exactly one guide must be marked default")
        self._guides = {g.id: g for g in sorted(ordered, key=lambda g: not g.default)}

    @classmethod
    def load(cls, extra_dir: Path | None = None, *, org: OrgProfile | None = None) -> GuideLibrary:
        """The shipped guides, then the organisation's folder (org.yaml, overrides, new guides, extends)."""
        org = org or OrgProfile()
        org_file, guide_files = _org_folder(Path(extra_dir)) if extra_dir is not None else (None, [])
        if org_file is not None:
            org = _parse_org(_load_file(org_file), str(org_file), org)
        assembly = _Assembly(_Checker(org))
        for source, data in _shipped_files():
            assembly.add(source, data, shipped=True)
        loaded = [(str(path), _load_file(path)) for path in guide_files]
        for source, data in loaded:
            if not (isinstance(data, dict) and "extends" in data):
                assembly.add(source, data, shipped=False)
        for source, data in loaded:
            if isinstance(data, dict) and "extends" in data:
                assembly.extend(source, data)
        where = str(extra_dir) if extra_dir is not None else "bot/guides"
        return cls(assembly.settle_default(where), org)

    def get(self, guide_id: str) -> Guide:
        try:
            return self._guides[guide_id]
        except KeyError:
            raise UnknownGuideError(f"no guide '{guide_id}' (known: {', '.join(self._guides)})") from None

    def default(self) -> Guide:
        return next(iter(self._guides.values()))

    def all(self) -> list[Guide]:
        """Every guide, the default first, then in load order."""
        return list(self._guides.values())

    def for_method(self, method: GuideMethod | str) -> Guide:
        """The guide for a method: the default if it is one, else the one whose id is the method."""
        candidates = [g for g in self._guides.values() if g.method == method]
        if not candidates:
            raise UnknownGuideError(f"no guide for method '{method}'")
        return min(candidates, key=lambda g: (not g.default, g.id != method))

    def render(self, guide_id: str, context: Mapping[str, str | int] | None = None) -> Guide:
        """The guide with placeholders filled: the org profile's values, overridden by `context`
        (per-user values such as the pass's tap_expiry)."""
        guide = self.get(guide_id)
        values = self.org.values()
        for key, value in (context or {}).items():
            if key not in PLACEHOLDERS:
                raise GuideError(
                    f"render context has unknown placeholder '{key}'", source=f"guide '{guide_id}'"
                )
            values[key] = escape_mrkdwn(str(value))
        rendered = _fill_guide(guide, values)
        _check_rendered(rendered)
        return rendered

    def __iter__(self) -> Iterator[Guide]:
        return iter(self._guides.values())

    def __len__(self) -> int:
        return len(self._guides)


def _fill_guide(guide: Guide, values: Mapping[str, str]) -> Guide:
    def opt(text: str | None) -> str | None:
        return None if text is None else fill(text, values)

    steps = tuple(
        replace(
            s, title=fill(s.title, values), text=fill(s.text, values), tip=opt(s.tip), expect=opt(s.expect)
        )
        for s in guide.steps
    )
    return replace(guide, title=fill(guide.title, values), summary=fill(guide.summary, values), steps=steps)
