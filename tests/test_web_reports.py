"""The web view's 报表 pages over real HTTP: a county and a township under it, each on
disk and served by waitress on a thread, cases registered at the township and carried
up; the township submits its 月报表 from the browser, the sync client takes it up and a
领导 of the county approves it there. Figures are compared with what ``run_report`` and
``render`` give for the same parameters; names are synthetic.
"""

from __future__ import annotations

import csv
import io
import re
import urllib.error
import urllib.parse
import urllib.request
from html.parser import HTMLParser

import attrs
import openpyxl
import pytest
from argon2 import PasswordHasher

from sync_helpers import (COUNTY as COUNTY_NODE, TOWNSHIP as TOWNSHIP_NODE, VILLAGES, carry,
                          enrol, new_node)
from test_web import PASSWORD, Browser, cheap_hashes, events, message  # noqa: F401
from xinfang.core import clock, periods
from xinfang.core.i18n import _
from xinfang.core.node import Node
from xinfang.core.reports import Ratio, cell_text, render, run_report
from xinfang.plugins.cases import api
from xinfang.plugins.cases.idnumber import synthetic
from xinfang.plugins.stats import approval, submission
from xinfang.sync.http import Client
from xinfang.sync.server import BackgroundServer
from xinfang.web import accounts

COUNTY, TOWNSHIP = COUNTY_NODE[0], TOWNSHIP_NODE[0]
VILLAGE_ONE, VILLAGE_TWO = VILLAGES[0][0], VILLAGES[1][0]
LEADER, CLERK, ADMIN = "rep.leader01", "rep.clerk02", "rep.admin03"
HANDLER, TOWN_LEADER = "rep.handler04", "rep.tlead05"
MONTH = periods.current_month().code
CJK = re.compile(r"[\u4e00-\u9fff]")


@attrs.frozen
class Site:
    base: object
    county_url: str
    county_home: object
    township_url: str
    township_home: object


def _register(node, serial: int, area: str, channel: str = "来访") -> str:
    return api.register_case(node, api.CaseInput(
        petitioners=[api.PetitionerInput(f"孙某{serial}", synthetic(serial),
                                         f"1370000{serial:04d}", "示例村三组")],
        channel=channel, category="劳动社保", kind="申诉求决", request="请求追讨拖欠工资",
        received=clock.today().isoformat(), area=area))


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A county (root) and a township enrolled under it, cases of this month registered at
    the township and carried up, users at both; both served."""
    mp = pytest.MonkeyPatch()
    mp.setattr(accounts, "HASHER", PasswordHasher(time_cost=1, memory_cost=8,
                                                  parallelism=1))
    base = tmp_path_factory.mktemp("webreports")
    county = new_node(base / "county", "county", *COUNTY_NODE, root=True)
    township = new_node(base / "township", "township", *TOWNSHIP_NODE)
    enrol(township, county)
    for serial, area, channel in ((1, VILLAGE_ONE, "来访"), (2, VILLAGE_ONE, "来信"),
                                  (3, VILLAGE_TWO, "来访"), (4, TOWNSHIP, "来访")):
        _register(township, serial, area, channel)
    carry(township, county, base)
    carry(county, township, base)
    accounts.add_user(county, LEADER, "leader", PASSWORD, area=COUNTY)
    accounts.add_user(county, CLERK, "clerk", PASSWORD, area=VILLAGE_ONE)
    accounts.add_user(county, ADMIN, "admin", PASSWORD, area=COUNTY)
    accounts.add_user(township, HANDLER, "handler", PASSWORD, area=TOWNSHIP)
    accounts.add_user(township, TOWN_LEADER, "leader", PASSWORD, area=TOWNSHIP)
    homes = county.home, township.home
    county.close()
    township.close()
    with BackgroundServer(homes[0]) as up, BackgroundServer(homes[1]) as down:
        yield Site(base, up.url, homes[0], down.url, homes[1])
    mp.undo()


class Downloader(Browser):
    """A browser that also fetches bytes (a workbook is not text)."""

    def raw(self, path: str):
        request = urllib.request.Request(self.url + path, headers={"Accept": "text/html"})
        try:
            with self.opener.open(request, timeout=30) as response:
                return response.status, response.read(), response.headers
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read(), exc.headers


def logged_in(url: str, name: str, language: str | None = None) -> Downloader:
    browser = Downloader(url, language)
    status, _body, response = browser.post(
        "/login", {"name": name, "password": PASSWORD, "csrf": browser.csrf("/login")},
        follow=False)
    assert status == 303 and "HttpOnly" in response.headers["Set-Cookie"]
    return browser


class Tables(HTMLParser):
    """Every ``<table id=…>`` of a page: its rows of cell texts, header row included."""

    def __init__(self, html: str):
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._table = self._row = self._cell = None
        self.feed(html)

    def handle_starttag(self, tag, attrs_):
        if tag == "table":
            self._table = self.tables.setdefault(dict(attrs_).get("id", ""), [])
        elif tag == "tr" and self._table is not None:
            self._row = []
            self._table.append(self._row)
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._table = self._row = None


def computed(home, name: str, given: dict[str, str]):
    node = Node.open(home)
    try:
        return run_report(node, name, given), node.registry
    finally:
        node.close()


def expected_cells(result) -> list[list[str]]:
    rows = [*result.rows, *([result.total] if result.total else [])]
    return [[cell_text(row.get(c.name)) for c in result.columns] for row in rows]


def record_status(home, period: str, record_id: str):
    node = Node.open(home)
    try:
        return next((line for line in submission.status(node, period, check=False)
                     if line["id"] == record_id), None)
    finally:
        node.close()


def sync_up(site: Site) -> None:
    node = Node.open(site.township_home)
    try:
        Client(node, site.county_url).sync()
    finally:
        node.close()


def csrf_of(browser: Browser, path: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', browser.get(path)[1]).group(1)


# -- the list and the menu ----------------------------------------------------------------


def test_the_report_list_names_every_report_the_registry_has(site):
    browser = logged_in(site.county_url, LEADER)
    status, body, _r = browser.get("/reports")
    assert status == 200
    node = Node.open(site.county_home)
    try:
        names = list(node.registry.reports)
    finally:
        node.close()
    for name in names:
        assert f'href="/reports/{name}"' in body, name
    assert 'href="/reports"' in body and 'href="/submissions"' in body  # the menu


def test_a_user_who_sees_no_cases_gets_403_and_no_menu_entry(site):
    admin = logged_in(site.county_url, ADMIN)
    assert 'href="/reports"' not in admin.get("/reports")[1]  # the 403 page's menu
    for path in ("/reports", "/reports/stats.monthly?run=1",
                 "/reports/stats.monthly/download?format=csv", "/submissions"):
        assert admin.get(path)[0] == 403, path
    clerk = logged_in(site.county_url, CLERK)
    page = clerk.get("/reports")[1]
    assert 'href="/reports"' in page and 'href="/submissions"' not in page
    assert clerk.get("/submissions")[0] == 403


# -- a report's page -------------------------------------------------------------------


def test_the_form_starts_with_this_month_and_the_users_area(site):
    body = logged_in(site.county_url, CLERK).get("/reports/stats.monthly")[1]
    assert f'name="period" value="{MONTH}"' in body
    assert f'name="area" value="{VILLAGE_ONE}"' in body
    assert 'id="table-main"' not in body  # not run until the form is sent


def test_the_html_table_holds_run_reports_figures_for_the_same_params(site):
    browser = logged_in(site.county_url, LEADER)
    query = {"run": "1", "period": MONTH, "area": COUNTY}
    status, body, _r = browser.get("/reports/stats.monthly?" + urllib.parse.urlencode(query))
    assert status == 200, message(body)
    result, _registry = computed(site.county_home, "stats.monthly",
                                 {"period": MONTH, "area": COUNTY})
    tables = Tables(body).tables
    main = tables["table-main"]
    assert main[0] == [_(c.label) for c in result.columns]
    assert main[1:] == expected_cells(result)
    assert int(result.total["cases"]) >= 4
    trend = tables["table-trend"]
    assert trend[1:] == [[cell_text(r.get(c.name)) for c in result.trend.columns]
                         for r in result.trend.rows]
    for extra in result.tables:
        assert tables[f"table-{extra.name}"][1:] == [
            [cell_text(r.get(c.name)) for c in extra.columns] for r in extra.rows]


def test_the_notices_preamble_is_shown_before_its_tables(site):
    browser = logged_in(site.county_url, LEADER)
    status, body, _r = browser.get("/reports/supervision.notice?run=1")
    assert status == 200, message(body)
    result, _registry = computed(site.county_home, "supervision.notice", {"area": COUNTY})
    assert result.preamble
    shown = re.search(r'<div id="preamble">(.*?)</div>', body, re.S).group(1)
    for paragraph in result.preamble:
        assert f"<p>{paragraph}</p>" in shown
    assert body.index('id="preamble"') < body.index('id="table-main"')


def test_a_clerk_of_one_village_cannot_run_a_report_for_another_area(site):
    clerk = logged_in(site.county_url, CLERK)
    for path in (f"/reports/stats.monthly?run=1&area={VILLAGE_TWO}",
                 f"/reports/stats.monthly?run=1&area={COUNTY}",
                 f"/reports/stats.monthly/download?format=csv&area={VILLAGE_TWO}",
                 "/reports/zero.rates?run=1"):  # no area: the node's, not the clerk's
        status, body, _r = clerk.get(path)
        assert status == 403 and VILLAGE_ONE in message(body), path
    status, body, _r = clerk.get("/reports/stats.monthly?run=1")  # own area by default
    assert status == 200, message(body)
    result, _registry = computed(site.county_home, "stats.monthly",
                                 {"period": MONTH, "area": VILLAGE_ONE})
    assert Tables(body).tables["table-main"][1:] == expected_cells(result)


@pytest.mark.parametrize("query, wanted", [
    ({"period": "2026-13"}, "2026-13"),
    ({"area": "440000"}, "440000"),
    ({"as_of": "2026-02-30"}, "2026-02-30"),
])
def test_bad_params_are_a_400_page_with_the_apis_chinese_message(site, query, wanted):
    browser = logged_in(site.county_url, LEADER)
    before = events(site.county_home)
    path = "/reports/stats.monthly?" + urllib.parse.urlencode({"run": "1", **query})
    status, body, _r = browser.get(path)
    assert status == 400 and wanted in message(body) and CJK.search(message(body))
    assert 'id="report-form"' in body  # the form stays, to put it right
    status, body, _r = browser.get(path.replace("?", "/download?format=csv&"))
    assert status == 400 and wanted in message(body)
    assert events(site.county_home) == before


def test_an_unknown_report_or_format_is_a_404_page(site):
    browser = logged_in(site.county_url, LEADER)
    status, body, _r = browser.get("/reports/nothing.here")
    assert status == 404 and "nothing.here" in message(body) and CJK.search(message(body))
    status, body, _r = browser.get("/reports/stats.monthly/download?format=pdf")
    assert status == 404 and "pdf" in message(body)


# -- downloads -------------------------------------------------------------------------


def test_the_page_offers_every_format_the_registry_renders(site):
    body = logged_in(site.county_url, LEADER).get("/reports/stats.monthly?run=1")[1]
    node = Node.open(site.county_home)
    try:
        formats = list(node.registry.renderers)
    finally:
        node.close()
    assert "xlsx" in formats and "csv" in formats
    for name in formats:
        assert f'id="download-{name}"' in body


def test_the_xlsx_download_opens_and_holds_the_same_total(site):
    browser = logged_in(site.county_url, LEADER)
    query = urllib.parse.urlencode({"format": "xlsx", "period": MONTH, "area": COUNTY})
    status, data, headers = browser.raw("/reports/stats.monthly/download?" + query)
    assert status == 200
    assert headers["Content-Type"] == ("application/vnd.openxmlformats-officedocument."
                                       "spreadsheetml.sheet")
    disposition = headers["Content-Disposition"]
    assert disposition.startswith('attachment; filename="stats.monthly-431202-')
    assert ".xlsx\"; filename*=UTF-8''" in disposition
    result, _registry = computed(site.county_home, "stats.monthly",
                                 {"period": MONTH, "area": COUNTY})
    shown = urllib.parse.unquote(disposition.split("filename*=UTF-8''")[1])
    assert shown == f"{result.heading}.xlsx"
    sheet = openpyxl.load_workbook(io.BytesIO(data)).worksheets[0]
    labels = [_(c.label) for c in result.columns]
    rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    head = next(i for i, r in enumerate(rows) if r[:len(labels)] == labels)
    total = dict(zip((c.name for c in result.columns), rows[head + len(result.rows) + 1]))
    for column in result.columns:
        want = result.total.get(column.name)
        if isinstance(want, Ratio):
            assert total[column.name] == pytest.approx(want.value), column.name
        elif column.kind == "count":
            assert total[column.name] == want, column.name
    assert total["cases"] >= 4


def test_the_csv_download_parses_and_matches(site):
    browser = logged_in(site.county_url, LEADER)
    query = urllib.parse.urlencode({"format": "csv", "period": MONTH, "area": VILLAGE_ONE})
    status, data, headers = browser.raw("/reports/stats.monthly/download?" + query)
    assert status == 200 and headers["Content-Type"] == "text/csv; charset=utf-8"
    assert headers["Content-Disposition"].startswith('attachment; filename="stats.monthly-')
    result, registry = computed(site.county_home, "stats.monthly",
                                {"period": MONTH, "area": VILLAGE_ONE})
    assert data == render(registry, result, "csv")
    table = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    names = [c.name for c in result.columns]
    total = dict(zip(names, table[len(result.rows) + 1]))
    assert total["cases"] == str(result.total["cases"])
    assert [dict(zip(names, row))[names[0]] for row in table[1:len(result.rows) + 1]] == [
        cell_text(row.get(names[0])) for row in result.rows]


# -- 上报 and 审核 -----------------------------------------------------------------------


def test_submit_at_the_township_then_approve_by_a_leader_at_the_county(site):
    record = approval.record_id(TOWNSHIP, MONTH, "stats.monthly")
    handler = logged_in(site.township_url, HANDLER)
    page = f"/reports/stats.monthly?run=1&period={MONTH}"
    body = handler.get(page)[1]
    assert 'id="submit-form"' in body and record in body
    other = handler.get(f"{page}&area={VILLAGE_ONE}")[1]  # not what the office submits
    assert 'id="table-main"' in other and 'id="submit-form"' not in other
    before = events(site.township_home)
    status, body, _r = handler.post("/reports/stats.monthly/submit", {"period": MONTH})
    assert status == 403 and "安全令牌" in message(body)
    assert events(site.township_home) == before
    assert record_status(site.township_home, MONTH, record)["status"] == "draft"
    status, body, _r = handler.post("/reports/stats.monthly/submit",
                                    {"csrf": csrf_of(handler, page), "period": MONTH})
    assert status == 200, message(body)
    assert record_status(site.township_home, MONTH, record)["status"] == "submitted"
    assert 'id="submit-form"' not in body and 'id="done"' in body
    # sent again: the API refuses, nothing is written
    before = events(site.township_home)
    status, body, _r = handler.post("/reports/stats.monthly/submit",
                                    {"csrf": csrf_of(handler, page), "period": MONTH})
    assert status == 400 and record in message(body)
    # the township's own leader may not approve its own office's report
    own = logged_in(site.township_url, TOWN_LEADER)
    status, body, _r = own.post(f"/submissions/{record}/approve",
                                {"csrf": csrf_of(own, "/submissions")})
    assert status == 400 and message(body)
    assert events(site.township_home) == before

    sync_up(site)
    leader = logged_in(site.county_url, LEADER)
    body = leader.get(f"/submissions?period={MONTH}")[1]
    assert f'id="approve-{record}"' in body
    row = Tables(body).tables["submissions"]
    assert any(record in cells[0] and "已上报" in cells for cells in row)
    before = events(site.county_home)
    status, body, _r = leader.post(f"/submissions/{record}/approve", {})
    assert status == 403 and "安全令牌" in message(body)
    assert events(site.county_home) == before
    status, body, _r = leader.post(f"/submissions/{record}/approve",
                                   {"csrf": csrf_of(leader, "/submissions")})
    assert status == 200 and 'id="done"' in body, message(body)
    assert record_status(site.county_home, MONTH, record)["status"] == "approved"
    before = events(site.county_home)
    status, body, _r = leader.post(f"/submissions/{record}/approve",
                                   {"csrf": csrf_of(leader, "/submissions")})
    assert status == 400 and record in message(body)
    assert events(site.county_home) == before
    body = leader.get(f"/submissions?period={MONTH}&status=approved")[1]
    assert record in body and f'id="approve-{record}"' not in body


def test_send_back_needs_a_reason_and_shows_it(site):
    record = approval.record_id(TOWNSHIP, MONTH, "ledger.monthly")
    handler = logged_in(site.township_url, HANDLER)
    page = f"/reports/ledger.monthly?run=1&period={MONTH}"
    status, body, _r = handler.post("/reports/ledger.monthly/submit",
                                    {"csrf": csrf_of(handler, page), "period": MONTH})
    assert status == 200, message(body)
    sync_up(site)
    leader = logged_in(site.county_url, LEADER)
    before = events(site.county_home)
    status, body, _r = leader.post(f"/submissions/{record}/return",
                                   {"csrf": csrf_of(leader, "/submissions"), "reason": " "})
    assert status == 400 and CJK.search(message(body))
    assert events(site.county_home) == before
    status, body, _r = leader.post(f"/submissions/{record}/return",
                                   {"csrf": csrf_of(leader, "/submissions"),
                                    "reason": "请补充库区移民来访情况"})
    assert status == 200, message(body)
    line = record_status(site.county_home, MONTH, record)
    assert (line["status"], line["reason"]) == ("returned", "请补充库区移民来访情况")
    assert "请补充库区移民来访情况" in leader.get(f"/submissions?period={MONTH}")[1]


def test_who_may_submit_and_decide(site):
    clerk = logged_in(site.county_url, CLERK)
    before = events(site.county_home)
    status, _body, _r = clerk.post("/reports/stats.monthly/submit",
                                   {"csrf": csrf_of(clerk, "/reports"), "period": MONTH})
    assert status == 403
    handler = logged_in(site.township_url, HANDLER)
    status, _body, _r = handler.post("/submissions/431202101-2026-11-stats.monthly/approve",
                                     {"csrf": csrf_of(handler, "/reports")})
    assert status == 403
    leader = logged_in(site.county_url, LEADER)
    status, body, _r = leader.post("/submissions/431202109-2026-11-stats.monthly/approve",
                                   {"csrf": csrf_of(leader, "/submissions")})
    assert status == 404 and "431202109-2026-11-stats.monthly" in message(body)
    # the root has no office above it: the API's refusal, nothing written
    status, body, _r = leader.post("/reports/stats.monthly/submit",
                                   {"csrf": csrf_of(leader, "/reports"), "period": MONTH})
    assert status == 400 and CJK.search(message(body))
    assert events(site.county_home) == before


def test_a_bad_period_on_submit_is_a_400_page_and_writes_nothing(site):
    handler = logged_in(site.township_url, HANDLER)
    before = events(site.township_home)
    status, body, _r = handler.post("/reports/stats.monthly/submit",
                                    {"csrf": csrf_of(handler, "/reports"), "period": "2026-13"})
    assert status == 400 and "2026-13" in message(body) and CJK.search(message(body))
    assert events(site.township_home) == before


# -- languages -------------------------------------------------------------------------


@pytest.mark.parametrize("path, zh_word, en_word", [
    ("/reports", "报表", "Reports"),
    ("/reports/stats.monthly?run=1", "生成报表", "Run the report"),
    ("/submissions", "上报审核", "Report review"),
])
def test_the_report_pages_read_in_english_with_accept_language_en(site, path, zh_word,
                                                                   en_word):
    zh = logged_in(site.county_url, LEADER).get(path)
    en = logged_in(site.county_url, LEADER, language="en-GB,en;q=0.8").get(path)
    assert zh[0] == en[0] == 200
    assert 'lang="en"' in en[1] and en_word in en[1] and en_word not in zh[1]
    assert zh_word in zh[1]
