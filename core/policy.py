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
from .entities import EntityType
from .errors import InvalidEvent, InvalidInput, NotFound, StepRefused

ENTITY = "policy"
DELEGATED = "policy.delegated"
KINDS = ("int", "bool", "text", "list", "code")


@attrs.frozen
class PolicyKey:
    """A setting the fold reads, declared by the plugin that reads it."""

    name: str
    label: str
    default: Any
    kind: str = attrs.field(default="text", validator=attrs.validators.in_(KINDS))
    minimum: int | None = None
    help: str = ""

    def convert(self, raw: Any) -> Any:
        """The canonical value of user input (text from the CLI, or JSON values)."""
        where = f"策略“{self.label}”({self.name})"
        if self.kind == "int":
            try:
                value = int(raw)
            except (TypeError, ValueError):
                raise InvalidInput(f"{where} 须为整数，收到 {raw!r}") from None
            if isinstance(raw, bool) or (self.minimum is not None and value < self.minimum):
                raise InvalidInput(f"{where} 不得小于 {self.minimum}，收到 {raw!r}")
            return value
        if self.kind == "bool":
            text = str(raw).strip().lower()
            if raw is True or text in ("1", "true", "yes", "是"):
                return True
            if raw is False or text in ("0", "false", "no", "否"):
                return False
            raise InvalidInput(f"{where} 须为 是/否 (true/false)，收到 {raw!r}")
        if self.kind == "list":
            if isinstance(raw, list) and all(isinstance(x, str) for x in raw):
                return sorted(set(raw))
            if isinstance(raw, str):
                return sorted({x.strip() for x in raw.split(",") if x.strip()})
            raise InvalidInput(f"{where} 须为以逗号分隔的列表，收到 {raw!r}")
        if not isinstance(raw, str) or not raw.strip():
            raise InvalidInput(f"{where} 不能为空")
        if self.kind == "code" and "@" not in raw:
            raise InvalidInput(f"{where} 须写作 名称@版本（如 statutory@1），收到 {raw!r}")
        return raw.strip()


CORE_KEYS = [
    PolicyKey(DELEGATED, "下放给下级设定的策略", [], kind="list",
              help="policy keys any node may set for its own subtree"),
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


def _authorised(ctx, event) -> str | None:
    """Why ``event``'s author may not set this key here, or None.

    A pure function of the event, the trust data and the policy in force, so
    every node decides alike; a refusal is a conflict, kept and listed.
    """
    db = ctx.db.conn
    root = store.get_meta(ctx.db, "root_author")
    if event.author == root:
        return None
    row = db.execute("select area from certs where subject = ?", [event.author]).fetchone()
    if row is None or not event.area.startswith(row[0]):
        return "只有根节点或被授权的上级节点可设定策略 (not the root, nor inside the author's scope)"
    delegated = ctx.policy(DELEGATED, row[0]) or []
    if event.body["key"] not in delegated or event.body["key"] == DELEGATED:
        return f"策略 {event.body['key']} 未下放给下级设定 (not delegated by the root)"
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
        raise InvalidEvent("a policy event is policy.set with a key and a value")
    if event.entity_id != entity_id(body["key"], event.area):
        raise InvalidEvent("a policy event's id is KEY@AREA")
    declared = node.registry.policy_keys.get(body["key"])
    if declared is not None:
        try:
            canonical = declared.convert(body["value"])
        except InvalidInput as exc:
            raise InvalidEvent(str(exc)) from None
        if canonical != body["value"]:
            raise InvalidEvent(f"policy {body['key']} value is not in canonical form")


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
        known = "、".join(sorted(node.registry.policy_keys)) or "无"
        raise NotFound(f"没有名为 {key!r} 的策略；可设定的策略：{known}")
    value = declared.convert(raw)
    area = areas.check_code(area) if area else node.info.area
    if not node.in_jurisdiction(area):
        raise InvalidInput(f"区划 {area} 不在本节点辖区 {node.info.area} 内")
    root = store.get_meta(node.db, "root_author")
    if node.info.author != root:
        delegated = node.context.policy(DELEGATED, node.info.area) or []
        if key not in delegated or key == DELEGATED:
            raise InvalidInput(f"策略 {key} 只能由根节点设定（未下放给本级）；请在根节点运行 "
                               f"`xinfang policy set {key} …`")
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
        result.append(PolicyValue(key, declared.label if declared else key, ctx.policy(key, area),
                                  where, version, node.author_name(author) if author else None,
                                  key not in rows))
    return result


def policy_version(db) -> str:
    """A short digest of the policy in force everywhere this node knows of."""
    rows = db.execute("select key, area, value from policy_values order by key, area").fetchall()
    return hashlib.sha256(json.dumps(rows, ensure_ascii=False).encode()).hexdigest()[:12]
