"""Who may write about what, as this node's trust data says (``Authority``), judged once
per version of that data.

A sync request, a page and an admission all ask the same question of the same
few chains: which area may this author write for? Judging a chain reads the
certificate table and checks signatures, so the answers are kept per version of
the trust data (certificates, revocations, retirements, frozen feeds, ``trust``
events, the pinned root), with the connection, and a change of any of them
(here or by another process) makes the next question judge afresh.
"""

from __future__ import annotations

import bisect
import contextlib
import itertools
import sqlite3
from typing import Any

import attrs

from . import store
from .certs import Certificate, TrustError, chain_of, validate_chain, void_reason
from .errors import InvalidInput
from .i18n import Message


#: the tables an author's scope is read from, and (column, value) for those where only
#: some rows count: the certificates, revocations and retirements, frozen feeds, the
#: ``trust`` events (``trust.certify`` proves a certificate in time) and the pinned root
WATCHED = {"certs": None, "revocations": None, "frozen_feeds": None,
           "events": ("entity", "trust"), "meta": ("key", "root_author")}
#: the temporary table holding this connection's generations: ``n`` of the trust data,
#: ``f`` of the feeds held (renewed when a feed is added or removed)
GENERATION = "xinfang_trust_generation"
#: a number for every change, never handed out twice in a process
_GENERATIONS = itertools.count(1)
_VERSION = (f"select n, f, (select data_version from pragma_data_version), "
            f"(select schema_version from pragma_schema_version) from temp.{GENERATION}")
#: where a database object keeps its memo
MEMO = "_xinfang_trust"
#: the most scopes kept for one version; past it they are judged afresh
MAX_MEMO = 65536


@attrs.define
class TrustMemo:
    """What one connection's trust data says at one version: the scopes judged so far,
    the index of every stored certificate's scope, and the authors of feeds held that
    have none, each once asked for."""

    schema: int | None = None
    version: tuple | None = None
    feeds: tuple | None = None
    scopes: dict[str, tuple[Certificate | None, Message | None]] = attrs.Factory(dict)
    index: "ScopeIndex | None" = None
    unscoped: frozenset[str] | None = None


def _watch(conn) -> int:
    """Make this connection's generations and the triggers that renew them; returns the
    schema version they were made for.

    Temporary objects: they are this connection's alone, change no schema, and are
    rolled back with the transaction that made them (``trust_version`` makes them
    again). Each trigger sets a number not handed out before, so a generation
    never returns unless a rollback returns the data with it.
    """
    # made before, and a statement is running: the function made then stays
    with contextlib.suppress(sqlite3.OperationalError):
        conn.create_function("xinfang_trust_next", 0, lambda: next(_GENERATIONS))
    conn.execute(f"create temp table if not exists {GENERATION} (n integer not null, "
                 f"f integer not null)")
    conn.execute(f"delete from temp.{GENERATION}")
    conn.execute(f"insert into temp.{GENERATION} values (xinfang_trust_next(), "
                 f"xinfang_trust_next())")
    tables = {row[0] for row in conn.execute("select name from sqlite_master where "
                                             "type = 'table'")}
    watched = [(table, rows, op, when, "n") for table, rows in WATCHED.items()
               for op, when in (("insert", ("new",)), ("update", ("new", "old")),
                                ("delete", ("old",)))]
    watched += [("feeds", None, op, (), "f") for op in ("insert", "delete")]
    for table, rows, op, when, column in watched:
        name = f"xinfang_{column}_{table}_{op}"
        conn.execute(f"drop trigger if exists temp.{name}")
        if table not in tables:
            continue
        condition = "" if rows is None else " when " + " or ".join(
            f"{row}.{rows[0]} = '{rows[1]}'" for row in when)
        conn.execute(f"create temp trigger {name} after {op} on main.{table}{condition} "
                     f"begin update {GENERATION} set {column} = xinfang_trust_next(); end")
    return conn.execute("pragma schema_version").fetchone()[0]


def trust_version(db) -> TrustMemo | None:
    """The memo of ``db``'s trust data at its current version, emptied if that changed.

    The version is this connection's trust generation (renewed by every write to
    the watched rows through it, and restored by a rollback of the write), the
    database's ``data_version`` (changed by a commit of any other connection,
    another process's ``xinfang trust revoke`` too) and its schema version (a
    table made since the triggers were). None for a connection this cannot watch:
    then nothing is kept and every scope is judged afresh.
    """
    conn = getattr(db, "conn", None)
    if not isinstance(conn, sqlite3.Connection):
        return None
    kept = getattr(db, "__dict__", None)
    if kept is None:
        return None
    memo = kept.get(MEMO) or kept.setdefault(MEMO, TrustMemo())
    try:
        found = conn.execute(_VERSION).fetchone()
    except sqlite3.OperationalError:  # not made on this connection yet, or rolled back
        found = None
    if found is None or found[0] is None or found[3] != memo.schema:
        try:
            memo.schema = _watch(conn)
            found = conn.execute(_VERSION).fetchone()
        except sqlite3.OperationalError:  # cannot be made now: judge afresh, keep nothing
            memo.schema, memo.version, memo.feeds = None, None, None
            memo.scopes, memo.index, memo.unscoped = {}, None, None
            return None
    trust, feeds, data, schema = found
    if (trust, data, schema) != memo.version:
        memo.version, memo.scopes, memo.index = (trust, data, schema), {}, None
        memo.unscoped = None
    if (feeds, data, schema) != memo.feeds:
        memo.feeds, memo.unscoped = (feeds, data, schema), None
    return memo


@attrs.frozen(eq=False)
class ScopeIndex:
    """Every stored certificate that gives its key a scope, at one version of the trust
    data, found by area."""

    valid: dict[str, Certificate]
    #: (area, subject), sorted
    by_area: tuple[tuple[str, str], ...]

    @classmethod
    def of(cls, valid: dict[str, Certificate]) -> "ScopeIndex":
        return cls(valid, tuple(sorted((cert.area, subject) for subject, cert in valid.items())))

    def overlapping(self, scope: str) -> set[str]:
        """The keys whose area lies inside ``scope`` or contains it."""
        inside = bisect.bisect_left(self.by_area, (scope,))
        end = bisect.bisect_left(self.by_area, (scope + "\uffff",))
        found = {subject for _, subject in self.by_area[inside:end]}
        for length in range(1, len(scope)):
            prefix = scope[:length]
            at = bisect.bisect_left(self.by_area, (prefix,))
            while at < len(self.by_area) and self.by_area[at][0] == prefix:
                found.add(self.by_area[at][1])
                at += 1
        return found


@attrs.define
class Authority:
    """Who may write about what, as this node's trust data says.

    What an author's chain gives is judged once per version of the trust data
    and kept with the connection (``trust_version``), so a request or a page
    pays for a chain only when a certificate, revocation, retirement, frozen
    feed, ``trust`` event or the pinned root changed since it was last judged.
    An instance also keeps what it has answered, as before: one admission judges
    an author alike throughout.
    """

    db: Any
    _scopes: dict[str, Certificate | None] = attrs.Factory(dict)
    _refusals: dict[str, Message | None] = attrs.Factory(dict)

    @property
    def root(self) -> str | None:
        return store.get_meta(self.db, "root_author")

    def scope(self, author: str) -> Certificate | None:
        """The author's certificate if its chain leads to the pinned root and no key in
        it certified the next after being revoked, else None (``refusal`` says why)."""
        if author not in self._scopes:
            self._scopes[author], self._refusals[author] = self._judged(
                trust_version(self.db), author)
        return self._scopes[author]

    def refusal(self, author: str) -> Message | None:
        """Why ``scope`` is None for a chain that leads to the root: a revocation voids it."""
        self.scope(author)
        return self._refusals.get(author)

    def index(self) -> ScopeIndex:
        """Every stored certificate's scope, as ``scope`` judges it now; made once per
        version of the trust data."""
        memo = trust_version(self.db)
        if memo is not None and memo.index is not None:
            return memo.index
        valid = {}
        for (subject,) in self.db.execute("select subject from certs").fetchall():
            cert = self._judged(memo, subject)[0]
            if cert is not None:
                valid[subject] = cert
        index = ScopeIndex.of(valid)
        if memo is not None:
            memo.index = index
        return index

    def unscoped(self) -> frozenset[str]:
        """Authors of feeds held here whom no stored certificate gives a scope (this
        node before enrolment, a voided chain, a copy taken in without trust data);
        read once per version of the trust data and of the feeds held."""
        memo = trust_version(self.db)
        if memo is not None and memo.unscoped is not None:
            return memo.unscoped
        valid = self.index().valid
        found = frozenset(row[0] for row in self.db.execute("select distinct author from feeds")
                          if row[0] not in valid)
        if memo is not None:
            memo.unscoped = found
        return found

    def _judged(self, memo: TrustMemo | None,
                author: str) -> tuple[Certificate | None, Message | None]:
        if memo is None:
            return self._judge(author)
        found = memo.scopes.get(author)
        if found is None:
            if len(memo.scopes) >= MAX_MEMO:
                memo.scopes.clear()
            found = memo.scopes[author] = self._judge(author)
        return found

    def _judge(self, author: str) -> tuple[Certificate | None, Message | None]:
        """(scope, refusal) of ``author`` from the stored chain: (None, None) for a chain
        that is broken or leads elsewhere, no revocation to name."""
        try:
            chain = chain_of(self.db, author)
            if not self._rooted(chain):
                return None, None
            refusal = void_reason(self.db, chain)
        except (TrustError, InvalidInput):  # a stored chain that no longer reads
            return None, None
        return (chain[0] if refusal is None else None), refusal

    def rooted(self, author: str) -> bool:
        """Whether the stored chain is well formed and ends at the pinned root, revoked
        issuers or not: a certificate this node keeps rather than replaces."""
        try:
            return self._rooted(chain_of(self.db, author))
        except (TrustError, InvalidInput):
            return False

    def _rooted(self, chain: list[Certificate]) -> bool:
        validate_chain(chain)
        return chain[-1].subject == self.root

    def is_ancestor(self, ancestor: str, author: str) -> bool:
        return any(c.issuer == ancestor for c in chain_of(self.db, author))

    def forget(self) -> None:
        self._scopes.clear()
        self._refusals.clear()
