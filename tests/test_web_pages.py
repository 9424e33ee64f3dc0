"""The 工作台, the case list, a case page and 登记 over real HTTP.

A certified tree (``sync_helpers.build_tree``: county, township, two villages)
with a 零报告 period running today, one village filed and the other stations
silent; cases registered at the county through the case API (one petitioner
three times: 重复访; one a year ago; one overdue; one collective visit),
accounts through ``web.accounts``; the county served by waitress on a thread,
a browser played by ``test_web.Browser``. Every expected figure comes from
``run_report``, the case API or the 零报告 API, never written here by hand.
Names and ID numbers are synthetic.
"""

from __future__ import annotations

import datetime as dt
import html
import re
import sqlite3
import urllib.parse

import attrs
import pytest
from argon2 import PasswordHasher

from sync_helpers import build_tree, carry
from test_web import PASSWORD, Browser, cheap_hashes, events, message  # noqa: F401
from xinfang.core import clock, i18n, periods
from xinfang.core.errors import InvalidInput
from xinfang.core.node import DB_NAME, Node
from xinfang.core.reports import cell_text, run_report
from xinfang.core.routes import find_route
from xinfang.plugins.cases import api
from xinfang.plugins.cases.idnumber import synthetic
from xinfang.plugins.zero_report import api as zero
from xinfang.sync.server import BackgroundServer
from xinfang.web import accounts, dashboard, pages

COUNTY, TOWNSHIP = "431202", "431202101"
VILLAGE_ONE, VILLAGE_TWO = "431202101201", "431202101202"
#: an area of another township, with no node of its own
ELSEWHERE = "431202102201"
TODAY = clock.today()


@attrs.frozen
class Site:
    url: str
    home: object
    ids: dict[str, str]


def _case(node, serial: int, area: str, received: dt.date, category: str = "labour",
          channel: str = "letter", request: str = "请求追讨拖欠工资", person: int | None = None,
          headcount: int | None = None) -> str:
    number = person if person is not None else serial
    return api.register_case(node, api.CaseInput(
        petitioners=[api.PetitionerInput(f"孙某{number}", synthetic(number),
                                         f"1390000{number:04d}")],
        channel=channel, category=category, kind="appeal", request=request,
        received=received.isoformat(), area=area, headcount=headcount))


def _year_ago(day: dt.date) -> dt.date:
    try:
        return day.replace(year=day.year - 1)
    except ValueError:
        return day.replace(year=day.year - 1, day=28)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setattr(accounts, "HASHER", PasswordHasher(time_cost=1, memory_cost=8,
                                                  parallelism=1))
    base = tmp_path_factory.mktemp("pages")
    tree = build_tree(base)
    county = tree.county
    # a 零报告 period running today: village one files, the others stay silent
    zero.declare(county, "测试敏感期", TODAY.isoformat(),
                 (TODAY + dt.timedelta(days=1)).isoformat())
    carry(county, tree.township, base)
    for village in tree.villages:
        carry(tree.township, village, base)
    zero.file_report(tree.village, TODAY.isoformat(), today=TODAY)
    carry(tree.village, tree.township, base)
    carry(tree.township, county, base)

    ids = {
        "first": _case(county, 1, VILLAGE_ONE, TODAY - dt.timedelta(days=2), person=7),
        "second": _case(county, 2, VILLAGE_ONE, TODAY - dt.timedelta(days=1), person=7),
        "third": _case(county, 3, VILLAGE_TWO, TODAY, person=7),
        "land": _case(county, 4, VILLAGE_TWO, TODAY, category="land",
                      request="请求调处宅基地边界纠纷"),
        "elsewhere": _case(county, 5, ELSEWHERE, TODAY, category="land", channel="visit"),
        "collective": _case(county, 6, ELSEWHERE, TODAY, channel="visit", headcount=6),
        "legal": _case(county, 8, VILLAGE_ONE, TODAY, category="law_litigation"),
        "year_ago": _case(county, 9, VILLAGE_ONE, _year_ago(TODAY), category="land"),
        "late": _case(county, 10, VILLAGE_TWO, TODAY - dt.timedelta(days=60)),
    }
    api.take_step(county, ids["land"], "accept", {"unit": "县自然资源局", "handler": "吴某"})
    accounts.add_user(county, "pages.handler", "handler", PASSWORD, area=COUNTY)
    accounts.add_user(county, "pages.leader", "leader", PASSWORD, area=COUNTY)
    accounts.add_user(county, "pages.clerk", "clerk", PASSWORD, area=VILLAGE_TWO)
    tree.close()
    with BackgroundServer(base / "county") as server:
        yield Site(server.url, base / "county", ids)
    mp.undo()


@pytest.fixture(autouse=True)
def fresh_failures(site):
    """Every request comes from 127.0.0.1; each test starts with no failed logins."""
    conn = sqlite3.connect(site.home / DB_NAME)
    with conn:
        conn.execute("delete from web_login_failures")
    conn.close()


def browser(site, name: str = "pages.handler", language: str | None = None) -> Browser:
    found = Browser(site.url, language=language)
    assert found.login(name)[0] == 200
    return found


def by_id(body: str, name: str) -> str:
    found = re.search(rf'id="{re.escape(name)}"[^>]*>(.*?)</', body, re.S)
    assert found, f"no element {name}"
    return html.unescape(re.sub(r"<[^>]+>", "", found.group(1))).strip()


def case_ids(body: str) -> list[str]:
    return re.findall(r'<td><a href="/cases/([0-9-]+)">', body)


def with_node(site, work):
    node = Node.open(site.home)
    try:
        return work(node)
    finally:
        node.close()


# -- the dashboard --------------------------------------------------------------------


def test_the_dashboard_figures_are_the_monthly_reports_total_with_its_changes(site):
    body = browser(site).get("/")[1]
    month = periods.current_month().code
    result = with_node(site, lambda node: run_report(node, "stats.monthly",
                                                     {"period": month, "area": COUNTY}))
    changes = {row["indicator"]: row for row in result.tables[0].rows}
    for name in dashboard.DASHBOARD_FIGURES:
        assert by_id(body, f"figure-{name}") == cell_text(result.total[name]), name
    label = next(c.label for c in result.columns if c.name == "cases")
    with i18n.language_scope("zh_CN"):
        assert by_id(body, "yoy-cases") == cell_text(changes[i18n._(label)]["yoy"])
    assert int(by_id(body, "figure-cases")) >= 4  # at least those received today


def test_the_trend_shows_twelve_months_each_beside_the_same_month_a_year_earlier(site):
    body = browser(site).get("/")[1]
    month = periods.current_month()

    def trends(node):
        now = run_report(node, "stats.monthly", {"period": month.code, "area": COUNTY})
        ago = run_report(node, "stats.monthly", {"period": month.year_ago().code,
                                                 "area": COUNTY})
        return now.trend.rows, ago.trend.rows

    now, ago = with_node(site, trends)
    assert len(now) == 12 and body.count('<rect class="now"') == 12
    for this, earlier in zip(now, ago):
        assert by_id(body, f"trend-{this['month']}") == str(this["cases"])
        assert by_id(body, f"trend-ago-{this['month']}") == str(earlier["cases"])
    assert int(by_id(body, f"trend-ago-{month.code}")) >= 1  # the case of a year ago


def test_cases_by_category_and_by_area_are_the_reports_breakdowns(site):
    body = browser(site).get("/")[1]
    month = periods.current_month().code

    def breakdowns(node):
        by_category = run_report(node, "stats.monthly", {"period": month, "area": COUNTY,
                                                         "by": "category"})
        by_area = run_report(node, "stats.monthly", {"period": month, "area": COUNTY})
        labels = {c.code: c.label for c in node.registry.vocabulary("case.category")}
        return by_category.rows, by_area.rows, labels

    categories, areas, labels = with_node(site, breakdowns)
    shown = dict(re.findall(r'id="category-([a-z_]+)">(\d+)<', body))
    expected = {row["group"]: row["cases"] for row in categories if row["cases"]}
    assert {labels[code]: int(n) for code, n in shown.items()} == expected
    assert "law_litigation" not in shown  # 涉法涉诉 is left out of the counts
    shown = dict(re.findall(r'id="area-(\d+)">(\d+)<', body))
    assert {code: int(n) for code, n in shown.items()} == {
        row["group"]: row["cases"] for row in areas if row["cases"]}
    assert set(shown) == {TOWNSHIP, ELSEWHERE[:9]}


def test_the_silent_stations_are_those_the_zero_report_api_names(site):
    body = browser(site).get("/")[1]
    found = with_node(site, lambda node: zero.missing(node, today=TODAY))
    silent = sorted(m["area"] for m in found["missing"])
    assert sorted(re.findall(r'id="silent-(\d+)"', body)) == silent
    assert by_id(body, "count-silent") == str(len(silent))
    if found["expected"]:  # the tree's certification day (Beijing time) has begun
        assert VILLAGE_ONE not in silent and VILLAGE_TWO in silent


def test_each_count_links_to_the_page_that_lists_it(site):
    handler = browser(site)
    body = handler.get("/")[1]
    overdue = with_node(site, lambda node: api.count_cases(
        node, api.CaseFilter(overdue=True, area=COUNTY)))
    assert overdue >= 1 and by_id(body, "count-overdue") == str(overdue)
    assert '<a href="/cases?overdue=1">' in body
    listed = handler.get("/cases?overdue=1")[1]
    assert site.ids["late"] in case_ids(listed) and len(case_ids(listed)) == overdue
    for name, path in (("conflicts", "/conflicts"), ("quarantine", "/quarantine"),
                       ("held", "/held"), ("silent", "/reports/zero.rates")):
        served = with_node(site, lambda node: find_route(node.registry.routes.values(),
                                                         path)[0] is not None)
        link = re.search(rf'id="count-{name}"><a href="([^"]+)">', body)
        assert (link is not None) == served, name
        if link:
            assert html.unescape(link.group(1)).split("?")[0] == path
            assert handler.get(html.unescape(link.group(1)))[0] != 404, path  # its own roles


def test_a_clerk_sees_the_figures_of_their_own_area_and_no_other(site):
    clerk = browser(site, "pages.clerk")
    body = clerk.get("/")[1]
    month = periods.current_month().code
    total = with_node(site, lambda node: run_report(
        node, "stats.monthly", {"period": month, "area": VILLAGE_TWO}).total)
    assert by_id(body, "figure-cases") == cell_text(total["cases"])
    assert clerk.get(f"/?area={VILLAGE_ONE}")[0] == 403
    assert clerk.get("/?area=4312")[0] == 400


def test_a_new_case_shows_on_the_dashboard_at_once(site):
    handler = browser(site)
    before = int(by_id(handler.get(f"/?area={ELSEWHERE}")[1], "figure-cases"))
    node = Node.open(site.home)
    try:
        _case(node, 31, ELSEWHERE, TODAY)
    finally:
        node.close()
    assert int(by_id(handler.get(f"/?area={ELSEWHERE}")[1], "figure-cases")) == before + 1


# -- the case list --------------------------------------------------------------------


def test_the_list_is_paged_with_the_total_and_every_case_once(site, monkeypatch):
    monkeypatch.setattr(pages, "PAGE_SIZE", 3)
    handler = browser(site)
    expected = with_node(site, lambda node: [c.id for c in api.list_cases(
        node, api.CaseFilter(area=COUNTY), newest_first=True)])
    body = handler.get("/cases")[1]
    assert re.search(r'id="total" data-count="(\d+)"', body).group(1) == str(len(expected))
    assert 'id="previous"' not in body
    seen, number = [], 1
    while True:
        page_ids = case_ids(body)
        assert len(page_ids) == (3 if number * 3 <= len(expected) else len(expected) % 3)
        seen += page_ids
        following = re.search(r'href="([^"]+)" id="next"', body)
        if not following:
            break
        number += 1
        body = handler.get(html.unescape(following.group(1)))[1]
        assert 'id="previous"' in body
    assert seen == expected and number == -(-len(expected) // 3)
    beyond = handler.get("/cases?page=999")[1]  # past the end: the last page
    assert case_ids(beyond) == expected[(number - 1) * 3:]


@pytest.mark.parametrize("query, filters", [
    ({"category": "land"}, {"category": "land"}),
    ({"status": "accepted"}, {"status": "accepted"}),
    ({"channel": "visit"}, {"channel": "visit"}),
    ({"repeat": "1"}, {"repeat": True}),
    ({"repeat": "0", "category": "labour"}, {"repeat": False, "category": "labour"}),
    ({"collective": "1"}, {"collective": True}),
    ({"unit": "自然资源"}, {"unit": "自然资源"}),
    ({"handler": "吴某"}, {"handler": "吴某"}),
    ({"from": "2000-01-01", "to": (TODAY - dt.timedelta(days=30)).isoformat()},
     {"received_from": "2000-01-01", "received_to": TODAY - dt.timedelta(days=30)}),
    ({"area": VILLAGE_TWO}, {"area": VILLAGE_TWO}),
    ({"q": "宅基地"}, {"text": "宅基地"}),
])
def test_the_list_filters_as_the_api_does(site, query, filters):
    body = browser(site).get("/cases?" + urllib.parse.urlencode(query))[1]
    expected = with_node(site, lambda node: [c.id for c in api.list_cases(
        node, api.CaseFilter(**{"area": COUNTY, **filters}), newest_first=True)])
    assert expected and case_ids(body) == expected[:pages.PAGE_SIZE]
    assert re.search(r'data-count="(\d+)"', body).group(1) == str(len(expected))


def test_the_search_is_over_the_request_text(site):
    body = browser(site).get("/cases?" + urllib.parse.urlencode({"q": "宅基地边界"}))[1]
    assert case_ids(body) == [site.ids["land"]]
    body = browser(site).get("/cases?" + urllib.parse.urlencode({"q": "无此诉求"}))[1]
    assert case_ids(body) == [] and "没有" in by_id(body, "total")


@pytest.mark.parametrize("query, word", [({"due_within": "soon"}, "soon"),
                                         ({"from": "2026-13-01"}, "2026-13-01"),
                                         ({"category": "nothing"}, "nothing")])
def test_a_bad_filter_is_a_400_page_with_the_message(site, query, word):
    status, body, _r = browser(site).get("/cases?" + urllib.parse.urlencode(query))
    assert status == 400 and word in message(body)


def test_a_clerk_lists_only_their_area(site):
    clerk = browser(site, "pages.clerk")
    body = clerk.get("/cases")[1]
    expected = with_node(site, lambda node: [c.id for c in api.list_cases(
        node, api.CaseFilter(area=VILLAGE_TWO), newest_first=True)])
    assert case_ids(body) == expected and site.ids["first"] not in expected
    assert clerk.get(f"/cases?area={VILLAGE_ONE}")[0] == 403


# -- a case -----------------------------------------------------------------------------


def test_a_case_page_links_the_case_it_repeats_and_the_later_ones(site):
    handler = browser(site)
    first, second, third = (site.ids[k] for k in ("first", "second", "third"))
    assert with_node(site, lambda node: api.get_case(node, second, reveal=False).repeat_of) \
        == first
    body = handler.get(f"/cases/{second}")[1]
    assert f'<a href="/cases/{first}">' in re.search(r'id="repeat-of">(.*?)</td>',
                                                     body).group(1)
    later = re.search(r'id="repeated-by">(.*?)</td>', body).group(1)
    assert re.findall(r'href="/cases/([0-9-]+)"', later) == with_node(
        site, lambda node: api.repeats_of(node, second)) == [third]
    body = handler.get(f"/cases/{first}")[1]
    assert 'id="repeat-of"' not in body and third not in by_id(body, "repeated-by")


def test_a_clerk_sees_a_repeat_outside_their_area_without_a_link(site):
    body = browser(site, "pages.clerk").get(f"/cases/{site.ids['third']}")[1]
    cell = re.search(r'id="repeat-of">(.*?)</td>', body).group(1)
    assert site.ids["second"] in cell and "href" not in cell


def test_a_handler_cannot_take_the_baoan_step_and_a_leader_can(site):
    case_id = site.ids["elsewhere"]
    handler, leader = browser(site), browser(site, "pages.leader")
    body = handler.get(f"/cases/{case_id}")[1]
    assert 'id="step-accept"' in body and 'id="step-baoan"' not in body
    before = events(site.home)
    status, body, _r = handler.post(f"/cases/{case_id}/step", {
        "csrf": handler.csrf(f"/cases/{case_id}"), "step": "baoan", "f.leader": "周某丙"})
    assert status == 403 and "经办人" in message(body)
    assert events(site.home) == before
    body = leader.get(f"/cases/{case_id}")[1]
    assert 'id="step-baoan"' in body and 'id="step-accept"' not in body
    status, body, _r = leader.post(f"/cases/{case_id}/step", {
        "csrf": leader.csrf(f"/cases/{case_id}"), "step": "baoan", "f.leader": "周某丙"})
    assert status == 200 and by_id(body, "leader") == "周某丙"
    assert with_node(site, lambda node: api.get_case(node, case_id, reveal=False).leader) \
        == "周某丙"
    status, _b, _r = leader.post(f"/cases/{case_id}/step", {
        "csrf": leader.csrf(f"/cases/{case_id}"), "step": "accept", "f.unit": "县信访局"})
    assert status == 403 and events(site.home) == before + 1


# -- 登记 -------------------------------------------------------------------------------


def _form(handler: Browser, **values) -> dict:
    return {"csrf": handler.csrf("/cases/new"), "channel": "visit", "category": "labour",
            "kind": "appeal", "request": "请求支付拖欠的劳务费", "area": VILLAGE_ONE, **values}


def test_registering_two_petitioners_stores_both(site):
    handler = browser(site)
    status, body, response = handler.post("/cases/new", _form(
        handler, **{"p.name": "李某甲", "p.id_number": synthetic(51), "p.rep": "1",
                    "p1.name": "李某乙", "p1.id_number": synthetic(52), "p1.phone": "13900000052",
                    "p2.name": ""}))
    assert status == 200, message(body)
    case_id = response.url.rsplit("/", 1)[1]
    case = with_node(site, lambda node: api.get_case(node, case_id))
    assert [(p.name, p.id_number, p.representative) for p in case.petitioners] == [
        ("李某甲", synthetic(51), True), ("李某乙", synthetic(52), False)]
    assert case.headcount == 2 and case.petitioners[1].phone == "13900000052"


def test_a_bad_id_number_shows_the_apis_message_and_stores_nothing(site):
    handler = browser(site)
    before = events(site.home)
    status, body, _r = handler.post("/cases/new", _form(
        handler, **{"p.name": "李某丙", "p1.name": "李某丁", "p1.id_number": "12345"}))
    with pytest.raises(InvalidInput) as refused:
        with_node(site, lambda node: api.register_case(node, api.CaseInput(
            [api.PetitionerInput("李某丙"), api.PetitionerInput("李某丁", "12345")],
            "visit", "labour", "appeal", "请求支付拖欠的劳务费", area=VILLAGE_ONE)))
    with i18n.language_scope("zh_CN"):
        expected = str(refused.value)
    assert status == 400 and message(body) == html.escape(expected, quote=False)
    assert "身份证号" in message(body) and events(site.home) == before
    assert 'value="李某丁"' in body  # what was typed is kept


def test_another_petitioner_row_is_added_without_a_script_and_nothing_stored(site):
    handler = browser(site)
    body = handler.get("/cases/new")[1]
    assert body.count('name="p.name"') == 1 and 'name="p2.name"' in body
    assert 'name="p3.name"' not in body and "<script" not in body
    before = events(site.home)
    status, body, _r = handler.post("/cases/new", _form(
        handler, **{"p.name": "李某戊", "more": "1"}))
    assert status == 200 and 'name="p3.name"' in body and 'value="李某戊"' in body
    assert events(site.home) == before


def test_a_clerk_registers_in_their_own_area_only(site):
    clerk = browser(site, "pages.clerk")
    before = events(site.home)
    status, body, _r = clerk.post("/cases/new", _form(clerk, **{"p.name": "李某己"}))
    assert status == 400 and VILLAGE_ONE in message(body) and events(site.home) == before
    assert browser(site, "pages.leader").get("/cases/new")[0] == 403


# -- languages --------------------------------------------------------------------------


@pytest.mark.parametrize("path, zh, en", [
    ("/", "按问题类别", "by problem category"),
    ("/", "上年同月", "Same month a year earlier"),
    ("/cases", "重复访", "Repeat petitions"),
    ("/cases/new", "再加一位信访人", "Add a petitioner row"),
])
def test_the_pages_speak_english_when_asked(site, path, zh, en):
    chinese = browser(site).get(path)[1]
    english = browser(site, language="en-GB,en;q=0.8").get(path)[1]
    assert zh in chinese and en not in chinese
    assert en in english and zh not in english and 'lang="en"' in english


# -- xinfang demo --web ---------------------------------------------------------------


@pytest.mark.slow
def test_the_demo_serves_its_county_with_the_logins_it_prints(tmp_path):
    """``xinfang demo --web --port 0`` in a process of its own: read the printed address
    and logins, log in over HTTP, see the 工作台, then stop it as Ctrl-C does."""
    import os
    import signal
    import subprocess
    import sys
    import time

    env = {k: v for k, v in os.environ.items() if k not in ("XINFANG_HOME", "XINFANG_DEBUG")}
    env.update({"PYTHONIOENCODING": "utf-8", "XINFANG_LANG": "zh_CN"})
    kept = tmp_path / "demo"
    proc = subprocess.Popen(
        [sys.executable, "-c", "from xinfang.cli.main import main; main()", "demo", "--web",
         "--port", "0", "--keep", str(kept)], stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, env=env, text=True, encoding="utf-8")
    lines, url, logins = [], None, {}
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and len(logins) < 2:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            found = re.search(r"(http://127\.0\.0\.1:\d+)/", line)
            url = url or (found.group(1) if found else None)
            login = re.search(r"登录名 (\S+)（(\S+)），密码 (\S+)", line)
            if login:
                logins[login.group(2)] = (login.group(1), login.group(3))
        assert url and set(logins) == {"领导", "经办人"}, "".join(lines)
        for name, password in logins.values():
            visitor = Browser(url)
            status, body, _r = visitor.login(name, password)
            assert status == 200 and 'id="figure-cases"' in body, body[:500]
            assert 'id="count-silent"' in body
        wrong = Browser(url).login(logins["领导"][0], "not-the-password")
        assert wrong[0] == 401
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        assert "网页服务已停止" in proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        proc.stdout.close()
