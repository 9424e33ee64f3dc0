"""The sync status pages: peers, conflicts to settle, the quarantine, held records.

Each page shows what the CLI's command shows, from the same API:
``/sync`` is ``xinfang sync status`` (``sync.peers.status``, which counts
what each peer still lacks with ``send.count_missing`` against its last
acknowledged frontier), ``/conflicts`` is ``xinfang conflicts``
(``plugins.settlements``; its form is ``conflicts settle``), ``/quarantine``
is ``xinfang quarantine list`` (``core.quarantine``) and ``/held`` is
``xinfang held`` (``core.held``). Seeing them needs ``view_all``: they
concern the whole jurisdiction's data, not one area's. Settling needs
``approve`` (领导). The quarantine has no action here: the CLI has none
either (an event whose gap is filled is admitted by sync itself).
"""

from __future__ import annotations

from xinfang.core import held, quarantine, store, transports
from xinfang.core.errors import XinfangError
from xinfang.core.i18n import N_, _, show
from xinfang.core.routes import Response, Route
from xinfang.plugins import settlements
from xinfang.sync import peers

from . import admin, users
from .app import Page, add_labels, add_menu, page, redirect

add_labels({
    "st_sync": N_("Sync"), "st_this_node": N_("This node"),
    "st_fingerprint": N_("Key fingerprint"), "st_level": N_("Level"),
    "st_parent_url": N_("Parent's address"), "st_peers": N_("Parent and child nodes"),
    "st_no_peers": N_("No parent or child nodes yet."), "st_relation": N_("Relation"),
    "st_last_sync": N_("Last sync"), "st_transport": N_("By"),
    "st_sent": N_("Events sent"), "st_acknowledged": N_("Acknowledged"),
    "st_pending": N_("To send"), "st_received": N_("Events received"),
    "st_refused_by_peer": N_("Refused by peer"), "st_refused_here": N_("Refused here"),
    "st_last_error": N_("Last error"), "st_never": N_("never"),
    "st_columns": N_("Counts are events. To send: what the peer still lacks of what this "
                     "node would send it, counted against what the peer last acknowledged."),
    "st_conflicts": N_("Conflicts"), "st_show_settled": N_("Include settled conflicts"),
    "st_no_conflicts": N_("No conflicts."), "st_event": N_("Event"),
    "st_record": N_("Record concerned"), "st_type": N_("Type"), "st_state": N_("State"),
    "st_settled": N_("settled"), "st_to_settle": N_("to be settled"),
    "st_note": N_("How it was settled"), "st_settle": N_("Settle"),
    "st_settled_done": N_("Recorded how the conflict was settled"),
    "st_quarantine": N_("Quarantined events"), "st_no_quarantine": N_("The quarantine is "
                                                                      "empty."),
    "st_author": N_("Author"), "st_epoch": N_("Epoch"), "st_seq": N_("Seq"),
    "st_time": N_("Time"), "st_from_peer": N_("From"), "st_unreadable": N_("(unreadable)"),
    "st_held": N_("Held records"), "st_no_held": N_("Nothing is held."),
    "st_entities": N_("Records"), "st_events": N_("Events"), "st_authors": N_("Written by"),
    "st_held_note": N_("Held records are kept and relayed, but not shown here: a plugin or "
                       "policy code they need is not installed on this node."),
})
add_menu("/sync", N_("Sync"), users.VIEW_ALL, 40)

#: ``relation`` is an identifier; the page shows it in the reader's language (as the CLI)
RELATIONS = {"parent": N_("parent node"), "child": N_("child node")}


def _transport(node, name: str | None) -> str:
    """A transport's label in the reader's language (its code if it is not installed)."""
    if not name:
        return ""
    try:
        return _(transports.find(node.registry, name).label)
    except XinfangError:
        return name


@page
def sync_page(context: Page) -> Response:
    context.require(context.user.may(users.VIEW_ALL))
    node = context.node
    rows = [{"name": s.name, "relation": _(RELATIONS[s.relation]), "area": s.area,
             "fingerprint": s.fingerprint, "last_sync": s.last_sync,
             "transport": _transport(node, s.last_transport), "sent": s.sent,
             "acknowledged": s.acknowledged, "pending": s.pending, "received": s.received,
             "refused_by_peer": s.refused_by_peer, "refused_here": s.refused_from_peer,
             "last_error": show(s.last_error) or ""} for s in peers.status(node)]
    counts = [("/conflicts", _("Open conflicts"), len(settlements.list_conflicts(node)),
               "conflicts"),
              ("/quarantine", _("Quarantined events"), quarantine.count(node), "quarantine"),
              ("/held", _("Held records"), len(held.held(node)), "held")]
    return context.render("status_sync.html", title=_("Sync"), rows=rows, counts=counts,
                          parent_url=store.get_meta(node.db, "parent_url") or "")


# -- conflicts ------------------------------------------------------------------------


def _conflicts_page(context: Page, status: int = 200, error: str | None = None,
                    values: dict | None = None) -> Response:
    node = context.node
    show_all = context.request.query.get("all") == "1"
    rows = settlements.list_conflicts(node, include_settled=show_all)
    done = context.request.query.get("done") == "settled" and error is None
    return context.render(
        "status_conflicts.html", status=status, title=_("Conflicts"), rows=rows,
        show_all=show_all, may_settle=context.user.may(users.APPROVE), error=error,
        values=values or {}, done=done)


@page
def conflicts_page(context: Page) -> Response:
    context.require(context.user.may(users.VIEW_ALL))
    return _conflicts_page(context)


@page
def settle(context: Page) -> Response:
    """``xinfang conflicts settle EVENT --note …``: a settlement event, by the user."""
    context.require(context.user.may(users.VIEW_ALL) and context.user.may(users.APPROVE))
    form = context.form
    event_id, note = form.get("event", "").strip(), form.get("note", "")
    try:
        settlements.settle(context.node, event_id, note)
    except XinfangError as exc:
        return _conflicts_page(context, 400, str(exc), {"event": event_id, "note": note})
    return redirect("/conflicts?done=settled")


# -- the quarantine and held records -----------------------------------------------------


@page
def quarantine_page(context: Page) -> Response:
    context.require(context.user.may(users.VIEW_ALL))
    node = context.node
    rows = [{"item": q, "peer": node.author_name(q.peer) if q.peer else ""}
            for q in quarantine.quarantined(node)]
    return context.render("status_quarantine.html", title=_("Quarantined events"), rows=rows)


@page
def held_page(context: Page) -> Response:
    context.require(context.user.may(users.VIEW_ALL))
    return context.render("status_held.html", title=_("Held records"),
                          rows=held.held(context.node))


def routes() -> list[Route]:
    return [
        Route("web.sync", "/sync", sync_page, label=N_("Sync"), page=True),
        Route("web.conflicts", "/conflicts", conflicts_page, label=N_("Conflicts"),
              page=True),
        Route("web.conflicts_settle", "/conflicts/settle", settle, ("POST",),
              N_("Settle a conflict"), page=True),
        Route("web.quarantine", "/quarantine", quarantine_page,
              label=N_("Quarantined events"), page=True),
        Route("web.held", "/held", held_page, label=N_("Held records"), page=True),
        *admin.routes(),
    ]
