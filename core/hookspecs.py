"""The hooks a plugin implements (pluggy project name ``xinfang``).

Built-in features are plugins registered through these same hooks. A plugin
implementation may accept a subset of a hook's arguments, so hooks can gain
arguments without breaking plugins. Every hook is documented, with a tested
example, in CONTRIBUTING.md. ``register``-style hooks (entity types, policy
keys, reports, renderers, routes, transports) return lists, collected once at
start-up by ``Registry.collect``; a name given twice is a start-up error.
"""

import pluggy

hookspec = pluggy.HookspecMarker("xinfang")


@hookspec(historic=True)
def xinfang_addhooks(pluginmanager):
    """Add hook specifications of this plugin's own: ``pluginmanager.add_hookspecs(module)``.

    Called once for every plugin as it is registered, so a plugin's hooks
    exist before other plugins implement them (as pytest's ``pytest_addhooks``).
    """


@hookspec
def xinfang_message_catalogs():
    """Return ``Catalog(domain, localedir)`` objects: this plugin's translations.

    ``xinfang.core.i18n._`` looks in the kernel's catalogue first, then in
    each plugin's, so a plugin marks its texts with the kernel's ``_`` and
    ``N_`` and ships ``<localedir>/zh_CN/LC_MESSAGES/<domain>.mo``.
    """


@hookspec
def xinfang_entity_types():
    """Return a list of ``EntityType``: kinds of record this plugin owns."""


@hookspec
def xinfang_lifecycle(entity):
    """Return ``State`` and ``Step`` objects to add to ``entity``'s lifecycle.

    A plugin may add states and steps to an entity type another plugin owns.
    """


@hookspec
def xinfang_entity_fields(entity):
    """Return extra ``Field`` objects recorded on ``entity`` at creation."""


@hookspec
def xinfang_vocabulary(name):
    """Return ``Choice`` objects to add to the controlled list ``name``.

    Lists such as ``case.category`` are the union over plugins, in
    registration order; a code given twice is a start-up error.
    """


@hookspec
def xinfang_policy_keys():
    """Return a list of ``PolicyKey``: settings the fold reads, with defaults.

    Values are synced policy events (``xinfang policy set``), never local
    settings, so every node folds the same events to the same views.
    """


@hookspec
def xinfang_validate_event(event, node):
    """Raise ``InvalidEvent`` to refuse ``event``.

    Called before a new event is signed (``event`` is then a ``Draft``) and
    again when one arrives from another node (an ``Event``), but only for
    events an installed plugin handles (others are held, not judged); both
    carry ``type``, ``entity``, ``entity_id``, ``area`` and ``body``, which
    is all a check should use. Must depend only on the event and the node's
    trust data, never on the clock.
    """


@hookspec
def xinfang_event_applied(context, event):
    """React to ``event`` having been folded into the views.

    ``context`` is a ``FoldContext``; write only to view tables. Called again
    when an entity is re-folded, so the reaction must be a function of the
    views, not of how often it ran. When a page folds (``core/page_fold.py``)
    it runs for each of an entity's events once all of them are folded: the
    views it reads are the entity's as the page leaves it, and the event says
    only which entity moved (and, by its type, whether this plugin cares).
    """


@hookspec
def xinfang_entity_reset(context, entity, entity_id):
    """Delete view rows this plugin derived from ``entity``/``entity_id``.

    Called before that entity is re-folded (an event arrived that sorts
    before ones already applied, or policy changed) and when it becomes held;
    ``xinfang_event_applied`` then runs again for each event folded. Needed only by plugins that keep
    rows about another plugin's entities.
    """


@hookspec
def xinfang_register_commands(cli, registry):
    """Add click commands or groups to the ``xinfang`` command line.

    ``registry`` holds what every plugin registered (steps, fields,
    vocabularies), so commands can be generated from it.
    """


@hookspec(firstresult=True)
def xinfang_outgoing(event, destination, node):
    """Decide which of ``event``'s sealed values the office ``destination`` (the
    ``Certificate`` of a reader reached through the neighbour being sent to, not
    the neighbour) may read; they travel sealed to its key.

    Return True (all of them), False (none: digests only) or a collection of
    digests (just those). Return None to defer; stops at the first non-None
    result; nothing is released when no plugin answers.
    """


@hookspec
def xinfang_received(node, applied):
    """React to a sync session having applied what a neighbour sent.

    Called on ``node`` once a bundle is imported, once a pushed page is
    applied (the server's side of HTTP) and once the pages of an HTTP pull are
    (the client's side), with ``applied`` the number of events that were new.
    Called even when none were: sealed values may arrive beside events held
    already. Runs outside the fold and after the pages' transactions, so it
    may write new events of this node (``node.append``); e.g. the case plugin's
    root tags the ID numbers it has just received (``case.tag``).
    """


@hookspec
def xinfang_reports():
    """Return a list of ``Report``: named reports with parameters, computed
    from the views into rows (see ``core.reports``)."""


@hookspec
def xinfang_renderers():
    """Return a list of ``Renderer``: output formats for report rows (text,
    JSON and CSV are built in; ``xinfang report run --format NAME``)."""


@hookspec
def xinfang_routes():
    """Return a list of ``Route``: web pages and endpoints the node serves
    (``xinfang serve``), each a path, methods and a handler."""


@hookspec
def xinfang_transports():
    """Return a list of ``Transport``: ways to move signed events between a
    node and a neighbour (the file bundle and HTTP are built in)."""
