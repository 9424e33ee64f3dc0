"""The built-in 信访事项 plugin: registered exactly like a third party's."""

from __future__ import annotations

from xinfang import hookimpl
from xinfang.core.entities import EntityType, convert_field
from xinfang.core.errors import InvalidEvent, XinfangError

from . import lifecycle, views
from .deadlines import StatutoryPolicy
from .vocab import VOCABULARIES

ENTITY = views.ENTITY
SETTINGS = {"case.collective_threshold": 5, "case.collective_channels": ("visit",),
            "case.repeat_window_days": 365,
            "case.release_identity_upward": False}
_REGISTER_KEYS = {"channel", "category", "kind", "request", "received", "headcount",
                  "petitioners", "fields", "by"}


@hookimpl
def xinfang_entity_types():
    return [EntityType(ENTITY, "信访事项", views.VIEW_TABLES, views.MIGRATIONS,
                       apply=views.apply, reset=views.reset)]


@hookimpl
def xinfang_lifecycle(entity):
    if entity == ENTITY:
        return [*lifecycle.STATES, *lifecycle.STEPS]
    return None


@hookimpl
def xinfang_vocabulary(name):
    return VOCABULARIES.get(name)


@hookimpl
def xinfang_deadline_policy(entity):
    return StatutoryPolicy() if entity == ENTITY else None


@hookimpl
def xinfang_setting(name):
    return SETTINGS.get(name)


@hookimpl
def xinfang_validate_event(event, node):
    """The shape of every ``case.*`` body, checked on creation and arrival.

    Only shape: whether a step fits the case's state is decided by the fold,
    which keeps a misfit as a conflict rather than refusing the event.
    """
    if event.entity != ENTITY:
        return
    body, registry = event.body, node.registry
    try:
        if event.type == "case.register":
            missing = {"channel", "category", "kind", "request", "received", "headcount",
                       "petitioners"} - set(body)
            extra = set(body) - _REGISTER_KEYS
            if missing or extra:
                raise InvalidEvent(f"case.register body: missing {sorted(missing)}, "
                                   f"unknown {sorted(extra)}")
            if type(body["headcount"]) is not int or body["headcount"] < 1:
                raise InvalidEvent("case.register headcount must be a positive integer")
            if not isinstance(body["petitioners"], list) or not body["petitioners"]:
                raise InvalidEvent("case.register needs a list of petitioners")
            if not isinstance(body["request"], str) or not isinstance(body.get("fields", {}), dict):
                raise InvalidEvent("case.register request must be text and fields a map")
            convert_field(lifecycle.DATE, body["received"])
            for vocabulary in ("channel", "category", "kind"):
                if body[vocabulary] not in {c.code for c in registry.vocabulary(f"case.{vocabulary}")}:
                    raise InvalidEvent(f"case.register {vocabulary} {body[vocabulary]!r} is not "
                                       "in this node's list; install the plugin that adds it")
            return
        step = registry.lifecycle(ENTITY).steps.get(event.type.removeprefix("case."))
        if step is None:
            raise InvalidEvent(f"unknown case event type {event.type!r}")
        values = body.get("values")
        if not isinstance(values, dict) or "date" not in values:
            raise InvalidEvent(f"{event.type} needs a values map with a date")
        fields = {f.name: f for f in step.fields}
        for name, value in values.items():
            if name not in fields:
                raise InvalidEvent(f"{event.type} has unknown value {name!r}")
            choices = registry.vocabulary(fields[name].choices) if fields[name].choices else None
            if convert_field(fields[name], value, choices) != value:
                raise InvalidEvent(f"{event.type} value {name!r} is not in canonical form")
    except InvalidEvent:
        raise
    except XinfangError as exc:
        raise InvalidEvent(f"{event.type}: {exc}") from None



@hookimpl
def xinfang_event_applied(context, event):
    if event.type == "case.register":
        views.update_repeat_flags(context, event.entity_id)


@hookimpl
def xinfang_register_commands(cli, registry):
    from .commands import build_case_group

    cli.add_command(build_case_group(registry))


@hookimpl
def xinfang_release_secrets(event, destination, node):
    """Petitioner identity goes down to the office in whose area the case lies,
    which must contact the petitioner; upward only where a setting allows. The
    sealed digests and ID tags still travel, so 重复访 is found above without
    the names."""
    if event.entity != ENTITY:
        return None
    if destination.area.startswith(event.area):
        return True
    return bool(node.registry.setting("case.release_identity_upward", False))
