"""The web view's local accounts: hashing, roles, login, rate limit, sessions, CSRF, CLI.

Every node is real (a directory, its database, its keys); time is passed in,
never slept. Names are synthetic.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3

import pytest
from argon2 import PasswordHasher
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sync_helpers import build_tree, carry, register
from xinfang.core import access
from xinfang.core.errors import InvalidInput, NotFound
from xinfang.web import accounts, sessions, throttle, users
from xinfang.web.accounts import LoginFailed, LoginThrottled
from xinfang.web.sessions import ABSOLUTE, IDLE, CookiePolicy, check_csrf

T0 = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.timezone.utc)
PASSWORD = "correct-horse-01"
ADDRESS = "192.0.2.10"
CHEAP = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch):
    """Argon2 at its real cost takes tens of milliseconds a hash; tests use a cheap one
    (the real parameters are checked once, in ``test_the_default_hash_is_argon2id``)."""
    monkeypatch.setattr(accounts, "HASHER", CHEAP)


@pytest.fixture
def handler(node):
    return accounts.add_user(node, "user.handler01", "handler", PASSWORD, now=T0)


def stored_hash(node, name: str) -> str:
    return node.db.execute("select password_hash from web_users where name = ?",
                           [name]).fetchone()[0]


def login(node, name="user.handler01", password=PASSWORD, address=ADDRESS, now=T0):
    return accounts.authenticate(node, name, password, address, now)


# -- hashing ------------------------------------------------------------------


def test_the_stored_hash_is_argon2_never_the_password(node, handler):
    stored = stored_hash(node, "user.handler01")
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored
    dump = "\n".join(node.db.conn.iterdump())
    assert PASSWORD not in dump


def test_the_default_hash_is_argon2id_with_memory_hard_parameters(node, monkeypatch):
    monkeypatch.setattr(accounts, "HASHER", PasswordHasher())
    accounts.add_user(node, "user.real01", "clerk", PASSWORD, now=T0)
    stored = stored_hash(node, "user.real01")
    assert stored.startswith("$argon2id$") and "m=65536" in stored
    assert login(node, "user.real01").user.name == "user.real01"


def test_a_changed_password_fails_the_old_one(node, handler):
    accounts.set_password(node, "user.handler01", "another-pass-02")
    with pytest.raises(LoginFailed):
        login(node)
    assert login(node, password="another-pass-02").operator == "user.handler01"


def test_a_new_password_ends_the_users_sessions(node, handler):
    opened = login(node)
    accounts.set_password(node, "user.handler01", "another-pass-02")
    assert sessions.session(node, opened.token, T0) is None


def test_a_hash_made_under_old_parameters_is_replaced_at_login(node, handler, monkeypatch):
    old = stored_hash(node, "user.handler01")
    monkeypatch.setattr(accounts, "HASHER", PasswordHasher(time_cost=2, memory_cost=16,
                                                           parallelism=1))
    login(node)
    new = stored_hash(node, "user.handler01")
    assert new != old and "m=16,t=2" in new
    assert login(node, now=T0 + dt.timedelta(seconds=1)).user.name == "user.handler01"


@pytest.mark.parametrize("password", ["", "short", "1234567"])
def test_a_password_shorter_than_eight_is_refused(node, password):
    with pytest.raises(InvalidInput, match="8"):
        accounts.add_user(node, "user.short01", "clerk", password)
    assert accounts.list_users(node) == []


# -- roles and areas ----------------------------------------------------------


def test_roles_permissions_table():
    table = {name: {a for a in users.ACTIONS if role.may(a)}
             for name, role in users.ROLES.items()}
    assert table == {
        "clerk": {"register", "view_area"},
        "handler": {"register", "view_area", "take_steps"},
        "leader": {"view_area", "view_all", "approve", "supervise"},
        "admin": {"manage_users", "set_policy", "view_access_log"},
    }
    assert [r.label for r in users.ROLES.values()] == ["信息员", "经办人", "领导", "管理员"]
    assert users.role("经办人") is users.role("handler")
    with pytest.raises(ValueError):
        users.ROLES["clerk"].may("fly")


def test_a_users_area_lies_in_the_nodes_jurisdiction(make_node):
    township = make_node(level="township", area="431202101", name="测试镇信访办")
    clerk = accounts.add_user(township, "user.clerk01", "信息员", PASSWORD, area="431202101201")
    leader = accounts.add_user(township, "user.leader01", "leader", PASSWORD)
    assert leader.area == "431202101"
    assert clerk.may_see("431202101201") and not clerk.may_see("431202101202")
    assert leader.may_see("431202101202")
    with pytest.raises(InvalidInput, match="431202102201"):
        accounts.add_user(township, "user.clerk02", "clerk", PASSWORD, area="431202102201")


def test_a_name_is_taken_once_and_an_unknown_one_is_named(node, handler):
    with pytest.raises(InvalidInput, match="user.handler01"):
        accounts.add_user(node, "user.handler01", "clerk", PASSWORD)
    with pytest.raises(NotFound):
        accounts.disable(node, "user.nobody")


# -- login --------------------------------------------------------------------


def test_a_disabled_user_cannot_log_in_and_loses_their_sessions(node, handler):
    opened = login(node)
    accounts.disable(node, "user.handler01")
    assert sessions.session(node, opened.token, T0) is None
    with pytest.raises(LoginFailed):
        login(node)
    accounts.enable(node, "user.handler01")
    assert login(node).user.role.name == "handler"


def test_unknown_wrong_and_disabled_give_the_same_message(node, handler):
    accounts.add_user(node, "user.off01", "clerk", PASSWORD)
    accounts.disable(node, "user.off01")
    messages = set()
    for name, password in (("user.nobody", PASSWORD), ("user.handler01", "wrong-pass-99"),
                           ("user.off01", PASSWORD)):
        with pytest.raises(LoginFailed) as caught:
            login(node, name, password, address=name)  # each its own address: no throttling
        messages.add(str(caught.value))
    assert len(messages) == 1


def test_session_operator_is_what_the_node_records(node, handler):
    opened = login(node)
    before = node.operator
    with sessions.acting_as(node, opened):
        node.log_access("case", "X-1", "petitioners")
    assert node.operator == before
    who = node.db.execute("select who from access_log where entity = 'case'").fetchone()[0]
    assert who == "user.handler01"


# -- rate limit ---------------------------------------------------------------


def fail(node, times, name="user.handler01", address=ADDRESS, start=T0):
    for i in range(times):
        with pytest.raises(LoginFailed):
            login(node, name, "wrong-pass-99", address, start + dt.timedelta(seconds=i))


def test_five_failures_for_a_name_refuse_it_until_the_window_passes(node, handler):
    fail(node, 5, address="192.0.2.1")
    later = T0 + dt.timedelta(minutes=1)
    with pytest.raises(LoginThrottled) as caught:
        login(node, address="198.51.100.7", now=later)  # the right password, elsewhere
    assert caught.value.retry_at == T0 + throttle.WINDOW
    assert "14" in str(caught.value)  # minutes left, said in the message
    with pytest.raises(LoginThrottled):
        login(node, now=T0 + throttle.WINDOW - dt.timedelta(microseconds=1))
    assert login(node, now=T0 + throttle.WINDOW + dt.timedelta(seconds=1)).token


def test_five_failures_from_an_address_refuse_it_for_every_name(node, handler):
    for i in range(5):
        fail(node, 1, name=f"user.guess{i:02d}", start=T0 + dt.timedelta(seconds=i))
    with pytest.raises(LoginThrottled):
        login(node, now=T0 + dt.timedelta(minutes=2))
    assert login(node, address="198.51.100.7", now=T0 + dt.timedelta(minutes=2)).token


def test_four_failures_then_success_clears_the_names_count(node, handler):
    fail(node, 4)
    login(node, now=T0 + dt.timedelta(seconds=10))
    fail(node, 4, address="192.0.2.99", start=T0 + dt.timedelta(seconds=20))
    assert login(node, address="192.0.2.98", now=T0 + dt.timedelta(seconds=30)).token


def test_the_count_survives_a_restart(make_node, tmp_path):
    from xinfang.core.node import Node

    first = make_node()
    accounts.add_user(first, "user.handler01", "handler", PASSWORD)
    fail(first, 5)
    home, pm = first.home, first.pm
    first.close()
    with Node.open(home, pm=pm) as reopened:
        with pytest.raises(LoginThrottled):
            login(reopened, now=T0 + dt.timedelta(minutes=5))


# -- sessions -----------------------------------------------------------------


def test_a_session_ends_after_thirty_idle_minutes(node, handler):
    opened = login(node)
    step = IDLE - dt.timedelta(minutes=1)
    assert sessions.session(node, opened.token, T0 + step) is not None
    assert sessions.session(node, opened.token, T0 + 2 * step) is not None  # idle restarts
    assert sessions.session(node, opened.token, T0 + 2 * step + IDLE) is None
    assert sessions.session(node, opened.token, T0) is None  # gone, not just expired


def test_a_session_ends_twelve_hours_after_it_began_however_busy(node, handler):
    opened = login(node)
    now = T0
    while now + dt.timedelta(minutes=20) < T0 + ABSOLUTE:
        now += dt.timedelta(minutes=20)
        assert sessions.session(node, opened.token, now) is not None
    assert sessions.session(node, opened.token, T0 + ABSOLUTE) is None


def test_logout_ends_the_session(node, handler):
    opened = login(node)
    assert sessions.logout(node, opened.token)
    assert sessions.session(node, opened.token, T0) is None
    assert not sessions.logout(node, opened.token)


def test_only_the_tokens_hash_is_stored(node, handler):
    opened = login(node)
    rows = node.db.execute("select * from web_sessions").fetchall()
    assert len(rows) == 1
    assert opened.token not in json.dumps(rows)
    assert sessions.token_hash(opened.token) in rows[0]
    assert len(opened.token) >= 43  # 32 random bytes


def test_csrf_check(node, handler):
    opened = login(node)
    assert check_csrf(opened, opened.csrf)
    found = sessions.session(node, opened.token, T0)
    assert check_csrf(found, opened.csrf)
    for wrong in (None, "", opened.csrf[:-1], opened.csrf + "x", opened.token, "令牌", 42):
        assert not check_csrf(opened, wrong)
    assert not check_csrf(None, opened.csrf)


def test_cookie_attributes():
    plain, tls = CookiePolicy(), CookiePolicy(secure=True)
    assert plain.attributes() == {"HttpOnly": True, "SameSite": "Strict", "Path": "/",
                                  "Secure": False}
    assert tls.header("abc") == "xinfang_session=abc; Path=/; SameSite=Strict; HttpOnly; Secure"
    assert "Secure" not in plain.header("abc")
    assert "Max-Age=0" in plain.clearing_header()


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=60), st.text(max_size=60))
def test_no_other_token_opens_a_session_and_no_other_csrf_passes(node, token, csrf):
    user = users.find_user(node.db, "user.prop01") or accounts.add_user(
        node, "user.prop01", "clerk", PASSWORD)
    one = sessions.open_session(node, user, ADDRESS, T0)
    other = sessions.open_session(node, user, ADDRESS, T0)
    assert sessions.session(node, other.token, T0).csrf == other.csrf
    assert not check_csrf(one, other.csrf) and not check_csrf(other, one.csrf)
    if token not in (one.token, other.token):
        assert sessions.session(node, token, T0) is None
    if csrf != one.csrf:
        assert not check_csrf(one, csrf)


# -- the command line ---------------------------------------------------------


@pytest.fixture
def cli_node(invoke):
    assert invoke("init", "--level", "village", "--area", "431202101201",
                  "--name", "测试村信访站").exit_code == 0
    return invoke


def test_cli_adds_lists_disables_and_changes_passwords(cli_node, monkeypatch):
    monkeypatch.setattr(accounts, "HASHER", CHEAP)
    added = cli_node("user", "add", "user.cli01", "--role", "经办人", "--json",
                     input=f"{PASSWORD}\n{PASSWORD}\n")
    assert added.exit_code == 0, added.output
    assert json.loads(added.output[added.output.index("{"):])["role"] == "handler"
    assert PASSWORD not in added.output
    piped = cli_node("user", "add", "user.cli02", "--role", "clerk", "--password-stdin",
                     input=f"{PASSWORD}\n")
    assert piped.exit_code == 0 and "信息员" in piped.output
    assert cli_node("user", "disable", "user.cli02").exit_code == 0
    listed = json.loads(cli_node("user", "list", "--json").output)
    assert [(u["name"], u["role"], u["disabled"]) for u in listed] == [
        ("user.cli01", "handler", False), ("user.cli02", "clerk", True)]
    assert "已停用" in cli_node("user", "list").output
    assert cli_node("user", "enable", "user.cli02").exit_code == 0
    changed = cli_node("user", "passwd", "user.cli01", input="new-secret-03\nnew-secret-03\n")
    assert changed.exit_code == 0, changed.output
    from xinfang.core.node import Node

    with Node.open(cli_node.home) as node:
        assert login(node, "user.cli01", "new-secret-03").token
        with pytest.raises(LoginFailed):
            login(node, "user.cli01", PASSWORD, address="192.0.2.50")


@pytest.mark.parametrize("args, input, wanted", [
    (("--role", "boss", "--password-stdin"), f"{PASSWORD}\n", "没有角色“boss”"),
    (("--password-stdin", "--role", "clerk"), "short\n", "密码至少 8 个字符"),
    (("--role", "clerk"), f"{PASSWORD}\nother-pass-04\n", None),
    (("--role", "clerk", "--area", "431202102201", "--password-stdin"), f"{PASSWORD}\n",
     "不在本节点辖区"),
])
def test_cli_refuses_in_one_chinese_line(cli_node, args, input, wanted):
    result = cli_node("user", "add", "user.bad01", *args, input=input)
    assert result.exit_code != 0
    if wanted:
        error = result.output.strip().splitlines()[-1]
        assert error.startswith("错误") and wanted in error
    assert "Traceback" not in result.output
    assert cli_node("user", "list", "--json").output.strip() == "[]"


# -- accounts never travel ----------------------------------------------------


def test_accounts_are_never_events_nor_in_a_bundle(tmp_path):
    tree = build_tree(tmp_path, villages=1)
    village = tree.villages[0]
    before = village.db.execute("select count(*) from events").fetchone()[0]
    accounts.add_user(village, "user.local01", "handler", PASSWORD)
    opened = login(village, "user.local01")
    assert village.db.execute("select count(*) from events").fetchone()[0] == before
    with sessions.acting_as(village, opened):
        register(village, serial=1)
    raws = b"".join(r[0] for r in village.db.execute("select raw from events"))
    assert stored_hash(village, "user.local01").encode() not in raws
    assert opened.token.encode() not in raws
    carry(village, tree.township, tmp_path)
    township_db = tree.township.db
    assert township_db.execute("select count(*) from events").fetchone()[0] > before
    tables = {r[0] for r in township_db.execute("select name from sqlite_master")}
    assert not tables & {"web_users", "web_sessions", "web_login_failures"}
    dump = "\n".join(township_db.conn.iterdump())
    assert stored_hash(village, "user.local01") not in dump
    assert opened.token not in dump and sessions.token_hash(opened.token) not in dump


def test_rebuild_leaves_accounts_alone(node, handler):
    from xinfang.core import verify

    verify.rebuild(node)
    assert [u.name for u in accounts.list_users(node)] == ["user.handler01"]
    assert isinstance(node.db.conn, sqlite3.Connection)


# -- the last administrator, and the log of account changes ---------------------


def test_the_last_enabled_administrator_cannot_be_disabled(node):
    accounts.add_user(node, "user.admin01", "admin", PASSWORD)
    accounts.add_user(node, "user.handler02", "handler", PASSWORD)
    with pytest.raises(accounts.LastAdministrator, match="user.admin01") as caught:
        accounts.disable(node, "user.admin01")
    assert "最后一个启用的管理员" in str(caught.value)
    assert not users.find_user(node.db, "user.admin01").disabled
    accounts.disable(node, "user.handler02")  # anyone else may be disabled
    accounts.add_user(node, "user.admin02", "管理员", PASSWORD)
    accounts.disable(node, "user.admin01")  # another administrator is enabled
    with pytest.raises(accounts.LastAdministrator, match="user.admin02"):
        accounts.disable(node, "user.admin02")  # a disabled one does not count
    accounts.enable(node, "user.admin01")
    accounts.disable(node, "user.admin02")
    assert [u.name for u in accounts.list_users(node) if not u.disabled] == ["user.admin01"]


def account_changes(node, who=None) -> list[tuple[str, str, str]]:
    return [(e.who, e.entity_id, e.what) for e in access.entries(node, access.AccessFilter(
        who=who)) if e.entity == access.ACCOUNT]


def test_every_account_change_is_in_the_access_log_under_the_operator(node, handler):
    admin = accounts.add_user(node, "user.admin01", "admin", PASSWORD)
    accounts.set_password(node, "user.handler01", "another-pass-02")
    with sessions.acting_as(node, sessions.open_session(node, admin, ADDRESS, T0)):
        accounts.disable(node, "user.handler01")
        accounts.enable(node, "user.handler01")
    operator = node.operator
    assert account_changes(node) == [
        (operator, "user.handler01", f"添加了该用户：经办人，区划 {node.info.area}"),
        (operator, "user.admin01", f"添加了该用户：管理员，区划 {node.info.area}"),
        (operator, "user.handler01", "为该用户设置了新密码"),
        ("user.admin01", "user.handler01", "停用了该用户"),
        ("user.admin01", "user.handler01", "启用了该用户")]
    with pytest.raises(accounts.LastAdministrator):
        accounts.disable(node, "user.admin01")
    with pytest.raises(InvalidInput):
        accounts.add_user(node, "user.short02", "clerk", "short")
    assert len(account_changes(node)) == 5  # a refused change is not logged
    assert PASSWORD not in json.dumps(node.db.execute("select * from access_log").fetchall())


def test_cli_refuses_to_disable_the_last_admin_and_logs_changes_under_the_operator(
        cli_node, monkeypatch):
    monkeypatch.setattr(accounts, "HASHER", CHEAP)
    added = cli_node("--operator", "张某", "user", "add", "user.admin01", "--role", "管理员",
                     "--password-stdin", input=f"{PASSWORD}\n")
    assert added.exit_code == 0, added.output
    refused = cli_node("user", "disable", "user.admin01")
    assert refused.exit_code != 0 and "Traceback" not in refused.output
    error = refused.output.strip().splitlines()[-1]
    assert error.startswith("错误") and "“user.admin01”是本节点最后一个启用的管理员" in error
    assert json.loads(cli_node("user", "list", "--json").output)[0]["disabled"] is False
    assert cli_node("--operator", "李某", "user", "add", "user.admin02", "--role", "admin",
                    "--password-stdin", input=f"{PASSWORD}\n").exit_code == 0
    assert cli_node("--operator", "李某", "user", "disable", "user.admin01").exit_code == 0
    mine = json.loads(cli_node("access-log", "--user", "李某", "--json").output)
    assert [(r["entity"], r["entity_id"], r["what"]) for r in mine] == [
        ("user", "user.admin02", "添加了该用户：管理员，区划 431202101201"),
        ("user", "user.admin01", "停用了该用户")]
    everyone = json.loads(cli_node("access-log", "--json").output)
    assert [r["who"] for r in everyone] == ["张某", "李某", "李某"]


# -- the login form's token -----------------------------------------------------


def test_a_login_forms_token_passes_only_as_its_own_cookie_here_and_while_fresh(make_node):
    node, other = make_node(), make_node()
    token = sessions.login_token(node, T0)
    later = T0 + sessions.LOGIN_TTL - dt.timedelta(seconds=1)
    assert sessions.check_login_token(node, token, token, later)
    made, nonce, mac = token.split(".")
    for cookie, field, now in (
            (token, sessions.login_token(node, T0), T0),      # another form's token
            (None, token, T0), (token, None, T0), ("", "", T0), (token, "", T0),
            (token, token, T0 + sessions.LOGIN_TTL),           # too old
            (token, token, T0 - dt.timedelta(minutes=5)),      # from the future
            (f"{int(made) + 1}.{nonce}.{mac}",) * 2 + (T0,),    # its time changed
            ("令牌", "令牌", T0), (42, 42, T0)):
        assert not sessions.check_login_token(node, cookie, field, now), (cookie, field)
    assert not sessions.check_login_token(other, token, token, T0)  # made by another node
    with pytest.raises(accounts.LoginFormRefused, match="登录表单已过期"):
        accounts.check_login_form(node, None, token, T0)
    accounts.check_login_form(node, token, token, T0)
