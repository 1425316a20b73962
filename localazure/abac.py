"""Evaluate Azure ABAC role-assignment conditions (conditionVersion 2.0) of the delegation kind.

Covers the grammar the "Constrain roles and principal types" examples use (azure-facts section 4):
`!`, `AND`/`&&`, `OR`/`||`, parentheses, `ActionMatches{'…'}`, and
`@Request|@Resource[Microsoft.Authorization/roleAssignments:Attr] [ForAnyOfAnyValues:]Operator {v1, v2}` with the
Guid/String (IgnoreCase, Not) equality operators. Anything else raises `ConditionError`; the caller treats an
unreadable condition as not fulfilled, never as granted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from localazure.roles import guid_of, permission_matches


class ConditionError(ValueError):
    pass


_TOKEN = re.compile(
    r"""\s*(?:
      (?P<lpar>\() | (?P<rpar>\)) | (?P<not>!)
    | (?P<and>AND\b|&&) | (?P<or>OR\b|\|\|)
    | (?P<action>(?:ActionMatches|SubOperationMatches)\s*\{\s*'(?P<action_value>[^']*)'\s*\})
    | (?P<attr>@(?P<source>Request|Resource|Principal|Environment)\[(?P<attr_name>[^\]]+)\])
    | (?P<guid>[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12})
    | (?P<op>(?:For(?:Any|All)Of(?:Any|All)Values:)?[A-Za-z]+)
    | (?P<set>\{(?P<set_body>[^}]*)\})
    | (?P<str>'(?P<str_body>[^']*)')
    )""",
    re.VERBOSE | re.IGNORECASE,
)


@dataclass(frozen=True)
class Context:
    action: str
    request: Mapping[str, str]  # attribute suffix (lower-case, e.g. "roledefinitionid") -> value
    resource: Mapping[str, str]


def _tokens(text: str) -> list[tuple[str, re.Match[str]]]:
    out, pos = [], 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise ConditionError(f"cannot read condition at offset {pos}: {text[pos:pos + 30]!r}")
        # Nested groups close before their parent, so `lastgroup` names the top-level alternative.
        out.append((str(m.lastgroup), m))
        pos = m.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return out


def _values(token: tuple[str, re.Match[str]]) -> list[str]:
    kind, m = token
    if kind == "set":
        return [v.strip().strip("'").strip() for v in m.group("set_body").split(",") if v.strip()]
    if kind == "str":
        return [m.group("str_body")]
    if kind == "guid":
        return [m.group("guid")]
    raise ConditionError("expected a value or a {set} of values")


def _equal(operator: str, attr_value: str, value: str) -> bool:
    base = operator.lower().removesuffix("ignorecase")
    if base.startswith("guid"):
        return guid_of(attr_value) == guid_of(value)
    if operator.lower().endswith("ignorecase"):
        return attr_value.casefold() == value.casefold()
    return attr_value == value


_OPERATOR = re.compile(r"(?:For(?:Any|All)Of(?:Any|All)Values:)?(?:Guid|String)(?:Not)?Equals(?:IgnoreCase)?",
                       re.IGNORECASE)


def _compare(op_token: str, attr_values: list[str], values: list[str]) -> bool:
    if not _OPERATOR.fullmatch(op_token):
        raise ConditionError(f"unsupported operator {op_token!r}")
    quantifier, _, operator = op_token.rpartition(":")
    negate = "notequals" in operator.lower()
    operator = re.sub("(?i)notequals", "Equals", operator)

    def match(a: str) -> list[bool]:
        return [(_equal(operator, a, v) != negate) for v in values]

    q = quantifier.lower()
    outer_all = q.startswith("forallof")
    inner_all = q.endswith("ofallvalues")
    per_attr = [all(match(a)) if inner_all else any(match(a)) for a in attr_values]
    return bool(per_attr) and (all(per_attr) if outer_all else any(per_attr))


class _Parser:
    def __init__(self, text: str, ctx: Context):
        self.toks = _tokens(text)
        self.i = 0
        self.ctx = ctx

    def peek(self) -> str | None:
        return self.toks[self.i][0] if self.i < len(self.toks) else None

    def take(self) -> tuple[str, re.Match[str]]:
        if self.i >= len(self.toks):
            raise ConditionError("condition ends too early")
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def parse(self) -> bool:
        value = self.or_expr()
        if self.i != len(self.toks):
            raise ConditionError("unexpected text after the condition")
        return value

    def or_expr(self) -> bool:
        value = self.and_expr()
        while self.peek() == "or":
            self.take()
            rhs = self.and_expr()
            value = value or rhs
        return value

    def and_expr(self) -> bool:
        value = self.unary()
        while self.peek() == "and":
            self.take()
            rhs = self.unary()
            value = value and rhs
        return value

    def unary(self) -> bool:
        kind = self.peek()
        if kind == "not":
            self.take()
            return not self.unary()
        if kind == "lpar":
            self.take()
            value = self.or_expr()
            if self.take()[0] != "rpar":
                raise ConditionError("missing ')'")
            return value
        if kind == "action":
            return permission_matches(self.take()[1].group("action_value"), self.ctx.action)
        if kind == "attr":
            return self.attribute()
        raise ConditionError(f"unexpected token {kind!r}")

    def attribute(self) -> bool:
        m = self.take()[1]
        source = m.group("source").lower()
        name = m.group("attr_name").rsplit(":", 1)[-1].strip().lower()
        kind, op = self.take()
        if kind != "op":
            raise ConditionError("expected an operator after the attribute")
        values = _values(self.take())
        bag = self.ctx.request if source == "request" else self.ctx.resource if source == "resource" else {}
        # Compared even when the attribute is absent, so a bad operator is reported whatever the request.
        matched = _compare(op.group("op"), [bag.get(name, "")], values)
        return matched if name in bag else False


def evaluate(condition: str, ctx: Context) -> bool:
    """True when the condition holds; raises ConditionError when it cannot be read."""
    return _Parser(condition, ctx).parse()


def is_readable(condition: str) -> bool:
    try:
        evaluate(condition, Context(action="x", request={}, resource={}))
    except ConditionError:
        return False
    return True
