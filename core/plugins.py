"""The plugin manager and what it collects from plugins at start-up.

Each node and each test gets a fresh manager from ``get_plugin_manager``;
there is no import-time global. The core registers only its own plugins
(policy, and the plain renderers); then the ``xinfang`` entry-point group is
loaded (the application's built-in plugins are listed there too, exactly as
a third party's), then the modules named in ``XINFANG_PLUGINS`` (comma
separated, like pytest's ``-p``), then any given; which plugins an
application ships is its own choice (``xinfang.app.DEFAULT_PLUGINS``).

A plugin may add hook specifications of its own with ``xinfang_addhooks``
(as pytest's ``pytest_addhooks``), so knowledge of one workflow, such as
the case plugin's deadline policies, lives with the plugin that owns it.
"""

from __future__ import annotations

import importlib
import os
from typing import Any, Iterable

import attrs
import pluggy

from . import hookspecs
from .entities import Choice, EntityType, Field, Lifecycle, listing
from .errors import NotFound, PluginError
from . import i18n
from .i18n import N_, Message, _

#: always registered: policy is what the fold reads, so every node has it.
CORE_PLUGINS = ("xinfang.core.policy", "xinfang.core.reports")
#: entity types folded before all others on a rebuild, and sent down the tree
#: to every node below their area (see ``core.scope``).
CONTROL_ENTITIES = ("policy", "trust")


def get_plugin_manager(plugins: Iterable[Any] = (), entry_points: bool = True,
                       defaults: Iterable[str] = ()) -> pluggy.PluginManager:
    """A fresh manager: the core's plugins, an application's ``defaults``, the
    installed ones (unless ``entry_points`` is False), those named in
    ``XINFANG_PLUGINS``, then ``plugins`` (modules, module names or objects),
    in that order; for a ``firstresult`` hook, the one registered last answers
    first, so a county's plugin overrides a built-in one."""
    pm = pluggy.PluginManager("xinfang")
    pm.add_hookspecs(hookspecs)
    pm.hook.xinfang_addhooks.call_historic(kwargs={"pluginmanager": pm})
    for plugin in (*CORE_PLUGINS, *defaults):
        _register(pm, plugin)
    if entry_points:
        try:
            pm.load_setuptools_entrypoints("xinfang")
        except pluggy.PluginValidationError as exc:
            raise PluginError(N_("an installed plugin implements a hook wrongly: {error}"),
                              error=_one_line(exc)) from None
    for name in filter(None, (n.strip() for n in os.environ.get("XINFANG_PLUGINS", "").split(","))):
        try:
            _register(pm, name)
        except ImportError as exc:
            raise PluginError(N_("XINFANG_PLUGINS names “{name}”, which cannot be imported: "
                                 "{error}"), name=name, error=str(exc)) from None
    for plugin in plugins:
        _register(pm, plugin)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(N_("a plugin implements a hook that does not exist: {error}"),
                          error=_one_line(exc)) from None
    return pm


def _register(pm: pluggy.PluginManager, plugin: Any) -> None:
    try:
        if isinstance(plugin, str):
            if not pm.has_plugin(plugin):
                pm.register(importlib.import_module(plugin), name=plugin)
        elif not pm.is_registered(plugin):
            pm.register(plugin)
    except pluggy.PluginValidationError as exc:
        raise PluginError(N_("plugin “{plugin}” implements a hook wrongly: {error}"),
                          plugin=str(plugin), error=_one_line(exc)) from None


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


def _named(kind: str, items: Iterable[Any]) -> dict[str, Any]:
    """Collect ``register_*`` results by name; a name given twice is a start-up error.

    ``kind`` is a msgid (``N_("report")``)."""
    found: dict[str, Any] = {}
    for item in items:
        if item.name in found:
            raise PluginError(N_("{kind} “{name}” is registered twice"), kind=Message(kind),
                              name=item.name)
        found[item.name] = item
    return found


def _add_catalogs(catalogs: list[Any]) -> None:
    """Plugins' translations, behind the kernel's, for every message from now on."""
    wrong = [repr(c) for c in catalogs if not isinstance(c, i18n.Catalog)]
    if wrong:
        raise PluginError(N_("xinfang_message_catalogs must return Catalog(domain, localedir) "
                             "objects, not {found}"), found=listing(wrong))
    i18n.add_catalogs(catalogs)


def _flatten(results: Iterable[Any]) -> list[Any]:
    return [item for found in results for item in (found or ())]


@attrs.define
class Registry:
    """Everything plugins registered, collected once and checked for clashes."""

    pm: pluggy.PluginManager
    entity_types: dict[str, EntityType] = attrs.Factory(dict)
    policy_keys: dict[str, Any] = attrs.Factory(dict)
    reports: dict[str, Any] = attrs.Factory(dict)
    renderers: dict[str, Any] = attrs.Factory(dict)
    routes: dict[str, Any] = attrs.Factory(dict)
    transports: dict[str, Any] = attrs.Factory(dict)
    #: for plugins to keep what they derive once from the registry (their own hooks' results)
    extras: dict[str, Any] = attrs.Factory(dict)
    _lifecycles: dict[str, Lifecycle] = attrs.Factory(dict)
    _fields: dict[str, tuple[Field, ...]] = attrs.Factory(dict)
    _vocabularies: dict[str, list[Choice]] = attrs.Factory(dict)

    @classmethod
    def collect(cls, pm: pluggy.PluginManager) -> "Registry":
        hook = pm.hook
        registry = cls(pm)
        _add_catalogs(_flatten(hook.xinfang_message_catalogs()))
        registry.entity_types = _named(N_("entity type"), _flatten(hook.xinfang_entity_types()))
        registry.policy_keys = _named(N_("policy key"), _flatten(hook.xinfang_policy_keys()))
        registry.reports = _named(N_("report"), _flatten(hook.xinfang_reports()))
        registry.renderers = _named(N_("renderer"), _flatten(hook.xinfang_renderers()))
        registry.routes = _named(N_("route"), _flatten(hook.xinfang_routes()))
        paths = [route.path for route in registry.routes.values()]
        if len(set(paths)) != len(paths):
            shared = sorted({path for path in paths if paths.count(path) > 1})
            raise PluginError(N_("two routes share a path: {paths}"), paths=listing(shared))
        registry.transports = _named(N_("transport"), _flatten(hook.xinfang_transports()))
        for name, entity_type in registry.entity_types.items():
            registry.lifecycle(name)
            registry.fields(name)
            registry._check_names(entity_type)
        return registry

    def _check_names(self, entity_type: EntityType) -> None:
        """A field named like a key the kernel writes would be silently lost."""
        from .kernel import RESERVED

        steps = self.lifecycle(entity_type.name).steps.values() if entity_type.lifecycle_entity else ()
        groups = [(Message(N_("creation")), entity_type.create.fields if entity_type.create else ()),
                  (Message(N_("extension")), self.fields(entity_type.name)),
                  *((Message(N_("step “{step}”"), step=s.name), s.fields) for s in steps)]
        for where, fields in groups:
            for field in fields:
                if field.name in RESERVED:
                    raise PluginError(N_("{entity}: {where} field “{field}” uses a name the "
                                         "kernel reserves; rename it"),
                                      entity=entity_type.name, where=where, field=field.name)

    @property
    def routes_by_path(self) -> dict[str, Any]:
        return {route.path: route for route in self.routes.values()}

    def lookup(self, table: str, name: str, what: str) -> Any:
        """A registered report, renderer, route or transport by name, or a clear error
        naming those there are; ``what`` is a msgid (``N_("report")``), and so are
        the items' labels."""
        items = getattr(self, table)
        if name not in items:
            known = listing(f"{_(i.label)}({i.name})" for i in items.values())
            raise NotFound(N_("there is no {what} named “{name}” (is the plugin that provides "
                              "it not installed?); there are: {known}"),
                           what=Message(what), name=name, known=known)
        return items[name]

    def entity_type(self, name: str) -> EntityType | None:
        return self.entity_types.get(name)

    def control_entities(self) -> tuple[str, ...]:
        return CONTROL_ENTITIES

    def unhandled(self, event) -> str | None:
        """Why no installed plugin can fold ``event``, or None if one can.

        The reason is the language-independent text the fold stores as the
        entity's hold reason (``i18n.stored``); show it with ``i18n.show``."""
        handled = self.extras.get("core.handled")
        if handled is None:
            handled = self.extras["core.handled"] = set()
        if event.type in handled:
            return None
        reason = self._unhandled(event)
        if reason is None and self.entity_types[event.entity].lifecycle_entity:
            handled.add(event.type)  # a lifecycle type's steps are fixed once collected
        return None if reason is None else reason.stored()

    def _unhandled(self, event) -> Message | None:
        entity_type = self.entity_types.get(event.entity)
        if entity_type is None:
            return Message(N_("no installed plugin handles records of type “{entity}”"),
                           entity=event.entity)
        if entity_type.lifecycle_entity:
            step = event.type.removeprefix(f"{event.entity}.")
            lifecycle = self.lifecycle(event.entity)
            if not event.type.startswith(f"{event.entity}.") or (
                    step != entity_type.create.name and step not in lifecycle.steps):
                return Message(N_("no installed plugin handles the step “{type}”"),
                               type=event.type)
        return None

    def lifecycle(self, entity: str) -> Lifecycle:
        if entity not in self._lifecycles:
            entity_type = self.entity_types.get(entity)
            own = [*entity_type.states, *entity_type.steps] if entity_type else []
            items = own + [item for found in reversed(self.pm.hook.xinfang_lifecycle(entity=entity))
                           for item in (found or ())]
            self._lifecycles[entity] = Lifecycle.build(
                entity, items, entity_type.label if entity_type else None)
        return self._lifecycles[entity]

    def fields(self, entity: str) -> tuple[Field, ...]:
        if entity not in self._fields:
            fields = [f for found in reversed(self.pm.hook.xinfang_entity_fields(entity=entity))
                      for f in (found or ())]
            names = [f.name for f in fields]
            duplicated = {n for n in names if names.count(n) > 1}
            if duplicated:
                raise PluginError(N_("{entity}: a field is registered twice: {fields}"),
                                  entity=entity, fields=listing(sorted(duplicated)))
            self._fields[entity] = tuple(fields)
        return self._fields[entity]

    def vocabulary(self, name: str) -> list[Choice]:
        if name not in self._vocabularies:
            choices = [c for found in reversed(self.pm.hook.xinfang_vocabulary(name=name))
                       for c in (found or ())]
            seen: set[str] = set()
            for choice in choices:
                if choice.code in seen:
                    raise PluginError(N_("vocabulary “{name}”: code “{code}” is given twice"),
                                      name=name, code=choice.code)
                seen.add(choice.code)
            self._vocabularies[name] = choices
        return self._vocabularies[name]

    def label(self, vocabulary: str, code: str | None) -> str | None:
        for choice in self.vocabulary(vocabulary):
            if choice.code == code:
                return choice.label
        return code

    def signature(self) -> str:
        """Which plugins (and versions) are loaded: when it changes, held entities
        may have become foldable."""
        return ";".join(f"{p.name}={p.version}" for p in plugin_infos(self))


@attrs.frozen
class PluginInfo:
    name: str
    version: str
    hooks: tuple[str, ...]
    entity_types: tuple[str, ...]
    reports: tuple[str, ...]
    routes: tuple[str, ...]


def _version(plugin: Any, dist: Any) -> str:
    if dist is not None:
        return dist.version
    version = getattr(plugin, "__version__", None) or getattr(plugin, "VERSION", None)
    if version:
        return str(version)
    from xinfang import __version__

    return __version__


def plugin_infos(registry: Registry) -> list[PluginInfo]:
    """The loaded plugins, each with its version, hooks and what it registered."""
    pm = registry.pm
    dists = {id(plugin): dist for plugin, dist in pm.list_plugin_distinfo()}
    infos = []
    for name, plugin in sorted(pm.list_name_plugin(), key=lambda item: str(item[0])):
        if plugin is None:
            continue
        hooks = tuple(sorted(caller.name for caller in pm.get_hookcallers(plugin) or ()))
        owned = {hook: _owned(pm, plugin, hook) for hook in (
            "xinfang_entity_types", "xinfang_reports", "xinfang_routes")}
        infos.append(PluginInfo(str(name), _version(plugin, dists.get(id(plugin))), hooks,
                                owned["xinfang_entity_types"], owned["xinfang_reports"],
                                owned["xinfang_routes"]))
    return infos


def _owned(pm: pluggy.PluginManager, plugin: Any, hook: str) -> tuple[str, ...]:
    implementation = getattr(plugin, hook, None)
    if implementation is None:
        return ()
    return tuple(item.name for item in (implementation() or ()))
