"""Server-side sessions of the web view, their CSRF tokens and the cookie that names them.

A session is a row of the node's own ``web_sessions`` table. The browser
holds a random token (``secrets.token_urlsafe(32)``); the table holds only
its SHA-256, so a copy of the database opens no session. A session ends
after ``IDLE`` without a request, ``ABSOLUTE`` after it began, at logout,
and when its user is disabled or gets a new password. Each session has its
own CSRF token, which every form carries and every POST is checked against
(``check_csrf``, in constant time). Times are passed in (``now``), never
read here, so tests need no clock.

The login form has no session to take a token from, so it gets one of its
own, with no state kept (double submit): ``login_token`` signs the time it
was made and a random nonce with a key this process makes at start, bound
to the node; the same token goes into a short-lived cookie (``LOGIN_COOKIE``,
``LOGIN_TTL``, sent to ``/login`` only) and into the form's hidden field.
Another site can make a browser post to ``/login`` but can neither read
the field nor set the cookie, so ``check_login_token`` refuses its post
before any password is checked. A token older than ``LOGIN_TTL`` (or made
before the server restarted) is refused too: the user reloads the form.
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
LOGIN_COOKIE = "xinfang_login"
LOGIN_TTL = dt.timedelta(minutes=30)
#: signs login form tokens; made once per process, so a restart voids open login forms
_LOGIN_KEY = secrets.token_bytes(32)


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


# -- the login form's token -----------------------------------------------------


def _login_mac(node, made: str, nonce: str) -> str:
    message = f"{node.info.author}|{made}|{nonce}".encode("ascii")  # i18n: identifier
    return hmac.new(_LOGIN_KEY, message, hashlib.sha256).hexdigest()


def login_token(node, now: dt.datetime | None = None) -> str:
    """A new token for a login form of ``node``: ``seconds.nonce.signature``."""
    made, nonce = str(int(utc(now).timestamp())), secrets.token_urlsafe(18)
    return ".".join((made, nonce, _login_mac(node, made, nonce)))


def check_login_token(node, cookie: object, field: object,
                      now: dt.datetime | None = None) -> bool:
    """Whether ``field`` (the form's) and ``cookie`` (the browser's) are one token that
    ``login_token`` made for ``node`` less than ``LOGIN_TTL`` ago."""
    if not isinstance(cookie, str) or not isinstance(field, str) or not field:
        return False
    try:
        cookie_bytes, field_bytes = cookie.encode("ascii"), field.encode("ascii")
    except UnicodeEncodeError:
        return False
    if not hmac.compare_digest(cookie_bytes, field_bytes):
        return False
    parts = field.split(".")
    if len(parts) != 3 or not parts[0].isdigit():
        return False
    made, nonce, mac = parts
    if not hmac.compare_digest(mac.encode("ascii"), _login_mac(node, made, nonce).encode()):
        return False
    age = utc(now).timestamp() - int(made)
    return -60 <= age < LOGIN_TTL.total_seconds()  # a minute's clock step is forgiven


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

    def login_header(self, token: str) -> str:
        """The ``Set-Cookie`` value that gives a login form's token (``login_token``):
        sent back to ``/login`` only, gone after ``LOGIN_TTL``."""
        parts = [f"{LOGIN_COOKIE}={token}", "Path=/login", f"SameSite={self.same_site}",
                 f"Max-Age={int(LOGIN_TTL.total_seconds())}", "HttpOnly"]
        if self.secure:
            parts.append("Secure")
        return "; ".join(parts)

    def _join(self, head: str) -> str:
        parts = [head, f"Path={self.path}", f"SameSite={self.same_site}"]
        if self.http_only:
            parts.append("HttpOnly")
        if self.secure:
            parts.append("Secure")
        return "; ".join(parts)
