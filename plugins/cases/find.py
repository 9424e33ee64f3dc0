"""Finding cases by a petitioner's name or ID number, without unsealing anything.

Events carry petitioners only as salted digests. A node that holds the clear
values (its vault) finds a case by looking up the values equal to the query
(``Vault.digests_of_value``), then the petitioner rows sealed with one of
those digests. An ID number is also found through the 同人 tags this node can
make: ``match_tag`` under its own ``match_key``, which finds its own
registrations, and at the county at the root of the tree, whose key makes the
jurisdiction tags (``tags``), every case of the jurisdiction it has tagged.
No other node holds a key that tests an ID number against a tag, so elsewhere
a case registered by another node is found only where its clear values were
released here. Every search is written to the access log.
"""

from __future__ import annotations

import attrs

from xinfang.core import sealing
from xinfang.core.errors import InvalidInput
from xinfang.core.i18n import N_, Message
from xinfang.core.node import Node

from . import api, idnumber
from .views import ENTITY

#: how a case was found: by a clear value this node holds, or by a tag under its key
BY_NAME, BY_ID, BY_TAG = "name", "id_number", "id_tag"


@attrs.frozen
class Found:
    case: api.Case
    by: str

    def to_dict(self) -> dict:
        return {**self.case.to_dict(), "found_by": self.by}


def digests_of(node: Node, value: str) -> list[str]:
    """Digests of the clear values equal to ``value`` that this node holds, checked."""
    return node.vault.digests_of_value(value)


def find_cases(node: Node, name: str | None = None, id_number: str | None = None) -> list[Found]:
    """Cases whose petitioners have this name or this ID number (give exactly one)."""
    if (name is None) == (id_number is None):
        raise InvalidInput(N_("give one of --name or --id-number (only one)"))
    matched: dict[str, str] = {}
    if name is not None:
        value = name.strip()
        if not value:
            raise InvalidInput(N_("--name is empty: write the petitioner's name"))
        _collect(node, matched, "name_seal", digests_of(node, value), BY_NAME)
        what = Message(N_("searched by name"))
    else:
        value = idnumber.normalise(id_number)
        _collect(node, matched, "id_seal", digests_of(node, value), BY_ID)
        _collect(node, matched, "tag", [sealing.match_tag(node.match_key, value)], BY_TAG,
                 table="case_tags")
        what = Message(N_("searched by ID number"))
    node.log_access(ENTITY, "*", what.stored())
    if not matched:
        return []
    marks = ",".join("?" * len(matched))
    rows = node.db.query(f"select * from cases where id in ({marks}) order by received, id",
                         list(matched))
    return [Found(api._row_to_case(node, row), matched[row["id"]]) for row in rows]


def _collect(node: Node, matched: dict[str, str], column: str, values: list[str],
             by: str, table: str = "case_petitioners") -> None:
    if not values:
        return
    marks = ",".join("?" * len(values))
    for (case_id,) in node.db.execute(
            f"select distinct case_id from {table} where {column} in ({marks})", values):
        matched.setdefault(case_id, by)
