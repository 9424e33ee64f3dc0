"""The demo's resettlement area: a fourth township whose office runs without the
ledger plugin, its two villages, and the county's 移民局 (a department node).

The villages screen disputes offline (矛盾纠纷排查), one dispute becomes a
信访事项 (转信访), a 旧房改造 project reports its progress twice, and the bureau
signs the township's 目标责任状. The villages' bundles go through the township,
which cannot fold the ledger's records but holds and forwards them, up to the
county; the bureau, certified for the county's area but filtered to the ledger
records and the cases of category 库区移民, syncs with the county by HTTP and
prints its 移民信访维稳月报 for the demo month (and writes it as xlsx).
"""

from __future__ import annotations

from xinfang.app import DEFAULT_PLUGINS
from xinfang.core import held, reports, verify
from xinfang.core.i18n import _
from xinfang.core.plugins import get_plugin_manager as bare_plugin_manager
from xinfang.plugins.cases import api as cases
from xinfang.plugins.ledger import api as ledger
from xinfang.sync import trust

from . import month
from .synthetic import (BUREAU, COUNTY, DISPUTES, GIVEN, MEASURES, PETITION, PROGRESS, PROJECT,
                        RESETTLEMENT_TOWNSHIP, RESOLVED, VILLAGES, person, synthetic_id)

CATEGORY = "resettlement"
LEDGER = ("dispute", "project", "target")
#: what the bureau's certificate lets it get and write
BUREAU_FILTER = trust.parse_filter(",".join((*LEDGER, "case")), [f"case.category={CATEGORY}"])
#: the day of the demo month (days after its 1st) each village screens its disputes
SCREENED = ((1, 3, 5), (2, 4))
#: the project's 进度: days after the month's 1st and 累计完成
PROGRESS_DAYS = ((9, 5), (19, 11))


def without_ledger():
    """The plugins of a township office that never installed the ledger plugin."""
    return bare_plugin_manager(entry_points=False,
                               defaults=[p for p in DEFAULT_PLUGINS if ".ledger." not in p])


def build(world) -> None:
    """The township (without the ledger plugin) and its two villages, enrolled like
    the others, and the bureau, enrolled by the county with its filter."""
    from .county import say

    county = world.nodes[COUNTY[0]]
    area, name = RESETTLEMENT_TOWNSHIP
    town = world.node(area, "township", name, plugins=without_ledger)
    world.enrol(town, county)
    for i in (1, 2):
        world.enrol(world.node(f"{area}20{i}", "village", f"{name[:4]}{VILLAGES[i - 1]}"), town)
    world.bureau = world.node(COUNTY[0], "county", BUREAU, home=f"{COUNTY[0]}-bureau")
    world.enrol(world.bureau, county, only=BUREAU_FILTER)
    only = world.bureau.certificate.only
    say(_("{town} keeps no ledger plugin; {bureau} is certified for the county's area, "
          "filtered to {entities}, and of the cases only those of category {category}").format(
        town=name, bureau=BUREAU, category=county.registry.label("case.category", CATEGORY),
        entities=_(", ").join(county.registry.entity_type(e).label
                              for e in sorted(only.entities))))


def work(world) -> None:
    """The villages' 台账 for the demo month, a 信访事项 from one dispute, the project's
    progress, and the bureau's 目标责任状 with the township, sent to the county."""
    from .county import heading, say

    heading(_("The resettlement villages screen disputes offline; the bureau signs the "
              "township's target agreement"))
    today = world.today

    def day(offset: int) -> str:
        return month.day(today, offset).isoformat()

    (_first, first), (_second, second) = world.villages_of(RESETTLEMENT_TOWNSHIP[0])
    name, planned, unit = PROJECT
    project = ledger.add_project(second, {"date": day(0), "kind": "rebuild", "name": name,
                                          "planned": planned, "unit": unit}, today=today)
    found = []
    for village, texts, days in zip((first, second), DISPUTES, SCREENED):
        for (kind, summary, people, risk), offset in zip(texts, days):
            values = {"date": day(offset), "kind": kind, "summary": summary,
                      "people": people, "risk": risk, "due": day(offset + 20)}
            if kind == "housing":
                values["project"] = project
            found.append((village, ledger.add_dispute(village, values, today=today)))
    (v1, resolved), (_v, petition), *_rest = found
    ledger.step(v1, "dispute", resolved, "resolve", {
        "date": day(7), "progress": RESOLVED, "mediation": "people"}, today=today)
    case = cases.register_case(v1, cases.CaseInput(
        petitioners=[cases.PetitionerInput(person(40, GIVEN[2]), synthetic_id(140))],
        channel="visit", category=CATEGORY, kind="appeal", request=PETITION,
        received=day(6)), today=today)
    world.identities |= {person(40, GIVEN[2]), synthetic_id(140)}
    ledger.step(v1, "dispute", petition, "to_petition", {"date": day(6), "case": case},
                today=today)
    ledger.step(second, "dispute", found[-1][1], "start", {
        "date": day(8), "measures": MEASURES, "mediation": "administrative"}, today=today)
    for (offset, done), note in zip(PROGRESS_DAYS, PROGRESS):
        ledger.step(second, "project", project, "progress",
                    {"date": day(offset), "done": done, "note": note}, today=today)
    target = ledger.set_target(world.bureau, RESETTLEMENT_TOWNSHIP[0], {
        "year": month.first_day(today).year, "no_mass": True, "max_skipped": 2,
        "min_resolution": 90}, today=today)
    world.resettlement = {"disputes": len(found), "project": project, "case": case,
                          "target": target}
    say(_("{count} disputes screened; {dispute} goes to petition as {case}; project "
          "{project} ({name}, {planned} {unit}) reports {done}; the bureau signs {target}"
          ).format(count=len(found), dispute=petition, case=case, project=project, name=name,
                   planned=planned, unit=unit,
                   done=_(", ").join(str(d) for _o, d in PROGRESS_DAYS), target=target))
    say("  " + _("{bureau}: {http}").format(bureau=BUREAU, http=world.http(world.bureau)))


def report(world) -> bool:
    """The bureau's 移民信访维稳月报 for the demo month, what the township holds without
    the plugin, and the checks: the bureau holds the area's resettlement cases and
    ledger records and nothing else, and its views equal its log folded again."""
    from .county import heading, say

    county, bureau = world.nodes[COUNTY[0]], world.bureau
    code = month.first_day(world.today).strftime("%Y-%m")
    heading(_("The resettlement bureau's monthly report ({period})").format(period=code))
    say(_("{bureau}: {http}").format(bureau=BUREAU, http=world.http(bureau)))
    result = reports.run_report(bureau, "ledger.monthly", {"period": code})
    say(reports.render(bureau.registry, result, "text").decode("utf-8").rstrip())
    sheet = world.base / f"{code}-resettlement-monthly.xlsx"
    sheet.write_bytes(reports.render(bureau.registry, result, "xlsx"))
    say(_("Written as xlsx: {path}").format(path=sheet))
    problems = []
    made = world.resettlement
    # 5 disputes screened in the month, 1 resolved (转信访 is not 化解)
    if (result.total["screened"], result.total["resolved"]) != (made["disputes"], 1):
        problems.append(_("the monthly report counts {screened} disputes screened and "
                          "{resolved} resolved, not {expected} and 1").format(
            screened=result.total["screened"], resolved=result.total["resolved"],
            expected=made["disputes"]))
    if ledger.project_done(bureau, made["project"]) != PROGRESS_DAYS[-1][1]:
        problems.append(_("the bureau does not see the project's latest progress"))
    town = world.nodes[RESETTLEMENT_TOWNSHIP[0]]
    groups = {g.entity: g for g in held.held(town)}
    say(_("{town} has no ledger plugin: it holds, unfolded, and forwards {held}").format(
        town=town.info.name, held=_(", ").join(
            _("{label} {records} (events {events})").format(
                label=bureau.registry.entity_type(g.entity).label, records=g.entities,
                events=g.events) for g in groups.values()) or "—"))
    expected = {"dispute": made["disputes"], "project": 1, "target": 1}
    if {e: g.entities for e, g in groups.items()} != expected:
        problems.append(_("{town} holds {found} records it cannot fold, not {expected}").format(
            town=town.info.name, found=sum(g.entities for g in groups.values()),
            expected=sum(expected.values())))
    problems += bureau_problems(world, county, bureau)
    if problems:
        say(_("Checks failed:") + "\n  " + "\n  ".join(problems), fg="red", bold=True)
        return False
    say(_("Checks passed: the bureau holds the county's {cases} cases of category {category} "
          "and no other, the {disputes} disputes relayed by a township without the ledger "
          "plugin, and its views equal its log folded again").format(
        cases=made["bureau_cases"], category=county.registry.label("case.category", CATEGORY),
        disputes=made["disputes"]), fg="green", bold=True)
    return True


def bureau_problems(world, county, bureau) -> list[str]:
    """What the bureau holds, by case category, against the county; and its fold."""
    from .county import say

    def by_category(node):
        return dict(node.db.execute("select category, count(*) from cases group by 1"))

    mine, theirs = by_category(bureau), by_category(county)
    others = sum(n for c, n in mine.items() if c != CATEGORY)
    world.resettlement["bureau_cases"] = mine.get(CATEGORY, 0)
    label = county.registry.label("case.category", CATEGORY)
    say(_("Cases held by the bureau: {mine} of category {category} (the county holds {theirs}), "
          "{others} of any other category (the county holds {county_others})").format(
        mine=mine.get(CATEGORY, 0), category=label, theirs=theirs.get(CATEGORY, 0),
        others=others, county_others=sum(n for c, n in theirs.items() if c != CATEGORY)))
    problems = []
    if others or mine.get(CATEGORY, 0) != theirs.get(CATEGORY, 0):
        problems.append(_("the bureau holds {mine} cases of category {category} and {others} "
                          "of others; the county holds {theirs} of that category").format(
            mine=mine.get(CATEGORY, 0), category=label, others=others,
            theirs=theirs.get(CATEGORY, 0)))
    ledger_held = {e: n for e, n in bureau.db.execute(
        "select entity, count(distinct entity_id) from events where entity in (?, ?, ?) "
        "group by 1", LEDGER)}
    at_county = {e: n for e, n in county.db.execute(
        "select entity, count(distinct entity_id) from events where entity in (?, ?, ?) "
        "group by 1", LEDGER)}
    if ledger_held != at_county:
        problems.append(_("the bureau and the county hold different ledger records"))
    if bureau.db.execute("select count(*) from quarantine").fetchone()[0]:
        problems.append(_("the bureau has quarantined events"))
    # re-folded in place: a fresh node would not hold the county's root pinned
    if not verify.rebuild(bureau, check_only=True).consistent:
        problems.append(_("The views of {node} differ from a fresh fold of its log").format(
            node=BUREAU))
    return problems
