"""Policy as synced events: the only settings the fold may read.

Thresholds, windows, deadline rules and release rules change views, so they
cannot be per-node settings: two nodes with the same events would disagree.
A policy value is a ``policy.set`` event for one key at one area, written by
the root of trust for any area, or by a node for its own subtree when the
policy in force delegates that key (``policy.delegated``). It travels down
to every node below its area, and the value in force at an area is the one
set at the most specific enclosing area; without one, the default its plugin
declares. A new value applies to every entity, old and new: the kernel
re-folds what reads the key.

Policy implemented in code (a plugin's deadline rule) is named as
``name@version``; a node that lacks that code holds the entities it governs
rather than folding them differently.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import attrs
from sqlite_utils.migrations import Migrations

from xinfang import hookimpl

from . import areas, codec, store
from .entities import NO, YES, EntityType, listing
from .errors import InvalidEvent, InvalidInput, NotFound, StepRefused
from .i18n import N_, Message, _

ENTITY = "policy"
DELEGATED = "policy.delegated"
KINDS = ("int", "bool", "text", "list", "code")


@attrs.frozen
class PolicyKey:
    """A setting the fold reads, declared by the plugin that reads it."""

    name: str
    #: a msgid (``N_("...")``), shown in the reader's language
    label: str
    default: Any
    kind: str = attrs.field(default="text", validator=attrs.validators.in_(KINDS))
    minimum: int | None = None
    #: a msgid too
    help: str = ""
    #: entity types of *other* plugins whose derived rows read this key (a plugin that
    #: keeps rows about cases in ``xinfang_event_applied``): a change re-folds them too
    entities: tuple[str, ...] = attrs.field(default=(), converter=tuple)

    def convert(self, raw: Any) -> Any:
        """The canonical value of user input (text from the CLI, or JSON values)."""
        # the label as a message of its own: a refusal may be stored (as the reason
        # an arrived policy event is invalid), so it is not rendered here
        where = Message(N_("policy “{label}” ({key})"), label=Message(self.label), key=self.name)
        given = raw if isinstance(raw, str) else repr(raw)
        if self.kind == "int":
            try:
                value = int(raw)
            except (TypeError, ValueError):
                raise InvalidInput(N_("{policy} must be a whole number, got {value}"),
                                   policy=where, value=given) from None
            if isinstance(raw, bool) or (self.minimum is not None and value < self.minimum):
                raise InvalidInput(N_("{policy} must be at least {minimum}, got {value}"),
                                   policy=where, minimum=self.minimum, value=given)
            return value
        if self.kind == "bool":
            text = str(raw).strip().lower()
            if raw is True or text in YES:
                return True
            if raw is False or text in NO:
                return False
            raise InvalidInput(N_("{policy} must be yes or no (true/false), got {value}"),
                               policy=where, value=given)
        if self.kind == "list":
            if isinstance(raw, list) and all(isinstance(x, str) for x in raw):
                return sorted(set(raw))
            if isinstance(raw, str):
                return sorted({x.strip() for x in raw.split(",") if x.strip()})
            raise InvalidInput(N_("{policy} must be a comma-separated list, got {value}"),
                               policy=where, value=given)
        if not isinstance(raw, str) or not raw.strip():
            raise InvalidInput(N_("{policy} cannot be empty"), policy=where)
        if self.kind == "code" and "@" not in raw:
            raise InvalidInput(N_("{policy} must be written as name@version (e.g. statutory@1), "
                                  "got {value}"), policy=where, value=given)
        return raw.strip()


CORE_KEYS = [
    PolicyKey(DELEGATED, N_("policy keys delegated to lower levels to set"), [], kind="list",
              help=N_("policy keys any node may set for its own subtree")),
]

MIGRATIONS = Migrations("policy")


@MIGRATIONS(name="0001_policy_history")
def _schema(db) -> None:
    db.execute("create table policy_history (event_id text primary key, key text not null, "
               "area text not null, value text not null, author text not null, "
               "order_key text not null)")


def entity_id(key: str, area: str) -> str:
    return f"{key}@{area}"


def _value_json(value: Any) -> str:
    return codec.encode(value).decode("utf-8")


def _authorised(ctx, event) -> Message | None:
    """Why ``event``'s author may not set this key here, or None.

    A pure function of the event, the trust data and the policy in force, so
    every node decides alike; a refusal is a conflict, kept and listed, so it
    is a ``Message``, stored language-independent.
    """
    db = ctx.db.conn
    root = store.get_meta(ctx.db, "root_author")
    if event.author == root:
        return None
    row = db.execute("select area from certs where subject = ?", [event.author]).fetchone()
    if row is None or not event.area.startswith(row[0]):
        return Message(N_("only the root, or a node the policy is delegated to, may set policy: "
                          "the author is not the root, and the area is not inside its scope"))
    delegated = ctx.policy(DELEGATED, row[0]) or []
    if event.body["key"] not in delegated or event.body["key"] == DELEGATED:
        return Message(N_("policy {key} is not delegated to lower levels by the root"),
                       key=event.body["key"])
    return None


def _apply(ctx, event) -> None:
    body = event.body
    reason = _authorised(ctx, event)
    if reason:
        raise StepRefused(reason)
    key, area = body["key"], event.area
    db = ctx.db.conn
    current = db.execute("select value from policy_values where key = ? and area = ?",
                         [key, area]).fetchone()
    (version,) = db.execute("select count(*) + 1 from policy_history where key = ? and area = ?",
                            [key, area]).fetchone()
    db.execute("insert into policy_history (event_id, key, area, value, author, order_key) "
               "values (?,?,?,?,?,?)",
               [event.id, key, area, _value_json(body["value"]), event.author, event.order_key])
    db.execute("insert or replace into policy_values (key, area, value, version, event_id, author) "
               "values (?,?,?,?,?,?)",
               [key, area, _value_json(body["value"]), version, event.id, event.author])
    ctx._policy.clear()
    ctx.effect(("policy", key, area), current[0] if current else None,
               _value_json(body["value"]), lambda: _changed(ctx, key, area))


def _changed(ctx, key: str, area: str) -> None:
    """Re-fold what reads ``key``; a change of delegation re-decides every other
    policy event below ``area`` (delegation itself cannot be delegated, so
    this never feeds back on itself)."""
    ctx.policy_changed(key, area)
    if key == DELEGATED:
        for (policy_id,) in ctx.db.conn.execute(
                "select entity_id from entity_heads where entity = ? and area like ? || '%' "
                "and entity_id not like ? union select entity_id from conflicts where entity = ? "
                "and entity_id not like ?", [ENTITY, area, DELEGATED + "@%", ENTITY,
                                             DELEGATED + "@%"]):
            ctx.refold_later(ENTITY, policy_id)


def _reset(ctx, policy_id: str) -> None:
    key, _, area = policy_id.rpartition("@")
    db = ctx.db.conn
    current = db.execute("select value from policy_values where key = ? and area = ?",
                         [key, area]).fetchone()
    db.execute("delete from policy_values where key = ? and area = ?", [key, area])
    db.execute("delete from policy_history where key = ? and area = ?", [key, area])
    ctx._policy.clear()
    if current is not None:
        ctx.effect_removed(("policy", key, area), current[0], lambda: _changed(ctx, key, area))


@hookimpl
def xinfang_entity_types():
    return [EntityType(ENTITY, "策略", ("policy_history",), MIGRATIONS, apply=_apply,
                       reset=_reset)]


@hookimpl
def xinfang_policy_keys():
    return CORE_KEYS


@hookimpl
def xinfang_validate_event(event, node):
    if event.entity != ENTITY:
        return
    body = event.body
    if event.type != "policy.set" or set(body) - {"key", "value", "by"} or "key" not in body \
            or "value" not in body or not isinstance(body["key"], str):
        raise InvalidEvent(N_("a policy event is policy.set with a key and a value"))
    if event.entity_id != entity_id(body["key"], event.area):
        raise InvalidEvent(N_("a policy event's id is KEY@AREA"))
    declared = node.registry.policy_keys.get(body["key"])
    if declared is not None:
        try:
            canonical = declared.convert(body["value"])
        except InvalidInput as exc:
            raise InvalidEvent(exc.message) from None
        if canonical != body["value"]:
            raise InvalidEvent(N_("the value of policy {key} is not in canonical form"),
                               key=body["key"])


# -- the API -------------------------------------------------------------------


@attrs.frozen
class PolicyValue:
    key: str
    label: str
    value: Any
    area: str | None
    version: int
    set_by: str | None
    default: bool


def set_policy(node, key: str, raw: Any, area: str | None = None):
    """Write a ``policy.set`` event; only the root, or a delegated node for its subtree."""
    from .node import Draft

    declared = node.registry.policy_keys.get(key)
    if declared is None:
        raise NotFound(N_("there is no policy named “{key}”; policies that can be set: {known}"),
                       key=key, known=listing(sorted(node.registry.policy_keys)))
    value = declared.convert(raw)
    area = areas.check_code(area) if area else node.info.area
    if not node.in_jurisdiction(area):
        raise InvalidInput(N_("area {area} is not within this node's scope {scope}"),
                           area=area, scope=node.info.area)
    root = store.get_meta(node.db, "root_author")
    if node.info.author != root:
        delegated = node.context.policy(DELEGATED, node.info.area) or []
        if key not in delegated or key == DELEGATED:
            raise InvalidInput(N_("policy {key} can be set by the root only (it is not "
                                  "delegated to this level); run `xinfang policy set {key} …` "
                                  "on the root node"), key=key)
    return node.append(Draft("policy.set", ENTITY, entity_id(key, area), area,
                             {"key": key, "value": value}))


def policy_in_force(node, area: str | None = None) -> list[PolicyValue]:
    """Every declared key with the value in force at ``area`` (default this node's)."""
    area = areas.check_code(area) if area else node.info.area
    ctx = node.context
    rows = {}
    for key, value_area, version, author in node.db.execute(
            "select key, area, version, author from policy_values where ? like area || '%' "
            "order by length(area)", [area]):
        rows[key] = (value_area, version, author)
    result = []
    for key in sorted(set(node.registry.policy_keys) | set(rows)):
        declared = node.registry.policy_keys.get(key)
        where, version, author = rows.get(key, (None, 0, None))
        result.append(PolicyValue(key, _(declared.label) if declared else key,
                                  ctx.policy(key, area),
                                  where, version, node.author_name(author) if author else None,
                                  key not in rows))
    return result


def policy_version(db) -> str:
    """A short digest of the policy in force everywhere this node knows of."""
    rows = db.execute("select key, area, value from policy_values order by key, area").fetchall()
    return hashlib.sha256(json.dumps(rows, ensure_ascii=False).encode()).hexdigest()[:12]
