"""Local user accounts of a node's web view: add, change password, disable, log in.

Accounts belong to one node and never travel (see ``users``). Passwords are
hashed with argon2id (argon2-cffi's ``PasswordHasher``, its RFC 9106
parameters); the stored text is the PHC hash string, never the password,
and a hash made under older parameters is replaced at the next successful
login. ``authenticate`` gives the same ``LoginFailed`` for an unknown user,
a wrong password and a disabled user, and verifies a hash in every case, so
neither the message nor the time it takes tells them apart.

Every change to an account (added, new password, disabled, enabled) is
written to the node's access log under the node's operator: the CLI's
``--operator``, the web session's user (``core.access`` reads it back).
The last enabled user who may manage users cannot be disabled
(``LastAdministrator``): nobody could then add or enable anyone from the
web view. The login form is checked (``check_login_form``) before any
password is: a token the browser got with the form, in a short-lived
cookie and in the form's hidden field.
"""

from __future__ import annotations

import datetime as dt
import math

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from xinfang.core import access, areas
from xinfang.core.errors import InvalidInput, NotFound, XinfangError
from xinfang.core.i18n import N_, Message, _

from . import sessions, throttle
from .sessions import Session
from .throttle import LoginThrottled
from .users import (MANAGE_USERS, ROLES, USER_COLUMNS, Role, User, find_user, ready, role,
                    stamp, user_from_row, utc)

MIN_PASSWORD = 8
MAX_PASSWORD = 1024
MAX_NAME = 64
#: the hasher in use; its parameters changing makes old hashes rehash at login
HASHER = PasswordHasher()
_dummy: dict[tuple, str] = {}


class LoginFailed(XinfangError):
    """The name and password do not open an account (whatever the reason)."""


class LoginFormRefused(XinfangError):
    """A login sent without the token of a login form this node gave out lately (another
    site's form, or one left open too long): refused before any password is checked."""


class LastAdministrator(InvalidInput):
    """Disabling this user would leave the node with nobody enabled who may manage
    users."""


#: what the command line and the web view say about a user (the same words in both)
USER_LINE = N_("User {name}: {role}, area {area}, {state}")
ADDED_LINE = N_("Added user {name}: {role}, area {area}, {state}")
PASSWORD_LINE = N_("New password set for {name}.")


def describe(user: dict, line: str = USER_LINE) -> str:
    """A user (``User.to_json()``) in one line, in the reader's language (``line``: which
    message)."""
    state = _("disabled") if user["disabled"] else _("enabled")
    return _(line).format(name=user["name"], role=user["role_label"], area=user["area"],
                          state=state)


def _log_change(node, name: str, what: Message) -> None:
    """Write an account change to the access log, under the node's operator."""
    node.log_access(access.ACCOUNT, name, what.stored())


def _hasher_key(hasher: PasswordHasher) -> tuple:
    return (hasher.time_cost, hasher.memory_cost, hasher.parallelism, hasher.hash_len,
            hasher.salt_len, hasher.type)


def _dummy_hash() -> str:
    """A hash of nothing anyone knows, verified for unknown users to spend the same time."""
    key = _hasher_key(HASHER)
    if key not in _dummy:
        _dummy[key] = HASHER.hash("\x00unknown user\x00")
    return _dummy[key]


def check_name(name: object) -> str:
    if (not isinstance(name, str) or not name or len(name) > MAX_NAME
            or not name.isprintable() or any(c.isspace() for c in name)):
        raise InvalidInput(N_("a user name is 1 to {limit} characters, without spaces or "
                              "control characters"), limit=MAX_NAME)
    return name


def check_password(password: object) -> str:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise InvalidInput(N_("a password has at least {minimum} characters"),
                           minimum=MIN_PASSWORD)
    if len(password) > MAX_PASSWORD:
        raise InvalidInput(N_("a password has at most {limit} characters"), limit=MAX_PASSWORD)
    return password


def check_area(node, area: str | None) -> str:
    """``area`` (default the node's own), if it lies in the node's jurisdiction."""
    scope = node.info.area
    if area is None:
        return scope
    areas.check_code(area)
    if not areas.contains(scope, area):
        raise InvalidInput(N_("area {area} is outside this node's jurisdiction {scope}"),
                           area=area, scope=scope)
    return area


def get_user(node, name: str) -> User:
    found = find_user(node.db, name)
    if found is None:
        raise NotFound(N_("there is no user “{name}” on this node"), name=name)
    return found


def check_new_user(node, name: str, user_role: Role | str,
                   area: str | None) -> tuple[Role, str]:
    """Refuse a new user's name, role or area before asking for a password."""
    check_name(name)
    found_role = user_role if isinstance(user_role, Role) else role(user_role)
    area = check_area(node, area)
    if find_user(node.db, name) is not None:
        raise InvalidInput(N_("there is already a user “{name}” on this node"), name=name)
    return found_role, area


def add_user(node, name: str, user_role: Role | str, password: str, area: str | None = None,
             now: dt.datetime | None = None) -> User:
    """A new, enabled user of this node, for ``area`` (default the node's own)."""
    db = ready(node.db)
    found_role, area = check_new_user(node, name, user_role, area)
    check_password(password)
    with db.atomic():
        db.execute("insert into web_users (name, role, area, password_hash, disabled, created) "
                   "values (?,?,?,?,0,?)",
                   [name, found_role.name, area, HASHER.hash(password), stamp(utc(now))])
        _log_change(node, name, Message(N_("added the user: {role}, area {area}"),
                                        role=found_role.label, area=area))
    return get_user(node, name)


def set_password(node, name: str, password: str) -> User:
    """Give ``name`` a new password; their open sessions end."""
    user = get_user(node, name)
    check_password(password)
    with node.db.atomic():
        node.db.execute("update web_users set password_hash = ? where name = ?",
                        [HASHER.hash(password), name])
        sessions.end_sessions_of(node, name)
        _log_change(node, name, Message(N_("set a new password for the user")))
    return user


def _administrators(node) -> list[User]:
    """The enabled users whose role may manage users."""
    return [u for u in list_users(node) if u.may(MANAGE_USERS) and not u.disabled]


def check_may_disable(node, user: User) -> None:
    """Refuse to disable the last enabled user who may manage users."""
    if user.may(MANAGE_USERS) and not user.disabled and [
            u.name for u in _administrators(node)] == [user.name]:
        raise LastAdministrator(N_("“{name}” is the last enabled {role} of this node and "
                                   "cannot be disabled: add or enable another {role} first"),
                                name=user.name, role=user.role.label)


def _set_disabled(node, name: str, disabled: bool) -> User:
    with node.db.atomic():
        user = get_user(node, name)
        if disabled:
            check_may_disable(node, user)
        node.db.execute("update web_users set disabled = ? where name = ?",
                        [int(disabled), name])
        if disabled:
            sessions.end_sessions_of(node, name)
        _log_change(node, name, Message(N_("disabled the user") if disabled
                                        else N_("enabled the user")))
    return get_user(node, name)


def disable(node, name: str) -> User:
    """Stop ``name`` from logging in, and end their sessions (the account stays); not
    the last enabled user who may manage users (``LastAdministrator``)."""
    return _set_disabled(node, name, True)


def enable(node, name: str) -> User:
    return _set_disabled(node, name, False)


def list_users(node) -> list[User]:
    rows = ready(node.db).execute(f"select {USER_COLUMNS} from web_users order by name")
    return [user_from_row(row) for row in rows]


def _verify(stored: str, password: str) -> bool:
    try:
        return HASHER.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def authenticate(node, name: str, password: str, address: str,
                 now: dt.datetime | None = None) -> Session:
    """Open a session for ``name`` if ``password`` is theirs and they are enabled.

    Refused with ``LoginThrottled`` (saying when to try again) after
    ``throttle.LIMIT`` failures for the name or from the address within
    ``throttle.WINDOW``; otherwise ``LoginFailed``, one message for every cause.
    """
    db, now = ready(node.db), utc(now)
    name = name if isinstance(name, str) else ""
    password = password if isinstance(password, str) else ""
    free = throttle.retry_at(db, name, address, now)
    if free is not None:
        raise LoginThrottled(N_("too many failed logins; try again in {minutes} minutes "
                                "(after {time})"), retry_at=free,
                             minutes=max(1, math.ceil((free - now).total_seconds() / 60)),
                             time=free.astimezone().strftime("%H:%M"))
    row = db.execute("select password_hash, disabled from web_users where name = ?",
                     [name]).fetchone()
    stored, disabled = row if row else (_dummy_hash(), True)
    matches = _verify(stored, password[:MAX_PASSWORD])
    if not matches or disabled:
        throttle.record_failure(db, name, address, now)
        raise LoginFailed(N_("wrong user name or password, or the account is disabled"))
    with db.atomic():
        if HASHER.check_needs_rehash(stored):
            db.execute("update web_users set password_hash = ? where name = ?",
                       [HASHER.hash(password), name])
        throttle.forget(db, name)
        return sessions.open_session(node, get_user(node, name), address, now)


def check_login_form(node, cookie: object, field: object,
                     now: dt.datetime | None = None) -> None:
    """Refuse a login whose form token (the hidden field ``csrf``) is missing, is not
    the one in the browser's login cookie, or was not given out by this node within
    ``sessions.LOGIN_TTL``; called before any password is looked at, so such a login
    neither counts as a failure nor tells anything about the account."""
    if not sessions.check_login_token(node, cookie, field, now):
        raise LoginFormRefused(N_("the login form has expired or was not sent from this "
                                  "site: reload the login page and log in again"))


__all__ = ["HASHER", "LastAdministrator", "LoginFailed", "LoginFormRefused", "LoginThrottled",
           "MIN_PASSWORD", "ROLES", "Role", "Session", "User", "add_user", "authenticate",
           "check_login_form", "describe", "disable", "enable", "get_user", "list_users",
           "role", "set_password"]
