"""The sync status and administration pages over real HTTP: /sync, /conflicts,
/quarantine, /held, /access-log, /users, and the login form's token.

A county (the trust root) serves the pages; a township and a village under it
are real certified nodes. Before the county is served: a village record whose
plugin the township and the county lack (held), a case the township closed
while the county reassigned it (a conflict), and a township event sent with
the one before it missing (quarantined). Every page is compared with what
its API gives on the same database; names are synthetic.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
import urllib.parse

import pytest
from argon2 import PasswordHasher

from plugins import inspection
from sync_helpers import (COUNTY, TODAY, TOWNSHIP, VILLAGES, carry, enrol, exchange, feed,
                          new_node, register, send_pages, wire)
from test_web import PASSWORD, Browser, events, message
from xinfang.core import access, clock, held, quarantine, records, transports
from xinfang.core.i18n import Message, N_, _
from xinfang.core.node import DB_NAME, Node
from xinfang.plugins import settlements
from xinfang.plugins.cases import api
from xinfang.plugins.cases.idnumber import synthetic
from xinfang.sync import peers
from xinfang.sync.server import BackgroundServer
from xinfang.web import accounts, sessions

CHEAP = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
VILLAGE = VILLAGES[0][0]
(COUNTY_AREA, _county_name), (TOWNSHIP_AREA, TOWNSHIP_NAME) = COUNTY, TOWNSHIP
ADMIN, LEADER, HANDLER, CLERK = "st.admin01", "st.leader01", "st.handler01", "st.clerk01"


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch):
    monkeypatch.setattr(accounts, "HASHER", CHEAP)


def _contest(county: Node, township: Node, base) -> str:
    """The county reassigns a case that the township has just closed, both offline."""
    case_id = register(township, 1)
    carry(township, county, base)
    for step, values in (("accept", {}), ("answer", {"outcome": "explain"}), ("close", {})):
        api.take_step(township, case_id, step, {"date": TODAY.isoformat(), **values},
                      today=TODAY)
    api.take_step(county, case_id, "forward",
                  {"date": TODAY.isoformat(), "mode": "assign", "unit": "县人社局"}, today=TODAY)
    exchange(township, county, base)
    exchange(township, county, base)
    return case_id


def _gap(county: Node, township: Node, base) -> str:
    """A township event sent without the one before it: the county quarantines it."""
    register(township, 2)
    register(township, 3)
    last = feed(township)[-1]
    send_pages(township, county, [wire([last], certs_from=township)], base)
    return last.id


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The county served, with a held record, a conflict, a quarantined event, a case of
    its own and four users; yields (url, home, the county's case)."""
    mp = pytest.MonkeyPatch()
    mp.setattr(accounts, "HASHER", CHEAP)
    base = tmp_path_factory.mktemp("status")
    county = new_node(base / "county", "county", *COUNTY, root=True)
    township = new_node(base / "township", "township", *TOWNSHIP)
    village = new_node(base / "village", "village", VILLAGE, VILLAGES[0][1],
                       plugins=[inspection])
    enrol(township, county)
    enrol(village, township)
    records.create(village, "inspection", {"topic": "渠道护坡"})
    carry(village, township, base)
    carry(township, county, base)
    _contest(county, township, base)
    _gap(county, township, base)
    own = api.register_case(county, api.CaseInput(
        petitioners=[api.PetitionerInput("孙某甲", synthetic(71), "13900000071", "示例村三组")],
        channel="来访", category="劳动社保", kind="申诉求决", request="请求追讨拖欠工资",
        received=clock.today().isoformat(), area=VILLAGE))
    for name, role in ((ADMIN, "admin"), (LEADER, "leader"), (HANDLER, "handler"),
                       (CLERK, "clerk")):
        accounts.add_user(county, name, role, PASSWORD)
    home = county.home
    for node in (county, township, village):
        node.close()
    with BackgroundServer(home) as server:
        yield server.url, home, own
    mp.undo()


@pytest.fixture(autouse=True)
def fresh_failures(site):
    """Every request comes from 127.0.0.1; each test starts with no failed logins."""
    conn = sqlite3.connect(site[1] / DB_NAME)
    with conn:
        conn.execute("delete from web_login_failures")
    conn.close()


class Desk(Browser):
    """A browser that logs in as a person does: it opens the login form first and sends
    the form's token with the name and password."""

    def login(self, name: str, password: str = PASSWORD):
        form = re.search(r'name="csrf" value="([^"]*)"', self.get("/login")[1])
        return self.post("/login", {"name": name, "password": password,
                                    "csrf": form.group(1) if form else ""})


def desk(url: str, user: str, language: str | None = None) -> Desk:
    browser = Desk(url, language)
    status, body, _r = browser.login(user)
    assert status == 200, message(body)
    return browser


@contextlib.contextmanager
def opened(home):
    """The served node's database through a node of the test's own (WAL: both read)."""
    node = Node.open(home)
    try:
        yield node
    finally:
        node.close()


def cells(body: str, row_id: str) -> dict[str, str]:
    """The cells of the row ``id=row_id`` by their class, tags stripped."""
    row = re.search(rf'<tr id="{re.escape(row_id)}">(.*?)</tr>', body, re.S)
    assert row, f"no row {row_id}"
    return {name: re.sub(r"<[^>]+>", "", text).strip()
            for name, text in re.findall(r'<td class="([a-z_]+)">(.*?)</td>', row.group(1),
                                         re.S)}


def failures(home) -> int:
    conn = sqlite3.connect(home / DB_NAME)
    try:
        return conn.execute("select count(*) from web_login_failures").fetchone()[0]
    finally:
        conn.close()


def user_row(home, name: str) -> tuple:
    conn = sqlite3.connect(home / DB_NAME)
    try:
        return conn.execute("select role, area, disabled, password_hash from web_users "
                            "where name = ?", [name]).fetchone()
    finally:
        conn.close()


# -- /sync ------------------------------------------------------------------------------


def test_the_sync_page_shows_each_peer_as_sync_status_counts_it(site):
    url, home, _own = site
    body = desk(url, LEADER).get("/sync")[1]
    with opened(home) as node:
        expected = peers.status(node)
        label = _(transports.find(node.registry, expected[0].last_transport).label)
        counts = {"conflicts": len(settlements.list_conflicts(node)),
                  "quarantine": quarantine.count(node), "held": len(held.held(node))}
    assert [s.area for s in expected] == [TOWNSHIP_AREA]
    [township] = expected
    assert township.pending >= 1 and township.refused_from_peer >= 1  # the page has news
    shown = cells(body, f"peer-{TOWNSHIP_AREA}")
    assert shown["name"] == township.name and shown["fingerprint"] == township.fingerprint
    assert shown["last_sync"] == township.last_sync
    assert shown["transport"] == label
    for column, value in (("sent", township.sent), ("acknowledged", township.acknowledged),
                          ("pending", township.pending), ("received", township.received),
                          ("refused_by_peer", township.refused_by_peer),
                          ("refused_here", township.refused_from_peer)):
        assert shown[column] == str(value), column
    for name, value in counts.items():
        assert re.search(rf'id="count-{name}">(\d+)<', body).group(1) == str(value), name


def test_the_sync_menu_entry_is_for_roles_that_see_everything(site):
    url, _home, _own = site
    assert 'href="/sync"' in desk(url, LEADER).get("/")[1]
    assert 'href="/sync"' not in desk(url, HANDLER).get("/")[1]


# -- /conflicts -------------------------------------------------------------------------


def test_the_conflicts_page_lists_what_the_conflicts_api_gives(site):
    url, home, _own = site
    browser = desk(url, LEADER)
    with opened(home) as node:
        everything = settlements.list_conflicts(node, include_settled=True)
        still_open = settlements.list_conflicts(node)
    assert everything, "the fixture made a conflict"
    body, all_body = browser.get("/conflicts")[1], browser.get("/conflicts?all=1")[1]
    for conflict in everything:
        row = f'id="conflict-{conflict.event_id[:12]}"'
        assert (row in body) == (conflict in still_open)
        assert row in all_body and conflict.reason in all_body
        assert conflict.entity_id in all_body


def test_settling_from_the_page_settles_the_conflict_under_the_user(site):
    url, home, _own = site
    browser = desk(url, LEADER)
    with opened(home) as node:
        before = settlements.list_conflicts(node)
    assert before
    conflict = before[0]
    status, body, _r = browser.post("/conflicts/settle", {
        "csrf": browser.csrf("/conflicts"), "event": conflict.event_id,
        "note": "县局确认镇已办结，交办作废"})
    assert status == 200 and message(body) == _("Recorded how the conflict was settled")
    with opened(home) as node:
        after = settlements.list_conflicts(node)
        settled = {c.event_id: c for c in settlements.list_conflicts(node, True)}
        by = node.db.execute("select operator from settlements where event_id = ?",
                             [conflict.event_id]).fetchone()[0]
    assert after == [c for c in before if c.event_id != conflict.event_id]
    assert settled[conflict.event_id].note == "县局确认镇已办结，交办作废" and by == LEADER
    assert f'id="settle-{conflict.event_id[:12]}"' not in browser.get("/conflicts?all=1")[1]


@pytest.mark.parametrize("event, note, wanted", [
    ("EVENT", "  ", "写明冲突是如何处理的"),
    ("ffffffff", "已核实", "没有与“ffffffff”相符的冲突"),
])
def test_settling_with_bad_input_is_a_400_page_and_changes_nothing(site, event, note, wanted):
    url, home, _own = site
    browser = desk(url, LEADER)
    with opened(home) as node:
        listed = settlements.list_conflicts(node, include_settled=True)
    event = listed[0].event_id if event == "EVENT" else event
    before = events(home)
    status, body, _r = browser.post("/conflicts/settle", {
        "csrf": browser.csrf("/conflicts"), "event": event, "note": note})
    assert status == 400 and wanted in message(body)
    assert events(home) == before
    with opened(home) as node:
        assert settlements.list_conflicts(node, include_settled=True) == listed


# -- /quarantine and /held ----------------------------------------------------------------


def test_the_quarantine_page_shows_each_refused_event_with_its_reason(site):
    url, home, _own = site
    body = desk(url, LEADER).get("/quarantine")[1]
    with opened(home) as node:
        refused = quarantine.quarantined(node)
    assert [(q.type, q.author_name) for q in refused] == [("case.register", TOWNSHIP_NAME)]
    for item in refused:
        shown = cells(body, f"event-{item.event_id[:12]}")
        assert shown == {"author": item.author_name, "seq": str(item.seq),
                         "type": item.type, "reason": item.reason}


def test_the_held_page_lists_what_this_node_cannot_fold(site):
    url, home, _own = site
    body = desk(url, LEADER).get("/held")[1]
    with opened(home) as node:
        groups = held.held(node)
    assert [g.entity for g in groups] == ["inspection"]
    for group in groups:
        shown = cells(body, f"held-{group.entity}")
        assert shown["entities"] == str(group.entities) and shown["events"] == str(group.events)
        assert all(author in shown["authors"] for author in group.authors)
        assert shown["reason"] == group.reason


# -- roles --------------------------------------------------------------------------------


@pytest.mark.parametrize("user, method, path", [
    (HANDLER, "GET", "/sync"), (CLERK, "GET", "/conflicts"), (ADMIN, "GET", "/quarantine"),
    (HANDLER, "GET", "/held"), (HANDLER, "POST", "/conflicts/settle"),
    (ADMIN, "POST", "/conflicts/settle"), (LEADER, "GET", "/access-log"),
    (HANDLER, "GET", "/users"), (LEADER, "POST", "/users/add"),
    (LEADER, "POST", "/users/disable"),
])
def test_a_role_without_the_action_gets_403_and_nothing_changes(site, user, method, path):
    url, home, _own = site
    browser = desk(url, user)
    before, accounts_before = events(home), user_row(home, HANDLER)
    if method == "GET":
        status, body, _r = browser.get(path)
    else:
        status, body, _r = browser.post(path, {
            "csrf": browser.csrf("/"), "event": "0", "note": "已核实", "name": HANDLER,
            "role": "admin", "password": "another-pass-09", "repeat": "another-pass-09"})
    assert status == 403 and "无权" in message(body)
    assert events(home) == before and user_row(home, HANDLER) == accounts_before


# -- /access-log --------------------------------------------------------------------------


def test_a_petitioner_reveal_on_the_case_page_is_in_the_access_log_under_the_user(site):
    url, home, own = site
    leader, admin = desk(url, LEADER), desk(url, ADMIN)
    assert "孙某甲" in leader.get(f"/cases/{own}?reveal=1")[1]
    body = admin.get("/access-log?" + urllib.parse.urlencode({"case": own}))[1]
    with opened(home) as node:
        logged = access.entries(node, access.AccessFilter(case_id=own), newest_first=True)
    assert logged[0].who == LEADER and logged[0].what == "查阅信访人信息"
    rows = re.findall(r'<td class="who">([^<]*)</td>.*?<td class="object">(?:<a[^>]*>)?'
                      r'([^<]*)(?:</a>)?</td><td class="what">([^<]*)</td>', body, re.S)
    assert rows == [(e.who, e.entity_id, e.what) for e in logged]
    mine = admin.get("/access-log?" + urllib.parse.urlencode({"who": LEADER}))[1]
    assert own in mine and HANDLER not in re.sub(r'<header>.*?</header>', "", mine, flags=re.S)


def test_the_access_log_is_paged_a_hundred_newest_first(site):
    url, home, _own = site
    with opened(home) as node:
        node.operator = "st.bulk01"
        for i in range(130):
            node.log_access("case", f"{VILLAGE}-2026-{i:05d}",
                            Message(N_("read the petitioners")).stored())
        first = access.read_page(node, access.AccessFilter(who="st.bulk01"), 1)
        second = access.read_page(node, access.AccessFilter(who="st.bulk01"), 2)
    assert (first.total, first.pages, len(first.entries), len(second.entries)) == (
        130, 2, 100, 30)
    admin = desk(url, ADMIN)
    page_one = admin.get("/access-log?who=st.bulk01")[1]
    page_two = admin.get("/access-log?who=st.bulk01&page=2")[1]

    def objects(body):
        return re.findall(r'<td class="object"><a[^>]*>([^<]*)</a></td>', body)

    assert objects(page_one) == [e.entity_id for e in first.entries]
    assert objects(page_one)[0] == f"{VILLAGE}-2026-00129"  # newest first
    assert objects(page_two) == [e.entity_id for e in second.entries]
    assert 'id="older"' in page_one and 'id="newer"' in page_two
    for bad, wanted in (("0", "不是从 1 起的整数"), ("x", "不是从 1 起的整数"),
                        ("3", "最后一页是第 2 页")):
        status, body, _r = admin.get(f"/access-log?who=st.bulk01&page={bad}")
        assert status == 400 and wanted in message(body), bad


# -- /users -------------------------------------------------------------------------------


def test_the_users_page_lists_the_accounts_the_api_lists(site):
    url, home, _own = site
    body = desk(url, ADMIN).get("/users")[1]
    with opened(home) as node:
        listed = accounts.list_users(node)
    for user in listed:
        shown = cells(body, f"user-{user.name}")
        assert (shown["name"], shown["role"], shown["area"]) == (user.name, user.role.label,
                                                                 user.area)
        assert shown["state"] == (_("disabled") if user.disabled else _("enabled"))


def test_adding_a_user_from_the_page_is_the_apis_add_and_is_logged_under_the_admin(site):
    url, home, _own = site
    admin = desk(url, ADMIN)
    status, body, _r = admin.post("/users/add", {
        "csrf": admin.csrf("/users"), "name": "st.added01", "role": "handler",
        "area": VILLAGE, "password": "added-pass-01", "repeat": "added-pass-01"})
    with opened(home) as node:
        added = accounts.get_user(node, "st.added01")
        logged = access.entries(node, access.AccessFilter(who=ADMIN))
    assert status == 200 and message(body) == accounts.describe(added.to_json(),
                                                                accounts.ADDED_LINE)
    assert (added.role.name, added.area, added.disabled) == ("handler", VILLAGE, False)
    assert (logged[-1].entity, logged[-1].entity_id) == (access.ACCOUNT, "st.added01")
    assert "经办人" in logged[-1].what and VILLAGE in logged[-1].what
    assert Desk(url).login("st.added01", "added-pass-01")[0] == 200


@pytest.mark.parametrize("form, wanted", [
    ({"name": "st.bad01", "role": "clerk", "password": "short", "repeat": "short"},
     "密码至少 8 个字符"),
    ({"name": "st.bad01", "role": "clerk", "password": "bad-pass-001", "repeat": "other-pass-01"},
     "两次输入的密码不一致"),
    ({"name": "st.bad01", "role": "boss", "password": "bad-pass-001", "repeat": "bad-pass-001"},
     "没有角色“boss”"),
    ({"name": HANDLER, "role": "clerk", "password": "bad-pass-001", "repeat": "bad-pass-001"},
     f"本节点已有用户“{HANDLER}”"),
    ({"name": "st.bad01", "role": "clerk", "area": "431299", "password": "bad-pass-001",
      "repeat": "bad-pass-001"}, "不在本节点辖区"),
    ({"name": "带 空格", "role": "clerk", "password": "bad-pass-001", "repeat": "bad-pass-001"},
     "用户名"),
])
def test_adding_a_user_with_bad_input_is_a_400_page_and_adds_nobody(site, form, wanted):
    url, home, _own = site
    admin = desk(url, ADMIN)
    with opened(home) as node:
        before = accounts.list_users(node)
        logged = access.count(node)
    status, body, _r = admin.post("/users/add", {"csrf": admin.csrf("/users"), **form})
    assert status == 400 and wanted in message(body)
    assert form["password"] not in body
    with opened(home) as node:
        assert accounts.list_users(node) == before and access.count(node) == logged


def test_disabling_enabling_and_a_new_password_from_the_page(site):
    url, home, _own = site
    admin, handler = desk(url, ADMIN), desk(url, "st.handler01")
    status, body, _r = admin.post("/users/disable", {"csrf": admin.csrf("/users"),
                                                     "name": HANDLER})
    with opened(home) as node:
        assert message(body) == accounts.describe(accounts.get_user(node, HANDLER).to_json())
    assert status == 200 and "已停用" in message(body) and user_row(home, HANDLER)[2] == 1
    assert handler.request("/cases", follow=False)[0] == 303  # the session ended
    assert Desk(url).login(HANDLER)[0] == 401
    status, body, _r = admin.post("/users/enable", {"csrf": admin.csrf("/users"),
                                                    "name": HANDLER})
    assert status == 200 and user_row(home, HANDLER)[2] == 0
    old_hash = user_row(home, HANDLER)[3]
    status, body, _r = admin.post("/users/passwd", {
        "csrf": admin.csrf("/users"), "name": HANDLER, "password": "handler-new-02",
        "repeat": "handler-new-02"})
    assert status == 200 and message(body) == _(accounts.PASSWORD_LINE).format(name=HANDLER)
    assert user_row(home, HANDLER)[3] != old_hash
    assert Desk(url).login(HANDLER, "handler-new-02")[0] == 200
    with opened(home) as node:
        changes = [e.what for e in access.entries(node, access.AccessFilter(who=ADMIN))
                   if e.entity_id == HANDLER]
        accounts.set_password(node, HANDLER, PASSWORD)  # as it was, for the other tests
    assert changes[-3:] == ["停用了该用户", "启用了该用户", "为该用户设置了新密码"]


def test_a_new_password_typed_differently_twice_changes_nothing(site):
    url, home, _own = site
    admin = desk(url, ADMIN)
    old_hash = user_row(home, HANDLER)[3]
    status, body, _r = admin.post("/users/passwd", {
        "csrf": admin.csrf("/users"), "name": HANDLER, "password": "handler-new-03",
        "repeat": "handler-new-04"})
    assert status == 400 and "两次输入的密码不一致" in message(body)
    assert user_row(home, HANDLER)[3] == old_hash


def test_the_last_enabled_admin_cannot_be_disabled_from_the_page(site):
    url, home, _own = site
    admin = desk(url, ADMIN)
    status, body, _r = admin.post("/users/disable", {"csrf": admin.csrf("/users"),
                                                     "name": ADMIN})
    assert status == 400 and message(body) == (
        f"“{ADMIN}”是本节点最后一个启用的管理员，不能停用：请先添加或启用另一个管理员")
    assert user_row(home, ADMIN)[2] == 0
    assert admin.get("/users")[0] == 200  # still logged in


# -- the login form's token -----------------------------------------------------------------


def test_a_login_without_the_forms_token_is_refused_before_the_password_is_checked(site):
    url, home, _own = site
    stranger = Browser(url)  # posts to /login as another site's form would
    for password in ("wrong-password-9",) * 6 + (PASSWORD,):
        status, body, response = stranger.post("/login", {"name": LEADER,
                                                          "password": password}, follow=False)
        assert status == 403 and "登录表单已过期" in message(body)
        assert "xinfang_session" not in (response.headers.get("Set-Cookie") or "")
    assert failures(home) == 0  # no password was checked, nothing counted
    mine, theirs = Desk(url), Desk(url)
    mine.get("/login")  # a cookie of its own, and the token of another browser's form
    status, _b, _r = mine.post("/login", {"name": LEADER, "password": PASSWORD,
                                          "csrf": theirs.csrf("/login")})
    assert status == 403 and failures(home) == 0
    assert Desk(url).login(LEADER)[0] == 200  # the form's own token opens the session


def test_the_login_forms_cookie_is_short_lived_and_only_for_login(site):
    url, _home, _own = site
    status, body, response = Browser(url).get("/login")
    cookie = response.headers["Set-Cookie"]
    token = re.search(r'name="csrf" value="([^"]+)"', body).group(1)
    assert cookie.startswith(f"{sessions.LOGIN_COOKIE}={token};")
    assert "Path=/login" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert f"Max-Age={int(sessions.LOGIN_TTL.total_seconds())}" in cookie


# -- languages ------------------------------------------------------------------------------


@pytest.mark.parametrize("user, path, zh, en", [
    (LEADER, "/sync", "同步", "Sync"), (LEADER, "/conflicts", "冲突", "Conflicts"),
    (LEADER, "/quarantine", "隔离", "Quarantined events"), (LEADER, "/held", "暂存", "Held"),
    (ADMIN, "/access-log", "查阅记录", "Access log"), (ADMIN, "/users", "用户", "Users"),
])
def test_each_page_renders_in_chinese_and_in_english(site, user, path, zh, en):
    url, _home, _own = site
    chinese, english = desk(url, user), desk(url, user, language="en-GB,en;q=0.8")
    zh_body, en_body = chinese.get(path)[1], english.get(path)[1]
    assert 'lang="zh-CN"' in zh_body and 'lang="en"' in en_body
    assert zh in zh_body and en in en_body
