"""The hooks a plugin implements (pluggy project name ``xinfang``).

Built-in features are plugins registered through these same hooks. A plugin
implementation may accept a subset of a hook's arguments, so hooks can gain
arguments without breaking plugins. Every hook is documented, with a tested
example, in CONTRIBUTING.md.
"""

import pluggy

hookspec = pluggy.HookspecMarker("xinfang")


@hookspec
def xinfang_entity_types():
    """Return a list of ``EntityType``: kinds of record this plugin owns.

    Collected once at start-up; a name registered twice is a start-up error.
    """


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


@hookspec(firstresult=True)
def xinfang_deadline_policy(entity):
    """Return the deadline policy for ``entity``.

    Return None to defer; stops at the first non-None result, and plugins
    registered later are asked first, so a local rule overrides the
    statutory one the built-in plugin returns.
    """


@hookspec(firstresult=True)
def xinfang_setting(name):
    """Return the value of the setting ``name`` (e.g. ``case.collective_threshold``).

    Return None to defer; stops at the first non-None result.
    """


@hookspec
def xinfang_validate_event(event, node):
    """Raise ``InvalidEvent`` to refuse ``event``.

    Called before a new event is signed (``event`` is then a ``Draft``) and
    again when one arrives from another node (an ``Event``); both carry
    ``type``, ``entity``, ``entity_id``, ``area`` and ``body``, which is all a
    check should use. Must depend only on the event and the node's trust
    data, never on the clock.
    """


@hookspec
def xinfang_event_applied(context, event):
    """React to ``event`` having been folded into the views.

    ``context`` is a ``FoldContext``; write only to view tables. Called again
    when an entity is re-folded, so the reaction must be a function of the
    views, not of how often it ran.
    """


@hookspec
def xinfang_entity_reset(context, entity, entity_id):
    """Delete view rows this plugin derived from ``entity``/``entity_id``.

    Called before that entity is re-folded (an event arrived that sorts
    before ones already applied); ``xinfang_event_applied`` then runs again
    for each of its events. Needed only by plugins that keep rows about
    another plugin's entities.
    """


@hookspec
def xinfang_register_commands(cli, registry):
    """Add click commands or groups to the ``xinfang`` command line.

    ``registry`` holds what every plugin registered (steps, fields,
    vocabularies), so commands can be generated from it.
    """


@hookspec(firstresult=True)
def xinfang_release_secrets(event, destination, node):
    """Return True to send ``event``'s sealed values (petitioner identity) in
    clear to ``destination`` (a ``Certificate``) from ``node``, False to send
    digests only.

    Return None to defer; stops at the first non-None result. Nothing is
    released when no plugin answers.
    """
