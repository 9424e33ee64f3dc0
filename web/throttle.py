"""Login rate limit: failed logins per user name and per address in a sliding window.

The failures are rows of the node's own ``web_login_failures`` table, so a
restart does not reset the count. A name counts whether or not such a user
exists, so the limit tells an attacker nothing about which names are real.
A refused attempt is not itself counted: the refusal ends when the oldest
of the last ``LIMIT`` failures leaves the window, and says when that is.
"""

from __future__ import annotations

import datetime as dt

from xinfang.core.errors import XinfangError

from .users import ready, stamp, utc

LIMIT = 5
WINDOW = dt.timedelta(minutes=15)


class LoginThrottled(XinfangError):
    """Too many failed logins for this name or from this address; ``retry_at`` says when."""

    def __init__(self, message, retry_at: dt.datetime, **args):
        super().__init__(message, **args)
        self.retry_at = retry_at


def retry_at(db, name: str, address: str, now: dt.datetime) -> dt.datetime | None:
    """When a login for ``name`` from ``address`` may be tried again; None if now."""
    ready(db)
    now, latest = utc(now), None
    for column, value in (("name", name), ("address", address)):
        rows = db.execute(f"select at from web_login_failures where {column} = ? and at > ? "
                          "order by at desc limit ?",
                          [value, stamp(now - WINDOW), LIMIT]).fetchall()
        if len(rows) >= LIMIT:
            free = dt.datetime.fromisoformat(rows[-1][0]) + WINDOW
            latest = free if latest is None else max(latest, free)
    return latest


def record_failure(db, name: str, address: str, now: dt.datetime) -> None:
    now = utc(now)
    ready(db).execute("insert into web_login_failures (name, address, at) values (?,?,?)",
                      [name, address, stamp(now)])
    db.execute("delete from web_login_failures where at <= ?", [stamp(now - WINDOW)])


def forget(db, name: str) -> None:
    """A successful login clears its name's failures (not its address's: one valid
    account must not reset the count of guesses from that address)."""
    ready(db).execute("delete from web_login_failures where name = ?", [name])
