"""Local user accounts of a node's web view: add, change password, disable, log in.

Accounts belong to one node and never travel (see ``users``). Passwords are
hashed with argon2id (argon2-cffi's ``PasswordHasher``, its RFC 9106
parameters); the stored text is the PHC hash string, never the password,
and a hash made under older parameters is replaced at the next successful
login. ``authenticate`` gives the same ``LoginFailed`` for an unknown user,
a wrong password and a disabled user, and verifies a hash in every case, so
neither the message nor the time it takes tells them apart.
"""

from __future__ import annotations

import datetime as dt
import math

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from xinfang.core import areas
from xinfang.core.errors import InvalidInput, NotFound, XinfangError
from xinfang.core.i18n import N_

from . import sessions, throttle
from .sessions import Session
from .throttle import LoginThrottled
from .users import (ROLES, USER_COLUMNS, Role, User, find_user, ready, role, stamp,
                    user_from_row, utc)

MIN_PASSWORD = 8
MAX_PASSWORD = 1024
MAX_NAME = 64
#: the hasher in use; its parameters changing makes old hashes rehash at login
HASHER = PasswordHasher()
_dummy: dict[tuple, str] = {}


class LoginFailed(XinfangError):
    """The name and password do not open an account (whatever the reason)."""


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
    db.execute("insert into web_users (name, role, area, password_hash, disabled, created) "
               "values (?,?,?,?,0,?)",
               [name, found_role.name, area, HASHER.hash(password), stamp(utc(now))])
    return get_user(node, name)


def set_password(node, name: str, password: str) -> User:
    """Give ``name`` a new password; their open sessions end."""
    user = get_user(node, name)
    check_password(password)
    with node.db.atomic():
        node.db.execute("update web_users set password_hash = ? where name = ?",
                        [HASHER.hash(password), name])
        sessions.end_sessions_of(node, name)
    return user


def _set_disabled(node, name: str, disabled: bool) -> User:
    get_user(node, name)
    with node.db.atomic():
        node.db.execute("update web_users set disabled = ? where name = ?",
                        [int(disabled), name])
        if disabled:
            sessions.end_sessions_of(node, name)
    return get_user(node, name)


def disable(node, name: str) -> User:
    """Stop ``name`` from logging in, and end their sessions (the account stays)."""
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


__all__ = ["HASHER", "LoginFailed", "LoginThrottled", "MIN_PASSWORD", "ROLES", "Role",
           "Session", "User", "add_user", "authenticate", "disable", "enable", "get_user",
           "list_users", "role", "set_password"]
