"""The slice of OData `$filter` Graph accepts without advanced queries: eq, startswith, and, or."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from .errors import GraphError

_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>-?\d+(?:\.\d+)?\b)|(?P<ident>[A-Za-z_][\w/.]*)|(?P<punct>[(),:]))"
)
_UNSUPPORTED_OPS = {"ne", "gt", "ge", "lt", "le", "in", "has"}
_UNSUPPORTED_FUNCS = {"endswith", "contains", "not"}


@dataclass(frozen=True)
class Compare:
    prop: str
    value: object
    prefix: bool = False  # startswith(prop, value)


@dataclass(frozen=True)
class AnyOf:
    terms: tuple[Filter, ...]


@dataclass(frozen=True)
class AllOf:
    terms: tuple[Filter, ...]


Filter = Compare | AnyOf | AllOf


def invalid(message: str) -> GraphError:
    return GraphError(400, "BadRequest", f"Invalid filter clause: {message}")


def unsupported(prop: str, resource: str) -> GraphError:
    return GraphError(
        400,
        "Request_UnsupportedQuery",
        f"Unsupported or invalid query filter clause specified for property '{prop}' "
        f"of resource '{resource}'.",
    )


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None:
            raise invalid(f"syntax error at position {pos}")
        kind = match.lastgroup or ""
        out.append((kind, match.group(kind)))
        pos = match.end()
    return out


class _Parser:
    def __init__(self, text: str, props: Mapping[str, str], resource: str) -> None:
        self.tokens = _tokens(text)
        self.pos = 0
        self.props = props
        self.resource = resource

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise invalid("unexpected end of expression")
        self.pos += 1
        return token

    def expect(self, value: str) -> None:
        if self.take()[1] != value:
            raise invalid(f"expected '{value}'")

    def keyword(self, word: str) -> bool:
        token = self.peek()
        if token is not None and token[0] == "ident" and token[1].lower() == word:
            self.pos += 1
            return True
        return False

    def parse(self) -> Filter:
        node = self.any_of()
        if self.peek() is not None:
            raise invalid(f"unexpected '{self.peek()[1]}'")  # type: ignore[index]
        return node

    def any_of(self) -> Filter:
        terms = [self.all_of()]
        while self.keyword("or"):
            terms.append(self.all_of())
        return terms[0] if len(terms) == 1 else AnyOf(tuple(terms))

    def all_of(self) -> Filter:
        terms = [self.atom()]
        while self.keyword("and"):
            terms.append(self.atom())
        return terms[0] if len(terms) == 1 else AllOf(tuple(terms))

    def atom(self) -> Filter:
        kind, value = self.take()
        if value == "(":
            node = self.any_of()
            self.expect(")")
            return node
        if kind != "ident":
            raise invalid(f"unexpected '{value}'")
        if value.lower() == "startswith":
            self.expect("(")
            prop = self.prop(self.take()[1])
            self.expect(",")
            literal = self.literal()
            self.expect(")")
            return Compare(prop, literal, prefix=True)
        if value.lower() in _UNSUPPORTED_FUNCS or (self.peek() or ("", ""))[1] == "(":
            raise unsupported(value, self.resource)
        prop = self.prop(value)
        op = self.take()[1].lower()
        if op in _UNSUPPORTED_OPS:
            raise unsupported(prop, self.resource)
        if op != "eq":
            raise invalid(f"unknown operator '{op}'")
        return Compare(prop, self.literal())

    def prop(self, name: str) -> str:
        canonical = self.props.get(name.lower())
        if canonical is None:
            raise unsupported(name, self.resource)
        return canonical

    def literal(self) -> object:
        kind, value = self.take()
        if kind == "str":
            return value[1:-1].replace("''", "'")
        if kind == "num":
            return float(value) if "." in value else int(value)
        lowered = value.lower()
        if lowered in ("true", "false"):
            return lowered == "true"
        if lowered == "null":
            return None
        raise invalid(f"expected a literal, found '{value}'")


def parse_filter(text: str, props: Mapping[str, str], resource: str) -> Filter:
    """`props` maps lower-cased filterable property names (paths like `assignedTo/id`) to canonical ones."""
    return _Parser(text, props, resource).parse()


def _equal(actual: object, expected: object, prefix: bool) -> bool:
    if isinstance(actual, str) and isinstance(expected, str):
        a, e = actual.casefold(), expected.casefold()
        return a.startswith(e) if prefix else a == e
    return not prefix and actual == expected


def matches(node: Filter, values: Mapping[str, object]) -> bool:
    if isinstance(node, AnyOf):
        return any(matches(t, values) for t in node.terms)
    if isinstance(node, AllOf):
        return all(matches(t, values) for t in node.terms)
    return _equal(values.get(node.prop), node.value, node.prefix)
