"""同人 tags: finding 重复访 without letting a node guess ID numbers.

An ID number has little entropy (region, birth date, serial), so a keyed
tag of it is safe only from nodes that lack the key. Two kinds of tag:

* **Own tags.** A registration's ``id_tag`` is ``match_tag(match_key, id)``
  under the registering node's own ``match_key``, random, made at ``init``
  and never sent anywhere (enrolment no longer hands the root's key down).
  Only that node, which holds the clear values anyway, can test a guess
  against it; its own repeats, before and after its enrolment, match on it.
* **Jurisdiction tags.** The county at the root of the tree is the one node
  that sees every ID number: the case plugin releases each petitioner's ID
  number (that field only) to it, sealed end to end (``xinfang_outgoing``).
  When it holds the ID numbers of a registration it did not make, it signs
  one ``case.tag`` event on the case with ``match_tag(root key, id)`` for each
  petitioner; its own registrations' ``id_tag`` is already under that key.
  ``case.tag`` events travel down with the case, so the township and the
  villages fold the same 重复访 across villages without holding the key.

The fold matches petitioners that share *any* tag (``case_tags``): tags made
under different keys never collide, so it need not know whose key made
which. A ``case.tag`` is accepted only from the pinned root (``check``), and
it is a *note* on the case (``Step.note``): it keeps the status and the
history, and is folded in the case's own order after its registration.
"""

from __future__ import annotations

import json
import re
from typing import Any, Iterable

import attrs

from xinfang.core import sealing, store
from xinfang.core.entities import Field, Step
from xinfang.core.errors import InvalidEvent
from xinfang.core.event import order_key_ceiling
from xinfang.core.hlc import Timestamp
from xinfang.core.i18n import N_
from xinfang.core.node import Draft, Node

from .views import ENTITY

#: the event type and its step: no state leads from it, so it is a note on the case
TYPE = f"{ENTITY}.tag"
TAG = Step("tag", "同人标记", (), None, (
    Field("tags", "同人标记", required=True,
          help=N_("petitioner number and tag pairs, as 0:<32 hex digits>, space-separated")),))
#: how many petitioners one case.tag may name (a registration lists far fewer)
MAX_TAGS = 10_000
_PAIR = re.compile(r"([0-9]|[1-9][0-9]{0,4}):([0-9a-f]{32})")


def encode(pairs: Iterable[tuple[int, str]]) -> str:
    """The ``tags`` value: ``ord:tag`` pairs by petitioner number, space-separated."""
    return " ".join(f"{ord_}:{tag}" for ord_, tag in sorted(pairs))


def decode(text: Any) -> list[tuple[int, str]] | None:
    """The pairs of a ``tags`` value, or None if it is not written as ``encode`` writes it."""
    if not isinstance(text, str) or not text:
        return None
    pairs = []
    for part in text.split(" "):
        found = _PAIR.fullmatch(part)
        if found is None:
            return None
        pairs.append((int(found[1]), found[2]))
    ords = [ord_ for ord_, _ in pairs]
    if len(pairs) > MAX_TAGS or ords != sorted(set(ords)):
        return None
    return pairs


def root_of(node) -> str | None:
    """The pinned root's key: trust data, the same on every enrolled node."""
    return store.get_meta(node.db, "root_author")


def check(event, node) -> None:
    """A ``case.tag`` is the root's, well formed; raises ``InvalidEvent``.

    A pure function of the event and the pinned root, so it is refused on
    arrival (bundle, HTTP, ``Node.ingest``) however the events arrive. That
    the case exists and lists each petitioner named is the fold's to judge
    (a conflict otherwise), as for any step: the registration is another
    node's event and may arrive later. A node with no pinned root (not yet
    enrolled) does not judge the author, as ``kernel.author_of`` does not.
    """
    if decode(event.body.get("values", {}).get("tags")) is None:
        raise InvalidEvent(N_("{type}: the tags are not petitioner number and tag pairs "
                              "(0:<32 lower-case hex digits>, in order, space-separated)"),
                           type=event.type)
    root = root_of(node)
    author = getattr(event, "author", None) or node.info.author
    if root is not None and author != root:
        raise InvalidEvent(N_("{type} is signed by {name}, not by the root of the trust tree: "
                              "only the root tags petitioners for the whole jurisdiction"),
                           type=event.type, name=node.author_name(author))


#: cases one ``append_many`` tags: what tagging holds at once (the cases' petitioners,
#: the drafts, their events and the fold's state of the cases) is one batch, however
#: many cases a sync brought (a first bundle of a village's 20,000 cases, say)
BATCH = 500


def untagged(node: Node, after: str = "", limit: int = -1, among: list[str] | None = None,
             ceiling: str | None = None) -> dict[str, list[tuple[int, str]]]:
    """Case -> (petitioner number, ID number digest) that the root holds in clear and
    may tag now: petitioners of registrations made by other nodes; at most ``limit``
    cases (-1: all), the first by case number after ``after``, of the cases ``among``
    (None: of every case).

    A case the root has tagged once is not tagged again, whatever became of
    that ``case.tag`` (a registration is never changed, so one is enough,
    and a retry could repeat on every sync). A registration stamped at or past
    ``ceiling`` (default: past the root's next stamp; a village's clock set
    ahead) waits until the root's clock passes it: a tag sorting before its
    registration would be a conflict, not a tag.
    """
    ceiling = ceiling or _ceiling(node)
    chosen = "" if among is None else "and p.case_id in (select value from json_each(:among)) "
    found: dict[str, list[tuple[int, str]]] = {}
    for case_id, ord_, digest in node.db.execute(
            "with batch as (select distinct p.case_id from case_petitioners p "
            "join cases c on c.id = p.case_id "
            "join vault v on v.digest = p.id_seal and v.entity_id = p.case_id "
            f"where p.case_id > :after {chosen}and c.author != :me and c.created_key < :ceiling "
            "and not exists (select 1 from events e where e.entity = 'case' and "
            "e.entity_id = p.case_id and e.type = :type and e.author = :me) "
            "order by p.case_id limit :limit) "
            "select p.case_id, p.ord, p.id_seal from case_petitioners p "
            "join vault v on v.digest = p.id_seal and v.entity_id = p.case_id "
            "where p.case_id in batch order by p.case_id, p.ord",
            {"me": node.info.author, "ceiling": ceiling, "type": TYPE, "after": after,
             "limit": limit, "among": json.dumps(among or [])}):
        found.setdefault(case_id, []).append((ord_, digest))
    return found


def _ceiling(node: Node) -> str:
    return order_key_ceiling(Timestamp(node.clock.read_wall(), 0))


def tag_jurisdiction(node: Node) -> list[str]:
    """At the root: sign a ``case.tag`` for every case whose ID numbers it now holds and
    has not tagged, ``BATCH`` cases at a time; return the case numbers. Anywhere else:
    nothing.

    It looks only at the cases that may have become taggable since it last
    looked (``Search``), not at every petitioner the root holds: at a root
    of millions that search would cost seconds after every page received.
    """
    if root_of(node) != node.info.author:
        return []
    search = Search.resume(node)
    ceiling = _ceiling(node)
    tagged: list[str] = []
    for start in range(0, len(search.cases), BATCH):
        batch = untagged(node, among=search.cases[start:start + BATCH], ceiling=ceiling)
        drafts = list(_drafts(node, batch))
        if drafts:
            node.append_many(drafts)
        tagged += [draft.entity_id for draft in drafts]
    search.keep(node, set(tagged), ceiling)
    return tagged


@attrs.frozen
class Search:
    """Where the root's tag search stands, in its ``meta`` (its own bookkeeping,
    never synced): the log and the vault up to the ``events.pos`` and vault rowid
    it has looked at (neither table loses a row, so both only grow), and the cases
    it looked at that may be tagged later without a new event or sealed value
    reaching them: a registration whose case is not folded (held) or stamped
    ahead of the root's clock.

    A case becomes taggable only when its registration arrives, a sealed ID
    number of it does, or one of those waits ends; so ``cases`` is every case
    the full search (``untagged`` over all) could tag now.
    """

    events: int
    vault: int
    cases: list[str]
    #: the marks and the waiting cases as ``meta`` held them when resumed
    stored: tuple[int, int, list[str]] = (0, 0, [])

    @classmethod
    def resume(cls, node: Node) -> "Search":
        db = node.db
        seen_events = int(store.get_meta(db, SEEN_EVENTS) or 0)
        seen_vault = int(store.get_meta(db, SEEN_VAULT) or 0)
        waiting = json.loads(store.get_meta(db, WAITING) or "[]")
        events = db.execute("select coalesce(max(pos), 0) from events").fetchone()[0]
        vault = db.execute("select coalesce(max(rowid), 0) from vault").fetchone()[0]
        # by the range of positions alone: the entity index would read every case event
        registered = [row[0] for row in db.execute(
            "select entity_id from events not indexed where pos > ? and pos <= ? and "
            "entity = 'case' and "
            "type = 'case.register' and author != ?", [seen_events, events, node.info.author])]
        sealed = [row[0] for row in db.execute(
            "select entity_id from vault where rowid > ? and rowid <= ?", [seen_vault, vault])]
        return cls(events, vault, sorted({*waiting, *registered, *sealed}),
                   (seen_events, seen_vault, waiting))

    def keep(self, node: Node, tagged: set[str], ceiling: str) -> None:
        """Move the marks on, keeping the cases looked at that wait (see the class)."""
        looked = [c for c in self.cases if c not in tagged]
        folded = dict(node.db.execute(
            "select id, created_key from cases where id in (select value from json_each(?))",
            [json.dumps(looked)]))
        waiting = [c for c in looked if c not in folded or folded[c] >= ceiling]
        if (self.events, self.vault, waiting) == self.stored:
            return  # nothing moved: no transaction (a commit is most of an idle look)
        with node.db.atomic():
            store.set_meta(node.db, SEEN_EVENTS, str(self.events))
            store.set_meta(node.db, SEEN_VAULT, str(self.vault))
            store.set_meta(node.db, WAITING, json.dumps(waiting))


#: ``meta`` keys of the root's tag search (``Search``)
SEEN_EVENTS, SEEN_VAULT, WAITING = "tags.seen_events", "tags.seen_vault", "tags.waiting"


def _drafts(node: Node, batch: dict[str, list[tuple[int, str]]]) -> Iterable[Draft]:
    key = node.match_key
    for case_id, wanted in batch.items():
        secrets = {s.digest: s.value for s in node.vault.of_entity(case_id, [d for _, d in wanted])}
        pairs = [(ord_, sealing.match_tag(key, secrets[digest])) for ord_, digest in wanted
                 if digest in secrets]
        area = node.db.execute("select area from cases where id = ?", [case_id]).fetchone()[0]
        if pairs:
            yield Draft(TYPE, ENTITY, case_id, area, {"values": {"tags": encode(pairs)}})
