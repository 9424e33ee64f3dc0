"""The web view over real HTTP: a county node on disk served by waitress on a thread
(``BackgroundServer``), a browser played by urllib with a cookie jar. Cases are
registered through the case API, users through ``web.accounts``; names are synthetic.
"""

from __future__ import annotations

import http.cookiejar
import re
import sqlite3
import urllib.error
import urllib.parse
import urllib.request

import pytest
from argon2 import PasswordHasher

from sync_helpers import COUNTY as COUNTY_NODE, VILLAGES, new_node
from xinfang.core import clock, periods
from xinfang.core.node import DB_NAME, Node
from xinfang.core.reports import cell_text, run_report
from xinfang.plugins.cases import api
from xinfang.plugins.cases.idnumber import synthetic
from xinfang.sync.server import BackgroundServer
from xinfang.web import accounts

PASSWORD = "correct-horse-01"
VILLAGE_ONE, VILLAGE_TWO = VILLAGES[0][0], VILLAGES[1][0]
COUNTY = COUNTY_NODE[0]


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch):
    monkeypatch.setattr(accounts, "HASHER", PasswordHasher(time_cost=1, memory_cost=8,
                                                           parallelism=1))


def _register(node, serial: int, area: str = VILLAGE_ONE, request: str = "请求追讨拖欠工资",
              channel: str = "来访") -> str:
    return api.register_case(node, api.CaseInput(
        petitioners=[api.PetitionerInput(f"钱某{serial}", synthetic(serial),
                                         f"1390000{serial:04d}", "示例村二组")],
        channel=channel, category="劳动社保", kind="申诉求决", request=request,
        received=clock.today().isoformat(), area=area))


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A county with three cases and three users, served; yields (url, home, case ids)."""
    mp = pytest.MonkeyPatch()
    mp.setattr(accounts, "HASHER", PasswordHasher(time_cost=1, memory_cost=8,
                                                  parallelism=1))
    home = tmp_path_factory.mktemp("web") / "county"
    node = new_node(home, "county", *COUNTY_NODE, root=True)
    ids = [_register(node, 1), _register(node, 2, request="请求解决宅基地纠纷", channel="来信"),
           _register(node, 3, area=VILLAGE_TWO)]
    accounts.add_user(node, "web.handler01", "handler", PASSWORD, area=COUNTY)
    accounts.add_user(node, "web.clerk02", "clerk", PASSWORD, area=VILLAGE_TWO)
    accounts.add_user(node, "web.thrott03", "handler", PASSWORD, area=COUNTY)
    accounts.add_user(node, "web.admin04", "admin", PASSWORD, area=COUNTY)
    node.close()
    with BackgroundServer(home) as server:
        yield server.url, home, ids
    mp.undo()


@pytest.fixture(autouse=True)
def fresh_failures(site):
    """Every request comes from 127.0.0.1, whose failed logins count for the address
    (5 in 15 minutes); each test starts with none, as if from its own machine."""
    conn = sqlite3.connect(site[1] / DB_NAME)
    with conn:
        conn.execute("delete from web_login_failures")
    conn.close()


class Browser:
    """urllib with a cookie jar, following redirects, never raising on a status."""

    def __init__(self, url: str, language: str | None = None):
        self.url, self.jar, self.language = url, http.cookiejar.CookieJar(), language
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def request(self, path: str, form: dict | None = None, follow: bool = True):
        headers = {"Accept": "text/html,application/xhtml+xml"}
        if self.language:
            headers["Accept-Language"] = self.language
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        request = urllib.request.Request(self.url + path, data=data, headers=headers)
        opener = self.opener if follow else urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), NoRedirect)
        try:
            with opener.open(request, timeout=20) as response:
                return response.status, response.read().decode("utf-8"), response
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode("utf-8"), exc

    def get(self, path: str):
        return self.request(path)

    def post(self, path: str, form: dict, follow: bool = True):
        return self.request(path, form, follow)

    def login(self, name: str, password: str = PASSWORD):
        return self.post("/login", {"name": name, "password": password,
                                    "csrf": self.csrf("/login")})

    def csrf(self, path: str = "/") -> str:
        return re.search(r'name="csrf" value="([^"]+)"', self.get(path)[1]).group(1)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def events(home) -> int:
    conn = sqlite3.connect(home / DB_NAME)
    try:
        return conn.execute("select count(*) from events").fetchone()[0]
    finally:
        conn.close()


def message(body: str) -> str:
    found = re.search(r'id="message">([^<]*)<', body)
    return found.group(1) if found else ""


# -- login --------------------------------------------------------------------------


def test_a_page_without_a_session_sends_the_browser_to_login(site):
    url, _home, _ids = site
    status, body, response = Browser(url).request("/cases", follow=False)
    assert status == 303 and response.headers["Location"] == "/login?next=/cases"
    status, body, _r = Browser(url).get("/")
    assert status == 200 and 'name="password"' in body and "登录" in body


def test_login_sets_a_strict_http_only_cookie_and_a_bad_password_gets_the_one_message(site):
    url, _home, _ids = site
    browser = Browser(url)
    status, body, _r = browser.login("web.handler01", "wrong-password-9")
    assert status == 401 and message(body) == "用户名或密码错误，或账户已停用"
    status, body, _r = browser.login("web.nobody09", "wrong-password-9")
    assert status == 401 and message(body) == "用户名或密码错误，或账户已停用"
    status, body, response = browser.post("/login", {"name": "web.handler01",
                                                    "password": PASSWORD,
                                                    "csrf": browser.csrf("/login")},
                                          follow=False)
    cookie = response.headers["Set-Cookie"]
    assert status == 303 and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert browser.login("web.handler01")[0] == 200


def test_the_sixth_attempt_is_throttled(site):
    url, _home, _ids = site
    browser = Browser(url)
    for _attempt in range(5):
        assert browser.login("web.thrott03", "wrong-password-9")[0] == 401
    status, body, _r = browser.login("web.thrott03", PASSWORD)
    assert status == 429 and "登录失败次数过多" in message(body)


def test_logout_ends_the_session(site):
    url, _home, _ids = site
    browser = Browser(url)
    browser.login("web.handler01")
    status, _body, _r = browser.post("/logout", {"csrf": browser.csrf()})
    assert status == 200
    assert Browser.request(browser, "/cases", follow=False)[0] == 303


# -- the dashboard --------------------------------------------------------------------


def test_the_dashboard_shows_the_monthly_report_total(site):
    url, home, _ids = site
    browser = Browser(url)
    browser.login("web.handler01")
    status, body, _r = browser.get("/")
    assert status == 200 and "<svg" in body
    node = Node.open(home)
    try:
        month = periods.current_month().code
        total = run_report(node, "stats.monthly", {"period": month, "area": COUNTY}).total
    finally:
        node.close()
    for name in ("cases", "batches", "person_visits", "timely_acceptance"):
        shown = re.search(rf'id="figure-{name}">([^<]*)<', body).group(1)
        assert shown == cell_text(total[name]), name
    assert int(re.search(r'id="figure-cases">(\d+)<', body).group(1)) >= 3


# -- cases ------------------------------------------------------------------------------


def test_the_case_list_filters_and_searches(site):
    url, _home, ids = site
    browser = Browser(url)
    browser.login("web.handler01")
    body = browser.get("/cases")[1]
    assert all(i in body for i in ids)
    body = browser.get("/cases?" + urllib.parse.urlencode({"q": "宅基地"}))[1]
    assert ids[1] in body and ids[0] not in body
    body = browser.get(f"/cases?area={VILLAGE_TWO}")[1]
    assert ids[2] in body and ids[0] not in body


def test_register_with_a_bad_id_number_shows_the_error_then_a_good_one_and_the_steps(site):
    url, home, _ids = site
    browser = Browser(url)
    browser.login("web.handler01")
    form = {"csrf": browser.csrf("/cases/new"), "p.name": "孙某五", "p.id_number": "123",
            "channel": "visit", "category": "labour", "kind": "appeal",
            "request": "请求支付工伤待遇", "area": VILLAGE_ONE}
    before = events(home)
    status, body, _r = browser.post("/cases/new", form)
    assert status == 400 and "身份证号" in message(body) and "请求支付工伤待遇" in body
    assert events(home) == before
    status, body, response = browser.post("/cases/new", {**form, "p.id_number": synthetic(41)})
    assert status == 200 and "已登记" in body
    case_id = response.url.rsplit("/", 1)[1]
    for step, values, state in (("accept", {"f.unit": "县人社局"}, "办理中"),
                                ("answer", {"f.outcome": "support", "f.text": "已支付"},
                                 "已答复"),
                                ("close", {}, "已办结")):
        status, body, _r = browser.post(f"/cases/{case_id}/step",
                                        {"csrf": browser.csrf(f"/cases/{case_id}"),
                                         "step": step, **values})
        assert status == 200, message(body)
        assert re.search(r'id="status">([^<]*)<', body).group(1) == state


def test_a_step_the_case_cannot_take_is_a_400_page_with_the_message(site):
    url, _home, ids = site
    browser = Browser(url)
    browser.login("web.handler01")
    status, body, _r = browser.post(f"/cases/{ids[0]}/step",
                                    {"csrf": browser.csrf(f"/cases/{ids[0]}"), "step": "close"})
    assert status == 400 and "已登记" in message(body)


def test_a_post_without_csrf_is_403_and_changes_nothing(site):
    url, home, ids = site
    browser = Browser(url)
    browser.login("web.handler01")
    before = events(home)
    status, body, _r = browser.post(f"/cases/{ids[0]}/step", {"step": "accept"})
    assert status == 403 and "安全令牌" in message(body)
    status, _b, _r = browser.post(f"/cases/{ids[0]}/step", {"step": "accept", "csrf": "x" * 43})
    assert status == 403
    assert browser.post("/cases/new", {"p.name": "周某", "request": "x"})[0] == 403
    assert events(home) == before


def test_a_clerk_of_another_area_gets_403(site):
    url, _home, ids = site
    browser = Browser(url)
    browser.login("web.clerk02")
    status, body, _r = browser.get(f"/cases/{ids[0]}")
    assert status == 403 and "信息员" in message(body)
    assert browser.get(f"/cases/{ids[2]}")[0] == 200
    assert browser.get(f"/cases?area={VILLAGE_ONE}")[0] == 403
    body = browser.get("/cases")[1]
    assert ids[2] in body and ids[0] not in body
    status, _b, _r = browser.post(f"/cases/{ids[2]}/step",
                                  {"csrf": browser.csrf(f"/cases/{ids[2]}"), "step": "accept"})
    assert status == 403  # a clerk takes no steps


def test_showing_the_petitioners_is_written_to_the_access_log_under_the_user(site):
    url, home, ids = site
    browser = Browser(url)
    browser.login("web.handler01")
    body = browser.get(f"/cases/{ids[1]}")[1]
    assert "钱某2" not in body and 'id="reveal"' in body
    conn = sqlite3.connect(home / DB_NAME)
    try:
        def reads():
            return conn.execute("select count(*) from access_log where who = ? and "
                                "entity_id = ?", ["web.handler01", ids[1]]).fetchone()[0]
        before = reads()
        body = browser.get(f"/cases/{ids[1]}?reveal=1")[1]
        assert "钱某2" in body and synthetic(2) in body
        assert reads() == before + 1
    finally:
        conn.close()


# -- errors and languages ---------------------------------------------------------------


def test_an_unknown_path_is_a_404_page_and_sync_clients_still_get_json(site):
    url, _home, _ids = site
    status, body, response = Browser(url).get("/cases/431202-2026-999999/nothing")
    assert status == 404 and response.headers["Content-Type"].startswith("text/html")
    assert "找不到页面" in body
    request = urllib.request.Request(url + "/nothing")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 404
    assert refused.value.headers["Content-Type"].startswith("application/json")


def test_a_xinfang_error_is_a_400_page_never_500(site):
    url, _home, _ids = site
    browser = Browser(url)
    browser.login("web.handler01")
    status, body, response = browser.get("/cases?" + urllib.parse.urlencode({"status": "x"}))
    assert status == 400 and response.headers["Content-Type"].startswith("text/html")
    assert "未知" in message(body) or "x" in message(body)
    status, body, _r = browser.get("/cases/431202-2026-999999")
    assert status == 404 and "431202-2026-999999" in message(body)
    status, body, _r = browser.get("/?period=2026-13")
    assert status == 400 and message(body)


@pytest.mark.parametrize("path", ["/", "/cases", "/cases/new", "CASE", "/login"])
def test_every_page_renders_in_chinese_and_in_english(site, path):
    url, _home, ids = site
    path = f"/cases/{ids[0]}" if path == "CASE" else path
    chinese, english = Browser(url), Browser(url, language="en-GB,en;q=0.8")
    for browser in (chinese, english):
        if path != "/login":
            browser.login("web.handler01")
    zh, en = chinese.get(path)[1], english.get(path)[1]
    assert 'lang="zh-CN"' in zh and 'lang="en"' in en
    words = {"/": ("工作台", "Dashboard"), "/cases": ("信访事项", "Case list"),
             "/cases/new": ("登记", "Register a case"), "/login": ("密码", "Password")}
    zh_word, en_word = words.get(path, ("信访人", "Petitioners"))
    assert zh_word in zh and en_word in en and en_word not in zh


def test_the_language_cookie_chosen_by_the_form_wins(site):
    url, _home, _ids = site
    browser = Browser(url)  # the browser asks for no language: the node's (zh_CN)
    status, body, _r = browser.post("/lang", {"lang": "en", "next": "/login"})
    assert status == 200 and 'lang="en"' in body and "Password" in body
    browser.post("/lang", {"lang": "zh_CN", "next": "https://elsewhere.example/"})
    assert 'lang="zh-CN"' in browser.get("/login")[1]


def test_the_stylesheet_is_served_and_nothing_is_fetched_from_elsewhere(site):
    url, _home, ids = site
    browser = Browser(url)
    status, body, response = browser.get("/static/web.css")
    assert status == 200 and response.headers["Content-Type"].startswith("text/css")
    browser.login("web.handler01")
    for path in ("/", "/cases", f"/cases/{ids[0]}"):
        page = browser.get(path)[1]
        assert not re.search(r'(src|href)="(https?:)?//', page)
