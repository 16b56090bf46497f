"""MLflow's ``search_runs`` filter and ``order_by`` grammar: parsed to a typed AST, evaluated here.

Pure: no MLflow import, no I/O. It follows MLflow's ``SearchUtils``
(``mlflow/utils/search_utils.py``) and the syntax its documentation gives:

- a filter is comparisons joined by ``AND`` (any case); there is no ``OR`` and
  there are no parentheses around clauses;
- a comparison is ``<entity>.<key> <op> <value>``. The entities are ``metrics``
  (``metric``), ``params`` (``param``, ``parameter``, ``parameters``), ``tags``
  (``tag``) and ``attributes`` (``attribute``, ``attr``, ``run``); a bare name
  is an attribute. A key with dots, spaces or other characters is quoted in
  backticks or double quotes (``tags.`mlflow.runName```); an unquoted dotted key
  (``tags.mlflow.runName``) is read whole;
- the operators, by entity: metrics ``= != < <= > >=`` against numbers; params
  and tags ``= != LIKE ILIKE`` against quoted strings, and ``IS NULL`` /
  ``IS NOT NULL``; string attributes (``run_id``, ``run_name`` or ``"run name"``,
  ``status``, ``user_id``, ``artifact_uri``, ``lifecycle_stage``) ``= != LIKE
  ILIKE``, and ``IN`` / ``NOT IN`` (a parenthesised list of strings) on ``run_id``
  only; numeric attributes (``start_time``, ``end_time``, ``created`` meaning
  ``start_time``) the numeric operators against numbers;
- ``LIKE`` is case-sensitive and ``ILIKE`` not; ``%`` is any run of characters,
  ``_`` any one character. Strings take single or double quotes.

A run lacking the key never matches (``!=`` included), as in MLflow; ``IS NULL``
is how to ask for it. Anything else raises :class:`SearchError`, whose message
names the problem (the MLflow face answers it with 400 ``INVALID_PARAMETER_VALUE``).

``order_by`` is ``<entity>.<key> [ASC|DESC]``; :func:`sort_runs` orders as MLflow
does: by start time, newest first, then run id, and then by each clause, with
runs that lack the key (or have NaN) last.

``experiments/search`` has a grammar of its own (MLflow's ``SearchExperimentsUtils``):
the attributes ``name`` (``= != LIKE ILIKE`` against a string), ``creation_time``
and ``last_update_time`` (numeric operators, epoch milliseconds), and tags
(``tags.<key>``, ``= != LIKE ILIKE``); ``order_by`` takes ``name``,
``experiment_id``, ``creation_time`` and ``last_update_time``, after the default
order: newest creation first, then experiment id.
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

__all__ = [
    "EXPERIMENT_ATTRIBUTES",
    "NUMERIC_ATTRIBUTES",
    "STRING_ATTRIBUTES",
    "Comparison",
    "Entity",
    "OrderBy",
    "SearchError",
    "SearchExperiment",
    "SearchRun",
    "Value",
    "decode_page_token",
    "encode_page_token",
    "filter_experiments",
    "filter_runs",
    "matches",
    "parse_experiment_filter",
    "parse_experiment_order_by",
    "parse_filter",
    "parse_order_by",
    "sort_experiments",
    "sort_runs",
]


class SearchError(ValueError):
    """A filter, an ``order_by`` clause or a page token that MLflow's grammar does not accept."""


class Entity(enum.StrEnum):
    """What a comparison's key names."""

    METRIC = "metric"
    PARAM = "param"
    TAG = "tag"
    ATTRIBUTE = "attribute"


_ENTITIES = {
    "metric": Entity.METRIC,
    "metrics": Entity.METRIC,
    "param": Entity.PARAM,
    "params": Entity.PARAM,
    "parameter": Entity.PARAM,
    "parameters": Entity.PARAM,
    "tag": Entity.TAG,
    "tags": Entity.TAG,
    "attribute": Entity.ATTRIBUTE,
    "attributes": Entity.ATTRIBUTE,
    "attr": Entity.ATTRIBUTE,
    "run": Entity.ATTRIBUTE,
}
_DATASETS = {"dataset", "datasets"}

STRING_ATTRIBUTES = frozenset(
    {"run_id", "run_name", "status", "user_id", "artifact_uri", "lifecycle_stage"}
)
"""The attributes compared as strings (``IN`` / ``NOT IN`` on ``run_id`` only)."""
NUMERIC_ATTRIBUTES = frozenset({"start_time", "end_time"})
"""The attributes compared as numbers (epoch milliseconds); ``created`` means ``start_time``."""
_ALIASES = {
    "created": "start_time",
    "Created": "start_time",
    "run name": "run_name",
    "Run name": "run_name",
    "Run Name": "run_name",
}

_NUMERIC_OPS = frozenset({"=", "!=", "<", "<=", ">", ">="})
_STRING_OPS = frozenset({"=", "!=", "LIKE", "ILIKE"})
_NULL_OPS = frozenset({"IS NULL", "IS NOT NULL"})
_LIST_OPS = frozenset({"IN", "NOT IN"})

Value: TypeAlias = "float | str | tuple[str, ...] | None"
"""A comparison's right side: a number, a string, a list of strings (``IN``), or None (``IS NULL``)."""


@dataclass(frozen=True)
class Comparison:
    """One clause: ``<entity>.<key> <op> <value>``, checked against MLflow's rules."""

    entity: Entity
    key: str
    op: str
    """``=``, ``!=``, ``<``, ``<=``, ``>``, ``>=``, ``LIKE``, ``ILIKE``, ``IN``, ``NOT IN``,
    ``IS NULL`` or ``IS NOT NULL``."""
    value: Value


@dataclass(frozen=True)
class OrderBy:
    """One ``order_by`` clause."""

    entity: Entity
    key: str
    ascending: bool = True


@dataclass(frozen=True)
class SearchRun:
    """A run as MLflow's search sees it: attributes, params and tags as strings, latest metrics.

    Times are epoch milliseconds (None where the run has none yet).
    """

    run_id: str
    run_name: str = ""
    status: str = "RUNNING"
    user_id: str = ""
    artifact_uri: str = ""
    lifecycle_stage: str = "active"
    start_time: int | None = None
    end_time: int | None = None
    params: Mapping[str, str] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)


# -- tokens ----------------------------------------------------------------------------------------
_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<string>'[^']*'|"[^"]*")
  | (?P<backtick>`[^`]*`)
  | (?P<number>[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?(?![\w.]))
  | (?P<op><=|>=|!=|<>|==|=|<|>)
  | (?P<punct>[(),.])
  | (?P<word>[A-Za-z_][\w:/-]*|\d[\w:/-]*)
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    at: int


def _tokens(text: str) -> list[_Token]:
    out: list[_Token] = []
    at = 0
    while at < len(text):
        found = _TOKEN.match(text, at)
        if found is None:
            quote = text[at]
            if quote in "'\"`":
                raise SearchError(f"unclosed quote {quote} at position {at} in {text!r}")
            raise SearchError(f"unexpected character {quote!r} at position {at} in {text!r}")
        kind = found.lastgroup
        assert kind is not None
        if kind != "space":
            out.append(_Token(kind, found.group(), at))
        at = found.end()
    return out


class _Reader:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.i = 0

    def peek(self, offset: int = 0) -> _Token | None:
        i = self.i + offset
        return self.tokens[i] if i < len(self.tokens) else None

    def take(self) -> _Token:
        token = self.peek()
        if token is None:
            raise SearchError(f"unexpected end of {self.text!r}")
        self.i += 1
        return token

    def keyword(self, *words: str) -> bool:
        """Take the keywords ``words`` if they come next (any case)."""
        for offset, word in enumerate(words):
            token = self.peek(offset)
            if token is None or token.kind != "word" or token.text.upper() != word:
                return False
        self.i += len(words)
        return True

    def done(self) -> bool:
        return self.i >= len(self.tokens)


def _unquote(token: _Token) -> str:
    return token.text[1:-1]


def _identifier(reader: _Reader, what: str) -> tuple[Entity, str]:
    """``entity.key``, ``entity.`quoted key```, ``entity."quoted key"`` or a bare attribute."""
    first = reader.take()
    if first.kind == "backtick":
        head = _unquote(first)
    elif first.kind == "word":
        head = first.text
    elif first.kind == "string" and first.text.startswith('"'):
        head = _unquote(first)  # a bare "run name"
    else:
        raise SearchError(f"expected a key in {what} at position {first.at}, found {first.text!r}")
    dot = reader.peek()
    if dot is None or dot.text != ".":
        return Entity.ATTRIBUTE, _attribute(head)
    reader.take()
    entity = _entity(head)
    key = _key_after(reader, head, what)
    if entity is Entity.ATTRIBUTE:
        key = _attribute(key)
    return entity, key


def _entity(name: str) -> Entity:
    entity = _ENTITIES.get(name)  # case-sensitive, as in MLflow
    if entity is None:
        if name in _DATASETS:
            raise SearchError("dataset filters are not supported: runjournal runs have no datasets")
        raise SearchError(
            f"invalid entity type {name!r}: use metrics, params, tags or attributes "
            "(or metric, param, parameter, tag, attribute, attr, run)"
        )
    return entity


def _attribute(name: str) -> str:
    key = _ALIASES.get(name, name)
    if key not in STRING_ATTRIBUTES and key not in NUMERIC_ATTRIBUTES:
        known = ", ".join(sorted(STRING_ATTRIBUTES | NUMERIC_ATTRIBUTES | {"created"}))
        raise SearchError(f"invalid attribute key {name!r}: the attributes are {known}")
    return key


# -- filters ---------------------------------------------------------------------------------------
def parse_filter(text: str | None) -> list[Comparison]:
    """The comparisons of a ``search_runs`` filter, in order (an empty or None filter: none).

    Raises :class:`SearchError` naming what is wrong.
    """
    if text is None or not text.strip():
        return []
    reader = _Reader(text)
    clauses = [_comparison(reader)]
    while not reader.done():
        if reader.keyword("AND"):
            clauses.append(_comparison(reader))
            continue
        token = reader.take()
        if token.kind == "word" and token.text.upper() == "OR":
            raise SearchError(f"OR is not supported in {text!r}: clauses are joined by AND only")
        raise SearchError(f"expected AND at position {token.at} in {text!r}, found {token.text!r}")
    return clauses


def _comparison(reader: _Reader) -> Comparison:
    start = reader.peek()
    if start is not None and start.text == "(":
        raise SearchError(
            f"parentheses around clauses are not supported (position {start.at} in "
            f"{reader.text!r}): join comparisons with AND"
        )
    entity, key = _identifier(reader, repr(reader.text))
    op = _operator(reader)
    if op in _NULL_OPS:
        value: Value = None
    elif op in _LIST_OPS:
        value = _string_list(reader)
    else:
        value = _value(reader)
    return _checked(Comparison(entity, key, op, value))


def _operator(reader: _Reader) -> str:
    token = reader.peek()
    if token is None:
        raise SearchError(f"a comparison in {reader.text!r} ends without an operator")
    if token.kind == "op":
        reader.take()
        if token.text in ("==", "<>"):
            raise SearchError(f"invalid operator {token.text!r}: use = or !=")
        return token.text
    for words in (("IS", "NOT", "NULL"), ("IS", "NULL"), ("NOT", "IN"), ("LIKE",), ("ILIKE",)):
        if reader.keyword(*words):
            return " ".join(words)
    if reader.keyword("IN"):
        return "IN"
    raise SearchError(
        f"expected an operator at position {token.at} in {reader.text!r}, found {token.text!r} "
        "(=, !=, <, <=, >, >=, LIKE, ILIKE, IN, NOT IN, IS NULL, IS NOT NULL)"
    )


def _value(reader: _Reader) -> Value:
    token = reader.peek()
    if token is None:
        raise SearchError(f"a comparison in {reader.text!r} ends without a value")
    reader.take()
    if token.kind == "string":
        return _unquote(token)
    if token.kind == "number":
        return float(token.text)
    raise SearchError(
        f"expected a value at position {token.at} in {reader.text!r}, found {token.text!r} "
        "(strings take single or double quotes)"
    )


def _string_list(reader: _Reader) -> tuple[str, ...]:
    opening = reader.take()
    if opening.text != "(":
        raise SearchError(
            f"IN and NOT IN take a parenthesised list of quoted strings, found {opening.text!r}"
        )
    items: list[str] = []
    while True:
        token = reader.take()
        if token.kind != "string":
            raise SearchError(
                f"IN and NOT IN take quoted strings; found {token.text!r} at position {token.at}"
            )
        items.append(_unquote(token))
        separator = reader.take()
        if separator.text == ")":
            return tuple(items)
        if separator.text != ",":
            raise SearchError(
                f"expected , or ) at position {separator.at}, found {separator.text!r}"
            )


def _checked(clause: Comparison) -> Comparison:
    """Raise unless MLflow allows ``clause.op`` and the value's type on this entity and key."""
    entity, key, op, value = clause.entity, clause.key, clause.op, clause.value
    name = f"{entity.value}s.{key}" if entity is not Entity.ATTRIBUTE else f"attributes.{key}"
    if entity is Entity.METRIC or (entity is Entity.ATTRIBUTE and key in NUMERIC_ATTRIBUTES):
        allowed = _NUMERIC_OPS
        if op in allowed and not isinstance(value, float):
            raise SearchError(f"{name} compares with a number, not {value!r}")
    elif entity in (Entity.PARAM, Entity.TAG):
        allowed = _STRING_OPS | _NULL_OPS
        if op in _STRING_OPS and not isinstance(value, str):
            raise SearchError(
                f"{name} compares with a quoted string (e.g. '0.001'), not the number {value!r}"
            )
    else:
        allowed = _STRING_OPS | (_LIST_OPS if key == "run_id" else frozenset())
        if op in _LIST_OPS and key != "run_id":
            raise SearchError(f"only attributes.run_id takes IN and NOT IN, not {name}")
        if op in _STRING_OPS and not isinstance(value, str):
            raise SearchError(f"{name} compares with a quoted string, not the number {value!r}")
    if op not in allowed:
        raise SearchError(
            f"invalid operator {op} for {name}: use one of {', '.join(sorted(allowed))}"
        )
    return clause


def _like(pattern: str, flags: int = 0) -> re.Pattern[str]:
    body = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return re.compile(body, flags | re.DOTALL)


def _lhs(run: SearchRun, entity: Entity, key: str) -> Any:
    if entity is Entity.METRIC:
        return run.metrics.get(key)
    if entity is Entity.PARAM:
        return run.params.get(key)
    if entity is Entity.TAG:
        return run.tags.get(key)
    return getattr(run, key)


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: bool(a == b),
    "!=": lambda a, b: bool(a != b),
    "<": lambda a, b: bool(a < b),
    "<=": lambda a, b: bool(a <= b),
    ">": lambda a, b: bool(a > b),
    ">=": lambda a, b: bool(a >= b),
    "LIKE": lambda a, b: _like(b).fullmatch(a) is not None,
    "ILIKE": lambda a, b: _like(b, re.IGNORECASE).fullmatch(a) is not None,
    "IN": lambda a, b: a in b,
    "NOT IN": lambda a, b: a not in b,
}


def matches(run: SearchRun, clauses: Sequence[Comparison]) -> bool:
    """True if ``run`` satisfies every clause (a missing key satisfies only ``IS NULL``)."""
    for clause in clauses:
        lhs = _lhs(run, clause.entity, clause.key)
        if clause.op == "IS NULL":
            ok = lhs is None
        elif clause.op == "IS NOT NULL":
            ok = lhs is not None
        else:
            ok = lhs is not None and _COMPARE[clause.op](lhs, clause.value)
        if not ok:
            return False
    return True


def filter_runs(runs: Sequence[SearchRun], text: str | None) -> list[SearchRun]:
    """The runs that match the filter ``text``, in their order."""
    clauses = parse_filter(text)
    return [run for run in runs if matches(run, clauses)]


# -- order_by --------------------------------------------------------------------------------------
def parse_order_by(text: str) -> OrderBy:
    """One ``order_by`` clause: ``<entity>.<key> [ASC|DESC]`` (ascending by default)."""
    if not text or not text.strip():
        raise SearchError("an order_by clause is empty")
    reader = _Reader(text)
    entity, key = _identifier(reader, f"order_by {text!r}")
    ascending = True
    if reader.keyword("DESC"):
        ascending = False
    elif reader.keyword("ASC"):
        ascending = True
    if not reader.done():
        token = reader.take()
        raise SearchError(
            f"invalid order_by clause {text!r}: expected ASC or DESC at position {token.at}, "
            f"found {token.text!r}"
        )
    return OrderBy(entity, key, ascending)


def _sort_key(run: SearchRun, order: OrderBy) -> tuple[bool, Any]:
    # MLflow's rule: missing values go last either way, NaN just before them.
    value = _lhs(run, order.entity, order.key)
    missing = value is None
    nan = isinstance(value, float) and math.isnan(value)
    if order.ascending:
        return (missing or nan, math.inf if missing else -math.inf if nan else value)
    return (not (missing or nan), -math.inf if missing else math.inf if nan else value)


def sort_runs(runs: Sequence[SearchRun], order_by: Sequence[str | OrderBy] = ()) -> list[SearchRun]:
    """``runs`` in MLflow's order: newest start first, then run id, then by each clause.

    The first clause is the primary order. Runs lacking the key (or holding NaN)
    come last. Mixing numbers and strings under one key cannot happen: params,
    tags and string attributes are strings, metrics and times numbers.
    """
    clauses = [parse_order_by(o) if isinstance(o, str) else o for o in order_by]
    ordered = sorted(runs, key=lambda r: r.run_id)
    # Python's sort is stable (reverse=True too): each pass keeps the order of the ones before.
    for clause in [_NEWEST_FIRST, *reversed(clauses)]:
        ordered.sort(key=_key_for(clause), reverse=not clause.ascending)
    return ordered


_NEWEST_FIRST = OrderBy(Entity.ATTRIBUTE, "start_time", ascending=False)


def _key_for(clause: OrderBy) -> Callable[[SearchRun], tuple[bool, Any]]:
    return lambda run: _sort_key(run, clause)


# -- paging ----------------------------------------------------------------------------------------
def encode_page_token(offset: int) -> str:
    """An opaque ``page_token`` for the page that starts at ``offset``."""
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def decode_page_token(token: str | None) -> int:
    """The offset a ``page_token`` of :func:`encode_page_token` stands for (0 for none)."""
    if not token:
        return 0
    try:
        decoded = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise SearchError(f"invalid page token {token!r}") from None
    offset = decoded.get("offset") if isinstance(decoded, dict) else None
    if type(offset) is not int or offset < 0:
        raise SearchError(f"invalid page token {token!r}")
    return offset


# -- experiments -----------------------------------------------------------------------------------
EXPERIMENT_ATTRIBUTES = frozenset({"name", "creation_time", "last_update_time"})
"""The attributes ``experiments/search`` filters on (``order_by`` takes ``experiment_id`` too)."""
_EXPERIMENT_NUMERIC = frozenset({"creation_time", "last_update_time"})
_EXPERIMENT_ORDER = frozenset({*EXPERIMENT_ATTRIBUTES, "experiment_id"})


@dataclass(frozen=True)
class SearchExperiment:
    """An experiment as MLflow's ``experiments/search`` sees it (times in epoch milliseconds)."""

    experiment_id: str
    name: str
    creation_time: int
    last_update_time: int
    tags: Mapping[str, str] = field(default_factory=dict)


def _experiment_identifier(reader: _Reader, what: str, keys: frozenset[str]) -> tuple[Entity, str]:
    first = reader.peek()
    entity, key = _raw_identifier(reader, what)
    if entity is Entity.TAG:
        return entity, key
    if entity is not Entity.ATTRIBUTE or key not in keys:
        at = 0 if first is None else first.at
        raise SearchError(
            f"invalid key at position {at} in {what}: experiments are searched by "
            f"{', '.join(sorted(keys))} or tags.<key>"
        )
    return entity, key


def _raw_identifier(reader: _Reader, what: str) -> tuple[Entity, str]:
    """Like :func:`_identifier`, without the check against the runs' attributes."""
    first = reader.take()
    if first.kind in ("backtick", "word") or (first.kind == "string" and first.text[0] == '"'):
        head = first.text if first.kind == "word" else _unquote(first)
    else:
        raise SearchError(f"expected a key in {what} at position {first.at}, found {first.text!r}")
    dot = reader.peek()
    if dot is None or dot.text != ".":
        return Entity.ATTRIBUTE, head
    reader.take()
    entity = _entity(head)
    if entity not in (Entity.ATTRIBUTE, Entity.TAG):
        raise SearchError(f"experiments have no {head}: use attributes or tags in {what}")
    key = _key_after(reader, head, what)
    return entity, key


def _key_after(reader: _Reader, head: str, what: str) -> str:
    """The key after ``head.``: backtick- or double-quoted, or dotted words and numbers."""
    part = reader.take()
    if part.kind == "backtick" or (part.kind == "string" and part.text.startswith('"')):
        key = _unquote(part)
    elif part.kind in ("word", "number"):
        key = part.text
        while (nxt := reader.peek()) is not None and nxt.text == ".":
            following = reader.peek(1)
            if following is None or following.kind not in ("word", "number"):
                break
            reader.i += 2
            key += "." + following.text
    else:
        raise SearchError(
            f"expected a key after {head}. at position {part.at} in {what}, found {part.text!r}"
        )
    if not key:
        raise SearchError(f"empty key after {head}. in {what}")
    return key


def parse_experiment_filter(text: str | None) -> list[Comparison]:
    """The comparisons of an ``experiments/search`` filter (an empty or None filter: none)."""
    if text is None or not text.strip():
        return []
    reader = _Reader(text)
    clauses: list[Comparison] = []
    while True:
        entity, key = _experiment_identifier(reader, repr(text), EXPERIMENT_ATTRIBUTES)
        op = _operator(reader)
        numeric = key in _EXPERIMENT_NUMERIC and entity is Entity.ATTRIBUTE
        allowed = _NUMERIC_OPS if numeric else _STRING_OPS
        name = f"tags.{key}" if entity is Entity.TAG else key
        if op not in allowed:
            raise SearchError(
                f"invalid operator {op} for {name}: use one of {', '.join(sorted(allowed))}"
            )
        value = _value(reader)
        if numeric and not isinstance(value, float):
            raise SearchError(f"{name} compares with a number (epoch milliseconds), not {value!r}")
        if not numeric and not isinstance(value, str):
            raise SearchError(f"{name} compares with a quoted string, not the number {value!r}")
        clauses.append(Comparison(entity, key, op, value))
        if reader.done():
            return clauses
        if not reader.keyword("AND"):
            token = reader.take()
            if token.kind == "word" and token.text.upper() == "OR":
                raise SearchError(
                    f"OR is not supported in {text!r}: clauses are joined by AND only"
                )
            raise SearchError(
                f"expected AND at position {token.at} in {text!r}, found {token.text!r}"
            )


def _experiment_value(experiment: SearchExperiment, entity: Entity, key: str) -> Any:
    if entity is Entity.TAG:
        return experiment.tags.get(key)
    return getattr(experiment, key)


def filter_experiments(
    experiments: Sequence[SearchExperiment], text: str | None
) -> list[SearchExperiment]:
    """The experiments that match the ``experiments/search`` filter ``text``, in their order."""
    clauses = parse_experiment_filter(text)
    out = []
    for experiment in experiments:
        for clause in clauses:
            lhs = _experiment_value(experiment, clause.entity, clause.key)
            if lhs is None or not _COMPARE[clause.op](lhs, clause.value):
                break
        else:
            out.append(experiment)
    return out


def parse_experiment_order_by(text: str) -> OrderBy:
    """One ``experiments/search`` ``order_by`` clause: ``<attribute> [ASC|DESC]``."""
    if not text or not text.strip():
        raise SearchError("an order_by clause is empty")
    reader = _Reader(text)
    entity, key = _experiment_identifier(reader, f"order_by {text!r}", _EXPERIMENT_ORDER)
    if entity is Entity.TAG:
        raise SearchError(f"experiments cannot be ordered by a tag: {text!r}")
    ascending = not reader.keyword("DESC")
    if ascending:
        reader.keyword("ASC")
    if not reader.done():
        token = reader.take()
        raise SearchError(
            f"invalid order_by clause {text!r}: expected ASC or DESC at position {token.at}, "
            f"found {token.text!r}"
        )
    return OrderBy(entity, key, ascending)


def sort_experiments(
    experiments: Sequence[SearchExperiment], order_by: Sequence[str] = ()
) -> list[SearchExperiment]:
    """``experiments`` by each clause, then (MLflow's default) newest creation, then id."""
    clauses = [parse_experiment_order_by(o) for o in order_by]
    ordered = sorted(experiments, key=lambda e: e.experiment_id)
    ordered.sort(key=lambda e: e.creation_time, reverse=True)
    for clause in reversed(clauses):
        key = clause.key
        ordered.sort(key=lambda e: getattr(e, key), reverse=not clause.ascending)
    return ordered
