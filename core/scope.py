"""What may go to whom.

A node's scope is its certificate's area prefix. An event belongs to the
scope that contains its area: a village receives only its own area's events,
a township its subtree, a county everything below it. Control events (key
revocations and policy) also travel down to every node below their area,
since those nodes must refuse the revoked key's later events and fold under
the same policy. The rule reads only the event's entity name and area, so a
relay decides alike whatever plugins it has installed.

A department (the resettlement bureau) is certified for an area and a
*filter* (``Filter``, the certificate's signed ``only`` field): the entity
types it may get and write, and for some of them the values a field of the
record's creation must have (``{"entities": ["case", "dispute"], "match":
{"case": {"category": ["resettlement"]}}}``). The filter reads only events
(entity names, entity ids and top-level body keys), never plugin code, so a
relay without the plugin routes alike: a record's value of a field is the
value in the body of its earliest event in this log, in the total order,
that has that key (``Judge.value``). A filter narrows at each level of a
chain (``Filter.within``).
"""

from __future__ import annotations

import re
from typing import Any

import attrs

from . import codec
from .i18n import N_, Message
from .plugins import CONTROL_ENTITIES

TRUST_ENTITY = "trust"
#: an entity or field name in a filter, and the most names or values one may list
_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
MAX_NAMES = 64


def in_scope(entity: str, area: str, scope: str) -> bool:
    return area.startswith(scope) or (entity in CONTROL_ENTITIES and scope.startswith(area))


#: the same rule in SQL, for the ``events`` table; binds ``:scope``.
SQL = ("(area like :scope || '%' or (entity in ("
       + ", ".join(f"'{name}'" for name in CONTROL_ENTITIES)
       + ") and :scope like area || '%'))")


# -- a department's filter ---------------------------------------------------------


def _names(value: Any, pattern: re.Pattern | None) -> bool:
    return (isinstance(value, list) and 0 < len(value) <= MAX_NAMES
            and len(set(map(repr, value))) == len(value)
            and all(isinstance(v, str) and (pattern.fullmatch(v) if pattern else v.strip())
                    for v in value))


def filter_problem(data: Any) -> Message | None:
    """What is wrong with a certificate's ``only`` field, or None."""
    if not isinstance(data, dict) or not set(data) <= {"entities", "match"} \
            or "entities" not in data:
        return Message(N_("has an “only” field that is not a map of “entities” and an "
                          "optional “match”"))
    if not _names(data["entities"], _NAME):
        return Message(N_("has an “only” field whose entities are not a list of distinct "
                          "entity names"))
    match = data.get("match", {})
    if not isinstance(match, dict) or not all(
            entity in data["entities"] and isinstance(fields, dict) and fields
            and all(_NAME.fullmatch(str(name)) and isinstance(name, str)
                    and _names(values, None) for name, values in fields.items())
            for entity, fields in match.items()):
        return Message(N_("has an “only” field whose match is not a map from a listed entity "
                          "to fields, each with a list of distinct values"))
    return None


@attrs.frozen
class Filter:
    """What a department's certificate lets it get and write (see the module text)."""

    entities: frozenset[str]
    #: entity -> ((field, allowed values), ...)
    match: tuple[tuple[str, tuple[tuple[str, frozenset[str]], ...]], ...] = ()

    @classmethod
    def from_content(cls, data: dict[str, Any]) -> "Filter":
        """From a field ``filter_problem`` passed."""
        match = tuple(sorted((entity, tuple(sorted((name, frozenset(values))
                                                   for name, values in fields.items())))
                             for entity, fields in data.get("match", {}).items()))
        return cls(frozenset(data["entities"]), match)

    @classmethod
    def make(cls, entities, match: dict[str, dict[str, list[str]]] | None = None) -> "Filter":
        """From Python values, checked as a certificate's field is (``InvalidInput``)."""
        from .errors import InvalidInput

        content = {"entities": list(entities)}
        if match:
            content["match"] = {e: {f: list(v) for f, v in fields.items()}
                                for e, fields in match.items()}
        problem = filter_problem(content)
        if problem:
            raise InvalidInput(N_("the department filter {problem}"), problem=problem)
        return cls.from_content(content)

    def to_content(self) -> dict[str, Any]:
        """The certificate's ``only`` field: canonical (sorted) lists."""
        content: dict[str, Any] = {"entities": sorted(self.entities)}
        if self.match:
            content["match"] = {entity: {name: sorted(values) for name, values in fields}
                                for entity, fields in self.match}
        return content

    def conditions(self, entity: str) -> tuple[tuple[str, frozenset[str]], ...]:
        return dict(self.match).get(entity, ())

    def within(self, other: "Filter | None") -> bool:
        """Whether every record this filter passes ``other`` passes too (no wider)."""
        if other is None:
            return True
        if not self.entities <= other.entities:
            return False
        for entity in self.entities:
            mine = dict(self.conditions(entity))
            for name, values in other.conditions(entity):
                if name not in mine or not mine[name] <= values:
                    return False
        return True

    def describe(self) -> str:
        parts = [", ".join(sorted(self.entities))]
        parts += [f"{entity}.{name}={'/'.join(sorted(values))}"
                  for entity, fields in self.match for name, values in fields]
        return "; ".join(parts)


class Judge:
    """Which events a filter passes, as this node's log tells; cached per use."""

    def __init__(self, db, only: Filter):
        self.db, self.only = db, only
        self._values: dict[tuple[str, str, str], Any] = {}

    def value(self, entity: str, entity_id: str, name: str) -> Any:
        """The record's value of ``name``: from the body of its earliest event in this
        log that has the key (its creation), or None if no event held has it."""
        key = (entity, entity_id, name)
        if key not in self._values:  # a value not held yet is looked for again next time
            for (raw,) in self.db.execute("select raw from events where entity = ? and "
                                          "entity_id = ? order by order_key",
                                          [entity, entity_id]):
                body = codec.decode(raw).get("body")
                if isinstance(body, dict) and name in body:
                    self._values[key] = body[name]
                    break
        return self._values.get(key)

    def passes(self, entity: str, entity_id: str) -> bool:
        """Whether an event of this record goes to the filtered node."""
        if entity in CONTROL_ENTITIES:
            return True
        if entity not in self.only.entities:
            return False
        return all(_allowed(self.value(entity, entity_id, name), values)
                   for name, values in self.only.conditions(entity))

    def refusal(self, entity: str, entity_id: str, body: Any) -> Message | None:
        """Why a filtered author may not write this event, or None.

        An event of a listed entity with a match passes if the record's value in
        this log (its creation held here) is allowed and, where the event's own
        body has the key (a creation, or a change of it), that value is allowed
        too; a record whose value this log does not hold is refused: nothing
        shows it lies inside the filter.
        """
        if entity in CONTROL_ENTITIES:
            return None
        if entity not in self.only.entities:
            return Message(N_("outside the department's filter: it may write only {allowed}, "
                              "not {entity}"), allowed=self.only.describe(), entity=entity)
        for name, values in self.only.conditions(entity):
            held = self.value(entity, entity_id, name)
            own = body.get(name) if isinstance(body, dict) and name in body else None
            if held is None and own is None:
                return Message(N_("outside the department's filter: this node holds no "
                                  "{entity} {id} with a {field}, so nothing shows it is one "
                                  "of {values}"), entity=entity, id=entity_id, field=name,
                               values="/".join(sorted(values)))
            for value in (held, own):
                if value is not None and not _allowed(value, values):
                    return Message(N_("outside the department's filter: {entity} {id} has "
                                      "{field} {value}, not one of {values}"), entity=entity,
                                   id=entity_id, field=name, value=str(value),
                                   values="/".join(sorted(values)))
        return None


def grant_problem(cert, issuer) -> Message | None:
    """Why ``cert`` does not lie inside its issuer's certificate, or None: it must
    have a narrower area, or the same area with a filter; and under a filtered
    issuer, a filter no wider than the issuer's."""
    if not (cert.area.startswith(issuer.area) and (len(cert.area) > len(issuer.area)
                                                   or cert.only is not None)):
        return Message(N_("certificate of {name} claims area {area}, wider than or equal "
                          "to its issuer {issuer}'s scope {scope}"), name=cert.name,
                       area=cert.area, issuer=issuer.name, scope=issuer.area)
    if issuer.only is not None and (cert.only is None or not cert.only.within(issuer.only)):
        return Message(N_("certificate of {name} has a department filter ({filter}) wider "
                          "than its issuer {issuer}'s ({scope}): a filter narrows at each "
                          "level"), name=cert.name, issuer=issuer.name,
                       filter=cert.only.describe() if cert.only else "-",
                       scope=issuer.only.describe())
    return None


def _allowed(value: Any, values: frozenset[str]) -> bool:
    return isinstance(value, str) and value in values
