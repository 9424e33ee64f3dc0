"""``xinfang ledger …``: thin shells over ``api``.

The ``ledger`` group holds three groups the kernel generates from the entity
declarations (``build_entity_group``: create, ``list``, ``show`` and a command per
step), so ``ledger dispute add / start / resolve / to-petition …``, ``ledger
project add / progress / finish …`` and ``ledger target set / revise …`` are the
kernel's. The plugin replaces only what the kernel cannot know: the dispute list
with ``--overdue``, ``dispute carry`` (月度排查) and ``target set``, whose area is
the township the agreement is signed with. Steps go through ``api.step``, which
checks a 转信访's case. Other modules of the plugin add ``ledger import`` /
``export`` and the reports to ``ledger_group``.
"""

from __future__ import annotations

import click

from xinfang.cli import App, emit, group, json_option, option, pass_app, table
from xinfang.cli.base import command
from xinfang.cli.entities import build_entity_group, parse_assignments
from xinfang.core import clock, records
from xinfang.core.entities import parse_date
from xinfang.core.i18n import N_, _

from . import api
from .entities import DISPUTE, DISPUTE_TYPE, PROJECT, TARGET, TARGET_TYPE


@group("ledger", help=N_("移民信访维稳台账: disputes screened and resolved, resettlement-village "
                         "projects and the townships' target agreements."))
def ledger_group():
    """The ledger's commands."""


@command("list", help=N_("List disputes, optionally filtered; --overdue lists the open ones "
                         "past their 化解时限."))
@option("--status", help=N_("State, e.g. 已排查, 化解中, 已化解, 已转信访."))
@option("--area", help=N_("Area code prefix."))
@option("--from", "since", help=N_("Start date YYYY-MM-DD (by 排查日期)."))
@option("--to", "until", help=N_("End date YYYY-MM-DD."))
@option("--where", "where", multiple=True,
        help=N_("Filter by field: name=value; may be repeated."))
@option("--overdue", is_flag=True, help=N_("Only open disputes whose 化解时限 has passed."))
@option("--as-of", help=N_("The day overdue is judged on, YYYY-MM-DD [default: today]."))
@json_option
@pass_app
def dispute_list(app: App, status, area, since, until, where, overdue, as_of, as_json):
    day = None
    if overdue:
        day = (parse_date(as_of, N_("the day (--as-of)")) if as_of else clock.today())
        day = day.isoformat()
    with app.open_node() as node:
        found = [api.ledger_row(r) for r in api.disputes(
            node, status, area, since, until, parse_assignments(where, "--where"), day)]
        kinds = {c.code: c.label for c in node.registry.vocabulary("ledger.dispute_kind")}
        risks = {c.code: c.label for c in node.registry.vocabulary("ledger.risk")}
    emit(found, as_json, lambda rows: _dispute_text(rows, kinds, risks))


LIST_FIELDS = ("date", "kind", "risk", "due", "summary")
LABELS = {f.name: f.label for f in DISPUTE_TYPE.create.fields}


def _dispute_text(rows, kinds, risks) -> str:
    if not rows:
        return _("No dispute matches.")
    return table([[r["id"], r["status_label"], r["area"], r["values"]["date"],
                   kinds.get(r["values"]["kind"], r["values"]["kind"]),
                   risks.get(r["values"]["risk"], r["values"]["risk"]),
                   r["values"]["due"] or "—", r["values"]["summary"]] for r in rows],
                 [_("ID"), _("State"), _("Area"), *(LABELS[n] for n in LIST_FIELDS)]) + "\n" + _("{count} in all").format(count=len(rows))


@command("carry", help=N_("月度排查: screen again every open dispute not yet in the month's "
                          "ledger, carrying it into that month."))
@option("--month", required=True, help=N_("The month, YYYY-MM."))
@option("--area", help=N_("An area below this node [default: this node's]."))
@option("--date", help=N_("The day of the screening, YYYY-MM-DD [default: the month's "
                          "first day]."))
@json_option
@pass_app
def dispute_carry(app: App, month, area, date, as_json):
    with app.open_node() as node:
        carried = api.carry(node, month, area, date)
    emit(carried, as_json, lambda ids: _("{count} open disputes carried into {month}").format(
        count=len(ids), month=month) + "".join(f"\n  {i}" for i in ids))


@command("set", help=N_("签订: the county's target agreement with a township for a year."))
@option("--township", required=True, help=N_("The township's area code (9 digits)."))
@option("--year", required=True, help=N_("The year, e.g. 2026."))
@option("--no-mass", help=N_("不发生群体事件: yes or no."))
@option("--max-skipped", help=N_("越级访上限（件）: at most this many."))
@option("--min-resolution", help=N_("化解率不低于（%）: at least this percentage."))
@option("--note", help=N_("备注."))
@json_option
@pass_app
def target_set(app: App, township, year, no_mass, max_skipped, min_resolution, note, as_json):
    given = {k: v for k, v in (("year", year), ("no_mass", no_mass),
                               ("max_skipped", max_skipped),
                               ("min_resolution", min_resolution), ("note", note))
             if v is not None}
    with app.open_node() as node:
        target_id = api.set_target(node, township, given)
        data = api.ledger_row(records.get(node, TARGET, target_id))
    emit(data, as_json, lambda d: _("Recorded {step}: {id} ({status})").format(
        step=TARGET_TYPE.create.label, id=d["id"], status=d["status_label"]))


def add_commands(cli, registry) -> click.Group:
    """Fill the ``ledger`` group with the generated record groups, add it to ``cli`` and
    return it."""
    for entity, overrides, text in (
            (DISPUTE, (dispute_list, dispute_carry),
             N_("矛盾纠纷: screen, resolve or turn into a 信访事项; the month's carry.")),
            (PROJECT, (), N_("移民新村项目: record a project, its progress and completion.")),
            (TARGET, (target_set,), N_("目标责任状: the county's yearly targets per township."))):
        ledger_group.add_command(build_entity_group(
            registry.entity_type(entity), registry, name=entity, overrides=overrides,
            take=api.take(entity), help=text))
    cli.add_command(ledger_group)
    return ledger_group
