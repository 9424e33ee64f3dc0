"""Recomputing a report where it was not computed: a temporary copy of a scope.

``scoped_copy`` holds what the submitting office held (its scope's events, each
feed up to the submission's frontier) folded afresh, so any report, whichever
plugin computes it, is recomputed there exactly as the office computed it.
"""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path
from typing import Iterator

from xinfang.core import scope as scopes, store
from xinfang.core.node import DB_NAME, Node

from . import approval as ap


@contextlib.contextmanager
def scoped_copy(node, area: str, limit: dict[tuple[str, int], int] | None) -> Iterator[Node]:
    """A temporary node holding ``node``'s events of ``area``'s scope (each feed up to
    ``limit``'s sequence number, when given), folded afresh.

    The copy keeps this node's identity, trust data (certificates, fork evidence)
    and plugins, so it folds those events exactly as a rebuild here would; report
    records are left out (they change no figure). Nothing of this node is written.
    """
    with tempfile.TemporaryDirectory(prefix="xinfang-recompute-") as directory:
        db = store.open_database(Path(directory) / DB_NAME, create=True)
        try:
            with db.atomic():
                for key, value in node.db.execute("select key, value from meta"):
                    if key != "match_key" and not key.startswith("vault_key:"):
                        store.set_meta(db, key, value)
                store.set_meta(db, "refold_needed", "1")
                for table in ("certs", "frozen_feeds"):
                    rows = node.db.execute(f"select * from {table}").fetchall()
                    if rows:
                        marks = ",".join("?" * len(rows[0]))
                        db.conn.executemany(f"insert into {table} values ({marks})", rows)
                columns = ("id, author, epoch, seq, prev, order_key, type, entity, entity_id, "
                           "area, raw, sig")
                rows = node.db.execute(
                    f"select {columns} from events where {scopes.SQL} and entity != :report",
                    {"scope": area, "report": ap.ENTITY}).fetchall()
                if limit is not None:
                    rows = [r for r in rows if r[3] <= limit.get((r[1], r[2]), 0)]
                db.conn.executemany(f"insert into events ({columns}) values "
                                    f"({','.join('?' * 12)})", rows)
        finally:
            db.conn.close()
        copy = Node.open(Path(directory), pm=node.pm)  # opening folds every event anew
        try:
            yield copy
        finally:
            copy.close()
