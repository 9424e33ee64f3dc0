"""The built-in 信访事项 plugin: registered exactly like a third party's.

It declares the ``case`` entity type to the kernel (table, creation fields,
states, steps, policy keys) and adds only what is particular to cases:
sealed petitioners, flags, deadlines, the identity-release rule and the
``case`` commands.
"""

from __future__ import annotations

from xinfang import hookimpl
from xinfang.core import areas, kernel
from xinfang.core.entities import EntityType, Field, Step, level_label
from xinfang.core.errors import InvalidEvent, InvalidInput
from xinfang.core.i18n import N_
from xinfang.core.policy import PolicyKey

from . import hookspecs, lifecycle, reports, tags, views
from .deadlines import COPIED_DAYS, STATUTORY_CODE, StatutoryPolicy
from .vocab import VOCABULARIES

ENTITY = views.ENTITY
#: 交办 (assign, with a duty to report back) is given by a 信访 office to a body or an
#: area below it: townships assign to villages, counties to townships and departments.
#: A village has no area below and no body to answer to it, so it may 转送 only.
MAY_NOT_ASSIGN = frozenset({"village"})

REGISTER = Step("register", "登记", (), "registered", (
    Field("channel", "信访形式", kind="choice", choices="case.channel", required=True),
    Field("category", "问题类别", kind="choice", choices="case.category", required=True),
    Field("kind", "诉求类型", kind="choice", choices="case.kind", required=True),
    Field("request", "诉求", required=True),
    Field("received", "登记日期", kind="date", required=True),
    Field("headcount", "人数", kind="int", required=True, minimum=1),
    Field("went_to", "走访层级", kind="choice", choices="case.went_to",
          help=N_("the level the petitioner went (or wrote) to")),
    Field("source", "来源", kind="choice", choices="case.source",
          help=N_("where the case came from")),
))

POLICY = [
    PolicyKey("case.collective_threshold", N_("minimum headcount of a collective visit"), 5,
              kind="int", minimum=2,
              help=N_("visits of at least this many people are collective visits")),
    PolicyKey("case.collective_channels", N_("channels counted for collective visits"),
              ["visit"], kind="list",
              help=N_("channels (codes) a collective visit is counted in")),
    PolicyKey("case.repeat_window_days", N_("repeat petition window (days)"), 365, kind="int",
              minimum=1,
              help=N_("an earlier case within this many days makes a case a repeat petition")),
    PolicyKey("case.deadline_policy", N_("deadline policy"), STATUTORY_CODE, kind="code",
              help=N_("the deadline policy code in force (name@version)")),
    PolicyKey("case.holidays", N_("holidays (working-day calendar)"), [], kind="list",
              help=N_("weekdays that are not working days, YYYY-MM-DD, e.g. 2026-10-01; "
                      "working days are Monday to Friday otherwise")),
    PolicyKey("case.extra_workdays", N_("extra working days (working-day calendar)"), [],
              kind="list",
              help=N_("weekend days that are working days (调休), YYYY-MM-DD")),
    PolicyKey("case.copied_days", N_("days a copied unit has to answer"), COPIED_DAYS,
              kind="int", minimum=1,
              help=N_("days after a forward by which each copied unit (抄送) answers the "
                      "lead unit (主送)")),
    PolicyKey("case.release_identity_upward", N_("release petitioner identity upward"), False,
              kind="bool",
              help=N_("send petitioner identity in clear to the levels above the case's "
                      "office")),
]

CASE = EntityType(
    ENTITY, "信访事项", views.VIEW_TABLES, views.MIGRATIONS, reset=views.reset, table="cases",
    create=REGISTER, states=lifecycle.STATES, steps=(*lifecycle.STEPS, lifecycle.FOLLOW_UP, tags.TAG),
    policy=views.POLICY_KEYS,
    command=None, body_keys=("petitioners",), on_create=views.on_create, on_step=views.on_step,
    guard_view=views.guard_view, after=views.after)


@hookimpl
def xinfang_addhooks(pluginmanager):
    pluginmanager.add_hookspecs(hookspecs)


@hookimpl
def xinfang_entity_types():
    return [CASE]


@hookimpl
def xinfang_vocabulary(name):
    return VOCABULARIES.get(name)


@hookimpl
def xinfang_policy_keys():
    return POLICY


@hookimpl
def xinfang_reports():
    return [reports.STATUS_COUNTS]


@hookimpl
def xinfang_deadline_policies():
    return [StatutoryPolicy()]


@hookimpl
def xinfang_validate_event(event, node):
    """The sealed petitioners of a registration: the one body part the kernel
    leaves to this plugin (see ``EntityType.body_keys``); who may forward
    a case where; and that only the root tags petitioners (``tags.check``)."""
    if event.type == "case.forward":
        _check_forward(event, node)
    if event.type == tags.TYPE:
        tags.check(event, node)
    if event.type != "case.register":
        return
    people = event.body.get("petitioners")
    if not isinstance(people, list) or not people:
        raise InvalidEvent(N_("case.register needs a list of petitioners"))
    allowed = {"name", "id_number", "phone", "address", "id_tag", "representative"}
    for person in people:
        if not isinstance(person, dict) or set(person) - allowed or not all(
                isinstance(v, str) for k, v in person.items() if k != "representative"):
            raise InvalidEvent(N_("case.register petitioners are maps of sealed digests"))
    own = [person["id_tag"] for person in people if person.get("id_tag")]
    if len(own) != len(set(own)):
        raise InvalidEvent(N_("case.register names one ID number for two petitioners"))


def _check_forward(event, node) -> None:
    """转送交办 only inside the forwarding office's certified area, to an area strictly
    below it, and 交办 only by a level that may assign; raises ``InvalidEvent``.

    A pure function of the event and its author's certificate, so every node
    refuses such a forward on arrival, as the author's own node refuses to
    sign it (a draft is this node's own); a key without a certificate here is
    not judged (``kernel.author_of``).
    """
    author = kernel.author_of(node.db, getattr(event, "author", None) or node.info.author)
    if author is None:
        return
    values = event.body.get("values", {})
    label = node.registry.lifecycle(ENTITY).steps["forward"].label
    to_area = values.get("to_area")
    if to_area is not None:
        try:
            areas.check_code(to_area)
        except InvalidInput as exc:
            raise InvalidEvent(N_("{step}: {error}"), step=label, error=exc.message) from None
        if not (to_area.startswith(author.area) and len(to_area) > len(author.area)):
            raise InvalidEvent(N_("{step} to area {area}: not an area below {level} {own}, the "
                                  "area its author is certified for"), step=label, area=to_area,
                               level=level_label(author.level), own=author.area)
    if values.get("mode") == "assign" and author.level in MAY_NOT_ASSIGN:
        raise InvalidEvent(N_("{step}: a {level} may not {mode}; it may {transfer} the case "
                              "to the body that decides it"), step=label,
                           level=level_label(author.level),
                           mode=node.registry.label("case.forward_mode", "assign"),
                           transfer=node.registry.label("case.forward_mode", "transfer"))


@hookimpl
def xinfang_event_applied(context, event):
    if event.type in ("case.register", tags.TYPE):
        views.update_repeat_flags(context, event.entity_id)


@hookimpl
def xinfang_received(node, applied):
    """At the root: tag the petitioners whose ID numbers a sync has just brought."""
    tags.tag_jurisdiction(node)


@hookimpl
def xinfang_register_commands(cli, registry):
    from .commands import build_case_group

    cli.add_command(build_case_group(registry))


@hookimpl
def xinfang_outgoing(event, destination, node):
    """Petitioner identity goes down to the office in whose area the case lies,
    which must contact the petitioner; upward only where policy allows. The ID
    numbers alone go to the county at the root of the tree, sealed to it end to
    end, which tags them for the whole jurisdiction (``tags``): so 重复访 is
    found across villages while no node between can read or test them."""
    if event.entity != ENTITY:
        return None
    if destination.area.startswith(event.area):
        return True
    if node.context.policy("case.release_identity_upward", event.area):
        return True
    if event.type == "case.register" and _is_root(destination, node):
        return {person["id_number"] for person in event.body.get("petitioners", ())
                if isinstance(person, dict) and person.get("id_number")}
    return False


def _is_root(destination, node) -> bool:
    """Whether ``destination`` is the pinned root of the trust tree."""
    return destination.self_signed and destination.subject == tags.root_of(node)
