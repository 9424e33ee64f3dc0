"""Reading the access log: who read whose identity, searched by it or changed an account.

``Node.log_access`` writes a row under the node's operator (the CLI's
``--operator``, the web session's user) each time a petitioner's identity is
shown, a search by identity is made, or a user account of the web view is
added, disabled, enabled or given a new password. This module is the one
reader: ``xinfang access-log`` (oldest first, everything) and the web view's
``/access-log`` page (newest first, a page at a time) call it with the same
filters. ``what`` is stored language-independent and read in the reader's
language.
"""

from __future__ import annotations

import math

import attrs

from .errors import InvalidInput
from .i18n import N_, show

#: rows a page of the web view's access log shows
PAGE_SIZE = 100
#: the ``entity`` of an account change (its ``entity_id`` is the user's name)
ACCOUNT = "user"


@attrs.frozen
class AccessEntry:
    """One row: when, who, which record (``entity``, ``entity_id``) and what was done."""

    at: str
    who: str
    entity: str
    entity_id: str
    #: in the reader's language
    what: str


@attrs.frozen
class AccessFilter:
    """Which rows: one case's (``case_id``), one operator's (``who``), or all."""

    case_id: str | None = attrs.field(default=None, converter=lambda v: v or None)
    who: str | None = attrs.field(default=None, converter=lambda v: v or None)

    def where(self) -> tuple[str, list[str]]:
        clauses, params = [], []
        if self.case_id:
            clauses.append("entity = 'case' and entity_id = ?")
            params.append(self.case_id)
        if self.who:
            clauses.append("who = ?")
            params.append(self.who)
        return ("where " + " and ".join(clauses) if clauses else ""), params


@attrs.frozen
class AccessPage:
    """One page of the log, newest first: its rows, which page, how many in all."""

    entries: tuple[AccessEntry, ...]
    number: int
    pages: int
    total: int


def entries(node, only: AccessFilter = AccessFilter(), newest_first: bool = False,
            limit: int | None = None, offset: int = 0) -> list[AccessEntry]:
    """The rows ``only`` lets through, in the order they were written (or the reverse)."""
    where, params = only.where()
    order = "desc" if newest_first else "asc"
    bounds = ""
    if limit is not None:
        bounds, params = " limit ? offset ?", [*params, limit, offset]
    rows = node.db.execute(f"select at, who, entity, entity_id, what from access_log {where} "
                           f"order by pos {order}{bounds}", params).fetchall()
    return [AccessEntry(at, who, entity, entity_id, show(what))
            for at, who, entity, entity_id, what in rows]


def count(node, only: AccessFilter = AccessFilter()) -> int:
    where, params = only.where()
    return node.db.execute(f"select count(*) from access_log {where}", params).fetchone()[0]


def page_number(text: str | None) -> int:
    """A page number as typed in an address (``?page=2``); none is the first page."""
    if text is None or text == "":
        return 1
    if not text.isascii() or not text.isdigit() or int(text) < 1:
        raise InvalidInput(N_("the page number “{value}” is not a whole number from 1 up"),
                           value=text)
    return int(text)


def read_page(node, only: AccessFilter = AccessFilter(), number: int = 1,
              size: int = PAGE_SIZE) -> AccessPage:
    """Page ``number`` (from 1) of the rows ``only`` lets through, newest first; a page
    past the last one is refused, saying how many there are."""
    total = count(node, only)
    pages = max(1, math.ceil(total / size))
    if number > pages:
        raise InvalidInput(N_("there is no page {number} of the access log for these "
                              "filters: the last one is page {pages}"), number=number,
                           pages=pages)
    found = entries(node, only, newest_first=True, limit=size, offset=(number - 1) * size)
    return AccessPage(tuple(found), number, pages, total)
