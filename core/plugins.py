"""The plugin manager and what it collects from plugins at start-up.

Each node and each test gets a fresh manager from ``get_plugin_manager``; there
is no import-time global. Built-in plugins are listed in ``DEFAULT_PLUGINS``
and registered exactly as a third party's, then the ``xinfang`` entry-point
group is loaded, then the modules named in ``XINFANG_PLUGINS`` (comma
separated, like pytest's ``-p``), then any plugins passed in.
"""

from __future__ import annotations

import importlib
import os
from typing import Any, Iterable

import attrs
import pluggy

from . import hookspecs
from .entities import Choice, Field, Lifecycle
from .errors import PluginError

DEFAULT_PLUGINS = (
    "xinfang.plugins.cases.plugin",
    "xinfang.plugins.settlements",
    "xinfang.sync.revocation",
)


def get_plugin_manager(extra: Iterable[Any] = (), load_entry_points: bool = True) -> pluggy.PluginManager:
    pm = pluggy.PluginManager("xinfang")
    pm.add_hookspecs(hookspecs)
    for name in DEFAULT_PLUGINS:
        pm.register(importlib.import_module(name), name=name)
    if load_entry_points:
        pm.load_setuptools_entrypoints("xinfang")
    for name in filter(None, os.environ.get("XINFANG_PLUGINS", "").split(",")):
        try:
            pm.register(importlib.import_module(name.strip()), name=name.strip())
        except ImportError as exc:
            raise PluginError(f"XINFANG_PLUGINS names {name!r}, which cannot be imported: "
                              f"{exc}") from None
    for plugin in extra:
        pm.register(plugin)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"a plugin implements a hook that does not exist: {exc}") from None
    return pm


@attrs.define
class Registry:
    """Everything plugins registered, collected once and checked for clashes."""

    pm: pluggy.PluginManager
    entity_types: dict[str, Any] = attrs.Factory(dict)
    _lifecycles: dict[str, Lifecycle] = attrs.Factory(dict)
    _fields: dict[str, tuple[Field, ...]] = attrs.Factory(dict)
    _vocabularies: dict[str, list[Choice]] = attrs.Factory(dict)
    _settings: dict[str, Any] = attrs.Factory(dict)
    _policies: dict[str, Any] = attrs.Factory(dict)

    @classmethod
    def collect(cls, pm: pluggy.PluginManager) -> "Registry":
        registry = cls(pm)
        for found in pm.hook.xinfang_entity_types():
            for entity_type in found or ():
                if entity_type.name in registry.entity_types:
                    raise PluginError(f"entity type {entity_type.name!r} is registered twice")
                registry.entity_types[entity_type.name] = entity_type
        for name in registry.entity_types:
            registry.lifecycle(name)
            registry.fields(name)
        return registry

    def entity_type(self, name: str):
        return self.entity_types.get(name)

    def lifecycle(self, entity: str) -> Lifecycle:
        if entity not in self._lifecycles:
            items = [item for found in reversed(self.pm.hook.xinfang_lifecycle(entity=entity))
                     for item in (found or ())]
            self._lifecycles[entity] = Lifecycle.build(entity, items)
        return self._lifecycles[entity]

    def fields(self, entity: str) -> tuple[Field, ...]:
        if entity not in self._fields:
            fields = [f for found in reversed(self.pm.hook.xinfang_entity_fields(entity=entity))
                      for f in (found or ())]
            names = [f.name for f in fields]
            duplicated = {n for n in names if names.count(n) > 1}
            if duplicated:
                raise PluginError(f"{entity}: field(s) {sorted(duplicated)} registered twice")
            self._fields[entity] = tuple(fields)
        return self._fields[entity]

    def vocabulary(self, name: str) -> list[Choice]:
        if name not in self._vocabularies:
            choices = [c for found in reversed(self.pm.hook.xinfang_vocabulary(name=name))
                       for c in (found or ())]
            seen: set[str] = set()
            for choice in choices:
                if choice.code in seen:
                    raise PluginError(f"vocabulary {name!r}: code {choice.code!r} given twice")
                seen.add(choice.code)
            self._vocabularies[name] = choices
        return self._vocabularies[name]

    def label(self, vocabulary: str, code: str | None) -> str | None:
        for choice in self.vocabulary(vocabulary):
            if choice.code == code:
                return choice.label
        return code

    def setting(self, name: str, default: Any = None) -> Any:
        if name not in self._settings:
            self._settings[name] = self.pm.hook.xinfang_setting(name=name)
        value = self._settings[name]
        return default if value is None else value

    def deadline_policy(self, entity: str):
        if entity not in self._policies:
            policy = self.pm.hook.xinfang_deadline_policy(entity=entity)
            if policy is None:
                raise PluginError(f"no plugin gives a deadline policy for {entity!r}")
            self._policies[entity] = policy
        return self._policies[entity]
