"""The generic record pages and the ledger's page over real HTTP.

A county (the trust root, with the default plugins and the test plugin
``inspection``) and a township enrolled under it, each served by waitress on a
thread; browsers are ``test_web.Browser``. Records are made through the forms
and checked against ``core.records`` and the ledger API; a 督办单 goes down to
the township by bundle, is answered there and closed at the county. Names are
synthetic.
"""

from __future__ import annotations

import datetime as dt
import re
import urllib.parse

import pytest
from argon2 import PasswordHasher

from plugins import inspection
from sync_helpers import COUNTY as COUNTY_NODE, TOWNSHIP as TOWNSHIP_NODE, VILLAGES, carry
from sync_helpers import enrol, new_node
from test_web import PASSWORD, Browser, events, message
from xinfang.core import clock, periods, records
from xinfang.core.node import Node
from xinfang.core.plugins import get_plugin_manager
from xinfang.plugins.cases import api as cases
from xinfang.plugins.cases.idnumber import synthetic
from xinfang.plugins.ledger import api as ledger
from xinfang.sync.server import BackgroundServer
from xinfang.web import accounts

COUNTY, TOWNSHIP = COUNTY_NODE[0], TOWNSHIP_NODE[0]
VILLAGE_ONE, VILLAGE_TWO = VILLAGES[0][0], VILLAGES[1][0]
TODAY = clock.today()
USERS = {"leader": ("rec.leader01", COUNTY), "handler": ("rec.handler02", COUNTY),
         "clerk": ("rec.clerk03", VILLAGE_TWO), "far": ("rec.handler04", VILLAGE_TWO)}
TOWN_HANDLER = "rec.town05"


def county_plugins():
    return get_plugin_manager([inspection])


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch):
    monkeypatch.setattr(accounts, "HASHER", PasswordHasher(time_cost=1, memory_cost=8,
                                                           parallelism=1))


class Site:
    """The two served nodes: urls, homes, a case held at the county, and ways to open
    a node (with the plugins it is served with) and to carry bundles between them."""

    def __init__(self, base, county_url, township_url, case_id):
        self.base, self.url, self.township_url, self.case = (base, county_url, township_url,
                                                             case_id)
        self.home, self.township_home = base / "county", base / "township"

    def county(self) -> Node:
        return Node.open(self.home, pm=county_plugins())

    def township(self) -> Node:
        return Node.open(self.township_home, pm=get_plugin_manager())

    def events(self) -> int:
        return events(self.home)

    def carry_down(self) -> None:
        with self.county() as county, self.township() as township:
            carry(county, township, self.base)

    def carry_up(self) -> None:
        with self.township() as township, self.county() as county:
            carry(township, county, self.base)

    def browser(self, who: str, language: str | None = None, url: str | None = None):
        browser = Browser(url or self.url, language)
        name = TOWN_HANDLER if who == "town" else USERS[who][0]
        assert browser.login(name)[0] == 200
        return browser


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setattr(accounts, "HASHER", PasswordHasher(time_cost=1, memory_cost=8,
                                                  parallelism=1))
    base = tmp_path_factory.mktemp("records")
    county = new_node(base / "county", "county", *COUNTY_NODE, root=True, plugins=[inspection])
    township = new_node(base / "township", "township", *TOWNSHIP_NODE)
    enrol(township, county)
    case_id = cases.register_case(county, cases.CaseInput(
        petitioners=[cases.PetitionerInput("孙某一", synthetic(61), "13900000061", "示例村三组")],
        channel="来访", category="劳动社保", kind="申诉求决", request="请求支付拖欠工资",
        received=TODAY.isoformat(), area=VILLAGE_ONE))
    for role, (name, area) in USERS.items():
        accounts.add_user(county, name, "handler" if role == "far" else role, PASSWORD,
                          area=area)
    accounts.add_user(township, TOWN_HANDLER, "handler", PASSWORD, area=TOWNSHIP)
    county.close()
    township.close()
    with BackgroundServer(base / "county", pm=county_plugins()) as served, \
            BackgroundServer(base / "township") as town:
        yield Site(base, served.url, town.url, case_id)
    mp.undo()


def csrf(browser: Browser, path: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', browser.get(path)[1]).group(1)


def status_of(body: str) -> str:
    return re.search(r'id="status">([^<]*)<', body).group(1)


def record_id(response) -> str:
    return urllib.parse.urlparse(response.url).path.rsplit("/", 1)[1]


DISPUTE = {"f.kind": "land_compensation", "f.summary": "某甲与村委会征地补偿款分配纠纷",
           "f.risk": "high", "f.people": "3", "area": VILLAGE_ONE}


def add_dispute(site: Site, browser: Browser, **changes) -> tuple[int, str, object]:
    form = {"csrf": csrf(browser, "/records/dispute/new"), **DISPUTE, **changes}
    return browser.post("/records/dispute/new", form)


# -- the index and a dispute through the forms ------------------------------------------


def test_the_index_lists_each_record_type_of_the_node_but_cases(site):
    body = site.browser("handler").get("/records")[1]
    with site.county() as node:
        kinds = [t for t in node.registry.entity_types.values()
                 if t.lifecycle_entity and t.name != "case"]
    assert {"dispute", "project", "target", "order", "inspection"} <= {t.name for t in kinds}
    for kind in kinds:
        assert f'href="/records/{kind.name}"' in body and kind.label in body
    assert 'href="/records/case"' not in body and 'href="/records"' in body  # the menu


def test_a_dispute_made_through_the_form_is_listed_and_takes_a_step(site):
    browser = site.browser("handler")
    status, body, response = add_dispute(site, browser)
    assert status == 200, message(body)
    dispute = record_id(response)
    assert status_of(body) == "已排查" and "征地补偿" in body  # the kind's label
    with site.county() as node:
        listed = records.list_records(node, "dispute", records.RecordFilter(area=VILLAGE_ONE))
        assert dispute in [r.id for r in listed]
        assert records.get(node, "dispute", dispute).values["people"] == 3
    body = browser.get("/records/dispute?" + urllib.parse.urlencode(
        {"status": "screened", "v.risk": "high", "area": VILLAGE_ONE}))[1]
    assert f'href="/records/dispute/{dispute}"' in body
    body = browser.get("/records/dispute?status=resolved")[1]
    assert f'href="/records/dispute/{dispute}"' not in body
    status, body, _r = browser.post(f"/records/dispute/{dispute}/step", {
        "csrf": csrf(browser, f"/records/dispute/{dispute}"), "step": "start",
        "f.measures": "组织村民代表协商", "f.mediation": "people"})
    assert status == 200, message(body)
    assert status_of(body) == "化解中" and "组织村民代表协商" in body
    with site.county() as node:
        assert records.get(node, "dispute", dispute).status == "resolving"


@pytest.mark.parametrize("changes, word", [
    ({"f.summary": ""}, "基本情况"),          # a required field left empty
    ({"f.date": "2026-02-30"}, "YYYY-MM-DD"),  # not a date
    ({"f.kind": "weather"}, "矛盾类型"),       # not in the vocabulary
    ({"f.people": "0"}, "涉及人数"),           # below the minimum
    ({"area": COUNTY}, COUNTY),               # a dispute lies in a township or a village
])
def test_bad_input_on_the_form_is_a_400_with_the_message_and_nothing_stored(
        site, changes, word):
    browser = site.browser("handler")
    before = site.events()
    status, body, _r = add_dispute(site, browser, **changes)
    assert status == 400 and word in message(body)
    assert re.search(r"[\u4e00-\u9fff]", message(body))  # in Chinese
    assert 'id="create"' in body and DISPUTE["f.risk"] in body  # the form, as typed
    assert site.events() == before


def test_a_step_refused_by_its_guard_or_naming_no_held_case_is_a_400(site):
    browser = site.browser("handler")
    dispute = record_id(add_dispute(site, browser, **{"f.date": TODAY.isoformat()})[2])
    page = f"/records/dispute/{dispute}"
    before = site.events()
    earlier = (TODAY - dt.timedelta(days=1)).isoformat()
    status, body, _r = browser.post(page + "/step", {
        "csrf": csrf(browser, page), "step": "progress", "f.date": earlier,
        "f.progress": "已走访"})
    assert status == 400 and earlier in message(body) and 'id="step-progress"' in body
    status, body, _r = browser.post(page + "/step", {
        "csrf": csrf(browser, page), "step": "to_petition", "f.case": "431202-2026-099999"})
    assert status == 400 and "431202-2026-099999" in message(body)
    status, body, _r = browser.post(page + "/step", {
        "csrf": csrf(browser, page), "step": "finish"})
    assert status == 400 and "已排查" in message(body)
    assert site.events() == before
    status, body, _r = browser.post(page + "/step", {
        "csrf": csrf(browser, page), "step": "to_petition", "f.case": site.case})
    assert status == 200 and status_of(body) == "已转信访"
    assert f'href="/cases/{site.case}"' in body


def test_unknown_types_and_records_are_404_and_cases_have_their_own_pages(site):
    browser = site.browser("handler")
    status, body, _r = browser.get("/records/weather")
    assert status == 404 and "weather" in message(body)
    status, body, _r = browser.get("/records/dispute/431202-2026-999999")
    assert status == 404 and "431202-2026-999999" in message(body)
    assert browser.get("/records/weather/new")[0] == 404
    status, _b, response = browser.request("/records/case", follow=False)
    assert status == 303 and response.headers["Location"] == "/cases"
    status, _b, response = browser.request(f"/records/case/{site.case}", follow=False)
    assert response.headers["Location"] == f"/cases/{site.case}"


# -- roles and areas ----------------------------------------------------------------------


def test_a_clerk_of_another_village_gets_403_outside_their_area(site):
    dispute = record_id(add_dispute(site, site.browser("handler"))[2])
    clerk = site.browser("clerk")
    status, body, _r = clerk.get(f"/records/dispute/{dispute}")
    assert status == 403 and VILLAGE_ONE in message(body)
    assert clerk.get(f"/records/dispute?area={VILLAGE_ONE}")[0] == 403
    body = clerk.get("/records/dispute")[1]
    assert dispute not in body
    assert clerk.get("/records/dispute/new")[0] == 403  # a clerk registers cases only
    before = site.events()
    status, _b, _r = clerk.post(f"/records/dispute/{dispute}/step", {
        "csrf": csrf(clerk, "/records"), "step": "start"})
    assert status == 403 and site.events() == before


def test_a_handler_may_not_create_outside_their_area(site):
    far = site.browser("far")
    before = site.events()
    status, body, _r = add_dispute(site, far)  # in village one, the handler's is two
    assert status == 403 and VILLAGE_ONE in message(body)
    assert site.events() == before
    status, body, _r = add_dispute(site, far, area=VILLAGE_TWO)
    assert status == 200 and status_of(body) == "已排查"


# -- 督办单: issued by a leader, answered by the township, closed at the county ------------


def test_a_leader_issues_an_order_a_township_handler_answers_the_leader_closes_it(site):
    leader = site.browser("leader")
    assert "f.cases" in leader.get("/records/order/new")[1]
    due = (TODAY + dt.timedelta(days=10)).isoformat()
    form = {"csrf": csrf(leader, "/records/order/new"), "f.due": due,
            "f.required": "请于期限内报告化解情况", "f.kind": "",
            "f.cases": f"{site.case}\n{site.case}, "}  # as the CLI's --case: repeats once
    status, body, response = leader.post("/records/order/new", form)
    assert status == 200, message(body)
    order = record_id(response)
    assert status_of(body) == "已督办" and f'href="/cases/{site.case}"' in body
    with site.county() as node:
        shown = records.get(node, "order", order)
        assert shown.area == TOWNSHIP and shown.values["due"] == due

    handler = site.browser("handler")  # the county's handler is not the addressee
    before = site.events()
    status, body, _r = handler.post(f"/records/order/{order}/step", {
        "csrf": csrf(handler, f"/records/order/{order}"), "step": "respond",
        "f.result": "已约谈"})
    assert status == 400 and TOWNSHIP in message(body) and site.events() == before
    assert 'id="step-close"' not in handler.get(f"/records/order/{order}")[1]

    site.carry_down()
    town = site.browser("town", url=site.township_url)
    page = f"/records/order/{order}"
    status, body, _r = town.post(page + "/step", {
        "csrf": csrf(town, page), "step": "respond", "f.result": "已约谈信访人，正在化解",
        "f.done": "no"})
    assert status == 200 and status_of(body) == "已回复", message(body)
    site.carry_up()

    status, body, _r = leader.post(page + "/step", {
        "csrf": csrf(leader, page), "step": "close", "f.note": "同意销号"})
    assert status == 200 and status_of(body) == "已销号", message(body)
    with site.county() as node:
        assert records.get(node, "order", order).status == "closed"


def test_an_order_naming_no_held_case_or_no_case_is_a_400_and_nothing_stored(site):
    leader = site.browser("leader")
    due = (TODAY + dt.timedelta(days=5)).isoformat()
    before = site.events()
    for cases_given, word in (("431202101201-2026-099999", "431202101201-2026-099999"),
                              ("", "信访事项编号")):
        status, body, _r = leader.post("/records/order/new", {
            "csrf": csrf(leader, "/records/order/new"), "f.due": due, "f.required": "报告",
            "f.cases": cases_given})
        assert status == 400 and word in message(body)
    status, body, _r = leader.post("/records/order/new", {
        "csrf": csrf(leader, "/records/order/new"), "f.due": "2020-01-01",
        "f.required": "报告", "f.cases": site.case})
    assert status == 400 and "2020-01-01" in message(body)
    assert site.events() == before


def test_a_handler_may_not_issue_an_order(site):
    handler = site.browser("handler")
    assert handler.get("/records/order/new")[0] == 403
    before = site.events()
    status, body, _r = handler.post("/records/order/new", {
        "csrf": csrf(handler, "/records"), "f.due": TODAY.isoformat(), "f.required": "报告",
        "f.cases": site.case})
    assert status == 403 and "经办人" in message(body) and site.events() == before


# -- a third party's record type ----------------------------------------------------------


def test_a_third_party_type_gets_its_pages_from_its_declaration_alone(site):
    browser = site.browser("handler")
    status, body, response = browser.post("/records/inspection/new", {
        "csrf": csrf(browser, "/records/inspection/new"), "f.topic": "汛前堤坝检查",
        "area": VILLAGE_ONE})
    assert status == 200 and status_of(body) == "待检查", message(body)
    inspection_id = record_id(response)
    assert "汛前堤坝检查" in browser.get("/records/inspection")[1]
    status, body, _r = browser.post(f"/records/inspection/{inspection_id}/step", {
        "csrf": csrf(browser, f"/records/inspection/{inspection_id}"), "step": "inspect"})
    assert status == 200 and status_of(body) == "已检查"
    assert 'id="step-close"' in body and 'id="step-inspect"' not in body
    with site.county() as node:
        shown = records.get(node, "inspection", inspection_id)
        assert shown.status == "inspected" and [h["step"] for h in shown.history] == [
            "plan", "inspect"]


# -- the ledger's page ------------------------------------------------------------------------


def test_the_ledger_page_shows_the_month_ledger_and_carries_open_disputes(site):
    handler = site.browser("handler")
    month = periods.current_month().code
    last_month = (TODAY.replace(day=1) - dt.timedelta(days=1))
    old = record_id(add_dispute(site, handler, **{"f.date": last_month.isoformat(),
                                                   "f.summary": "某乙宅基地边界纠纷"})[2])
    body = handler.get(f"/ledger?month={month}")[1]
    with site.county() as node:
        rows = ledger.month_ledger(node, month, COUNTY)
    assert rows and all(f'id="row-{r["id"]}"' in body for r in rows)
    assert f'id="row-{old}"' not in body
    assert 'href="/reports/ledger.monthly"' in body and 'href="/records/dispute"' in body
    assert 'href="/ledger"' in body  # the menu entry, on a node with the ledger

    before = site.events()
    status, body, _r = handler.post("/ledger/carry", {
        "csrf": csrf(handler, "/ledger"), "month": "2026-13", "area": COUNTY})
    assert status == 400 and "2026-13" in message(body) and site.events() == before
    status, body, _r = handler.post("/ledger/carry", {
        "csrf": csrf(handler, "/ledger"), "month": month, "area": COUNTY})
    assert status == 200 and f'id="row-{old}"' in body
    with site.county() as node:
        carried = [r["id"] for r in ledger.month_ledger(node, month, COUNTY)]
        assert old in carried
        assert records.get(node, "dispute", old).history[-1]["step"] == "rescreen"
    assert re.search(r'id="done">[^<]*\d', body)
    clerk = site.browser("clerk")
    assert clerk.post("/ledger/carry", {"csrf": csrf(clerk, "/ledger"), "month": month})[0] \
        == 403


def test_the_ledger_page_of_an_area_outside_the_users_is_403(site):
    clerk = site.browser("clerk")
    assert clerk.get(f"/ledger?area={VILLAGE_ONE}")[0] == 403
    assert clerk.get("/ledger")[0] == 200


# -- languages --------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/records", "/records/dispute", "/records/dispute/new",
                                  "RECORD", "/ledger"])
def test_the_pages_are_in_chinese_and_in_english(site, path):
    if path == "RECORD":
        path = "/records/dispute/" + record_id(add_dispute(site, site.browser("handler"))[2])
    chinese, english = site.browser("handler"), site.browser("handler", "en-GB,en;q=0.8")
    zh, en = chinese.get(path)[1], english.get(path)[1]
    assert 'lang="zh-CN"' in zh and 'lang="en"' in en
    words = {"/records": ("业务记录", "Record type"), "/records/dispute": ("筛选", "Filter"),
             "/records/dispute/new": ("区划", "Area"), "/ledger": ("矛盾纠纷台账",
                                                              "Dispute ledger")}
    zh_word, en_word = words.get(path, ("办理经过", "History"))
    assert zh_word in zh and en_word in en and en_word not in zh
