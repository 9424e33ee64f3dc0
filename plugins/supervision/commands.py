"""``xinfang ducha …`` and ``xinfang baoan …``: thin shells over ``api`` and ``leaders``.

The ``ducha`` group is the kernel's generated one for the order record (its
``show`` and the 回复 / 销号 / 重办 step commands); ``issue`` and ``list``
replace the generated ones, since an order's area comes from its cases and
its list is the escalating supervision list, not a plain record list.
"""

from __future__ import annotations

from xinfang.cli import App, emit, group, json_option, option, pass_app, table
from xinfang.cli.base import command
from xinfang.cli.entities import build_entity_group
from xinfang.core import records
from xinfang.core.i18n import N_, _

from . import api, leaders, orders


@command("issue", help=N_("Issue a supervision order (督办单) on cases, to the office one level "
                          "below this one that holds them all."))
@option("--case", "cases", multiple=True, required=True,
        help=N_("A case number the order supervises; may be repeated."))
@option("--due", required=True, help=N_("The day the office must report by, YYYY-MM-DD."))
@option("--required", required=True, help=N_("What the office must do and report."))
@option("--kind", help=N_("督办 (the default) or 挂牌督办 for the hardest cases."))
@option("--date", help=N_("The day the order is issued, YYYY-MM-DD [default: today]."))
@json_option
@pass_app
def issue(app: App, cases, due, required, kind, date, as_json):
    with app.open_node() as node:
        order_id = api.issue(node, cases, due, required, kind, date)
        data = records.get(node, orders.ENTITY, order_id).to_dict()
    emit({k: v for k, v in data.items() if k not in ("history", "conflicts")}, as_json,
         lambda d: _("Issued supervision order {id} to area {area}, due {due}").format(
             id=d["id"], area=d["area"], due=d["values"]["due"]))


@command("list", help=N_("This office's supervision list: overdue cases and open orders, "
                         "with those risen from below after the policy's days."))
@option("--as-of", help=N_("The day the list is read on, YYYY-MM-DD [default: today]."))
@option("--area", help=N_("An area below this node [default: this node's]."))
@option("--all", "everything", is_flag=True,
        help=N_("Every overdue case and open order below, risen or not."))
@json_option
@pass_app
def list_(app: App, as_of, area, everything, as_json):
    with app.open_node() as node:
        found = [i.to_dict() for i in api.supervision_list(node, as_of, area, everything)]
        names = api.office_names(node)
    emit(found, as_json, lambda rows: _list_text(rows, names))


def _what(item) -> str:
    if item["kind"] == "order":
        return _("order on {cases}: {required}").format(cases=", ".join(item["cases"]),
                                                        required=item["required"])
    return _("case, {deadline}").format(deadline=item["label"]) + (
        _(" (包案 {leader})").format(leader=item["leader"]) if item["leader"] else "")


def _list_text(rows, names: dict[str, str]) -> str:
    if not rows:
        return _("Nothing is overdue or awaiting an answer on this list.")
    return table([[r["ref"], _what(r), r["area"], r["due"], r["days_overdue"] or "—",
                   names.get(r["reached"], r["reached"]) if r["risen"] else "—", r["status"]]
                  for r in rows],
                 [_("Number"), _("What"), _("Area"), _("Due"), _("Days overdue"),
                  _("Risen to"), _("State")]) + "\n" + _("{count} in all").format(count=len(rows))


@group("baoan", help=N_("领导包案: name the leader who owns a hard case, and list them."))
def baoan_group():
    """The 包案 commands."""


@baoan_group.command("assign", help=N_("Name the leader who owns a case until it is resolved."))
@option("--case", "case_id", required=True, help=N_("The case number."))
@option("--leader", required=True, help=N_("The leader's name and post."))
@option("--duty", help=N_("What the leader takes on, e.g. 包调处、包化解."))
@option("--date", help=N_("The day the leader took the case, YYYY-MM-DD [default: today]."))
@json_option
@pass_app
def assign(app: App, case_id, leader, duty, date, as_json):
    with app.open_node() as node:
        leaders.assign(node, case_id, leader, duty, date)
        found = [a.to_dict() for a in leaders.assignments(node, leader=leader)
                 if a.case_id == case_id]
    emit(found[0] if found else {}, as_json, lambda a: _("{leader} owns case {id}").format(
        leader=leader, id=case_id))


@baoan_group.command("list", help=N_("The cases leaders own, with whether each is resolved "
                                     "and petitioning has ceased."))
@option("--area", help=N_("An area below this node [default: this node's]."))
@option("--leader", help=N_("Only this leader's cases."))
@option("--open", "open_only", is_flag=True, help=N_("Only cases not yet resolved."))
@json_option
@pass_app
def list_assignments(app: App, area, leader, open_only, as_json):
    with app.open_node() as node:
        found = [a.to_dict() for a in leaders.assignments(node, area, leader, open_only)]
    emit(found, as_json, _assignments_text)


def _assignments_text(rows) -> str:
    if not rows:
        return _("No case has a leader in charge.")
    ceased = sum(1 for r in rows if r["ceased"])
    return table([[r["case_id"], r["area"], r["leader"], r["since"] or "—", r["status_label"],
                   _("yes") if r["ceased"] else _("no")] for r in rows],
                 [_("Case"), _("Area"), _("Leader in charge"), _("Since"), _("State"),
                  _("Petitioning ceased")]) + "\n" + _(
        "{count} cases owned by leaders, petitioning ceased in {ceased}").format(
            count=len(rows), ceased=ceased)


def add_commands(cli, registry) -> None:
    cli.add_command(build_entity_group(
        registry.entity_type(orders.ENTITY), registry, name="ducha", overrides=(issue, list_),
        help=N_("督查督办: supervision orders on cases, their answers, and the supervision "
                "list.")))
    cli.add_command(baoan_group)
