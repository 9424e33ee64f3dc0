"""The supervision plugin's hooks: the 督办单 record, the 包案 step of a case, the
escalation rows kept beside the case plugin's deadlines, the 通报 report and the
``ducha`` / ``baoan`` commands."""

from __future__ import annotations

from xinfang import hookimpl
from xinfang.core.entities import Choice

from . import escalation, leaders, orders

VOCABULARIES = {"supervision.order_kind": [Choice("order", "督办"), Choice("listed", "挂牌督办")]}


@hookimpl
def xinfang_entity_types():
    return [orders.ORDER]


@hookimpl
def xinfang_routes():
    """No page of its own: importing ``web`` tells the web's record pages how a 督办单
    is issued."""
    from . import web  # noqa: F401

    return []


@hookimpl
def xinfang_lifecycle(entity):
    return [leaders.STEP] if entity == "case" else None


@hookimpl
def xinfang_vocabulary(name):
    return VOCABULARIES.get(name)


@hookimpl
def xinfang_policy_keys():
    return [escalation.POLICY]


@hookimpl
def xinfang_validate_event(event, node):
    if event.entity == orders.ENTITY:
        orders.check_issue(event, node)


@hookimpl
def xinfang_event_applied(context, event):
    if event.entity == "case":  # once for a case's events of a page
        context.defer(("supervision.case", event.entity_id),
                      lambda: escalation.store_case(context, event.entity_id))


@hookimpl
def xinfang_entity_reset(context, entity, entity_id):
    if entity in ("case", orders.ENTITY):
        escalation.forget(context, entity, entity_id)


@hookimpl
def xinfang_reports():
    from .notice import NOTICE

    return [NOTICE]


@hookimpl
def xinfang_register_commands(cli, registry):
    from .commands import add_commands

    add_commands(cli, registry)
