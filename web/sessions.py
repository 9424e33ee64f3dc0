"""Server-side sessions of the web view, their CSRF tokens and the cookie that names them.

A session is a row of the node's own ``web_sessions`` table. The browser
holds a random token (``secrets.token_urlsafe(32)``); the table holds only
its SHA-256, so a copy of the database opens no session. A session ends
after ``IDLE`` without a request, ``ABSOLUTE`` after it began, at logout,
and when its user is disabled or gets a new password. Each session has its
own CSRF token, which every form carries and every POST is checked against
(``check_csrf``, in constant time). Times are passed in (``now``), never
read here, so tests need no clock.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import hmac
import secrets
from typing import Iterator

import attrs

from .users import USER_COLUMNS, User, ready, stamp, user_from_row, utc

IDLE = dt.timedelta(minutes=30)
ABSOLUTE = dt.timedelta(hours=12)
COOKIE_NAME = "xinfang_session"


@attrs.frozen
class Session:
    """A logged-in user. ``token`` is known only where the session was opened or
    presented; the node never stores it."""

    user: User
    created: dt.datetime
    last_seen: dt.datetime
    address: str
    csrf: str = attrs.field(repr=False)
    token: str | None = attrs.field(default=None, repr=False)

    @property
    def operator(self) -> str:
        """What the node records as the operator for this session's events and reads."""
        return self.user.name

    @property
    def expires(self) -> dt.datetime:
        return min(self.last_seen + IDLE, self.created + ABSOLUTE)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def open_session(node, user: User, address: str, now: dt.datetime) -> Session:
    """Start a session for ``user`` (already authenticated): the only place a token is made."""
    db = ready(node.db)
    token, csrf, now = secrets.token_urlsafe(32), secrets.token_urlsafe(32), utc(now)
    db.execute("insert into web_sessions (token_hash, user, csrf, address, created, last_seen) "
               "values (?,?,?,?,?,?)",
               [token_hash(token), user.name, csrf, address, stamp(now), stamp(now)])
    return Session(user, now, now, address, csrf, token)


def session(node, token: str | None, now: dt.datetime | None = None) -> Session | None:
    """The live session ``token`` names, its idle time restarted; None if there is none."""
    if not token or not isinstance(token, str):
        return None
    db, now, key = ready(node.db), utc(now), token_hash(token)
    row = db.execute(f"select s.created, s.last_seen, s.address, s.csrf, "
                     f"{', '.join('u.' + c for c in USER_COLUMNS.split(', '))} "
                     "from web_sessions s join web_users u on u.name = s.user "
                     "where s.token_hash = ?", [key]).fetchone()
    if row is None:
        return None
    created, last_seen, address, csrf = row[:4]
    user = user_from_row(row[4:])
    found = Session(user, dt.datetime.fromisoformat(created), dt.datetime.fromisoformat(last_seen),
                    address, csrf, token)
    if user.disabled or now >= found.expires:
        db.execute("delete from web_sessions where token_hash = ?", [key])
        return None
    db.execute("update web_sessions set last_seen = ? where token_hash = ?", [stamp(now), key])
    return attrs.evolve(found, last_seen=now)


def logout(node, token: str | None) -> bool:
    """End the session ``token`` names; whether there was one."""
    if not token or not isinstance(token, str):
        return False
    cursor = ready(node.db).execute("delete from web_sessions where token_hash = ?",
                                    [token_hash(token)])
    return cursor.rowcount == 1


def end_sessions_of(node, name: str) -> int:
    """End every session of user ``name`` (disabled, or a new password)."""
    return ready(node.db).execute("delete from web_sessions where user = ?", [name]).rowcount


def sweep(node, now: dt.datetime | None = None) -> int:
    """Delete the sessions that have expired; how many."""
    now = utc(now)
    return ready(node.db).execute(
        "delete from web_sessions where last_seen <= ? or created <= ?",
        [stamp(now - IDLE), stamp(now - ABSOLUTE)]).rowcount


def check_csrf(session: Session | None, given: object) -> bool:
    """Whether ``given`` is this session's CSRF token (compared in constant time)."""
    if session is None or not isinstance(given, str) or not given:
        return False
    try:
        given_bytes = given.encode("ascii")
    except UnicodeEncodeError:
        return False
    return hmac.compare_digest(given_bytes, session.csrf.encode("ascii"))


@contextlib.contextmanager
def acting_as(node, current: Session) -> Iterator[None]:
    """Record ``current``'s user as the node's operator for one request, then restore it."""
    before = node.operator
    node.operator = current.operator
    try:
        yield
    finally:
        node.operator = before


# -- the cookie -------------------------------------------------------------

@attrs.frozen
class CookiePolicy:
    """How the session cookie is set: for the web layer to write into its header."""

    secure: bool = False          # set when the view is served over TLS
    name: str = COOKIE_NAME
    http_only: bool = True
    same_site: str = "Strict"
    path: str = "/"

    def attributes(self) -> dict[str, object]:
        return {"HttpOnly": self.http_only, "SameSite": self.same_site, "Path": self.path,
                "Secure": self.secure}

    def header(self, token: str) -> str:
        """The ``Set-Cookie`` value that gives the browser ``token``."""
        return self._join(f"{self.name}={token}")

    def clearing_header(self) -> str:
        """The ``Set-Cookie`` value that removes the cookie (at logout)."""
        return self._join(f"{self.name}=; Max-Age=0")

    def _join(self, head: str) -> str:
        parts = [head, f"Path={self.path}", f"SameSite={self.same_site}"]
        if self.http_only:
            parts.append("HttpOnly")
        if self.secure:
            parts.append("Secure")
        return "; ".join(parts)
