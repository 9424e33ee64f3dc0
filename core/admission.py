"""One path for every event into the log.

Local writes (``Node.append_many``), bundle import and HTTP pages (the sync
layer's ``apply_page``) pass each event through ``Admission.admit``; trusted
copies (``Node.ingest``: a backup, a test's reference fold) pass its
signature and plugin checks and ``accept``. The checks, in one place, in this
order, each a pure function of the event, its author's chain, the trust data
and the views held, never of this machine's clock:

1. already held (the same id at the same place): a duplicate, nothing to do;
2. the signature;
3. the author's certificate chain leads to the pinned root, and its scope
   contains the event's area (the node's own events need no certificate: a
   village registers cases before it is enrolled); a department's certificate
   (one with a filter, ``scope.Filter``) also lets it write only the records its
   filter passes, judged from this log (``scope.Judge.refusal``), and so does
   this node's own filter, for a draft (``validate``) as for an arrival;
4. the event is for this node's scope;
5. the author's key was not revoked before it, and its feed is not frozen;
6. a second event at one (author, epoch, seq) is a fork: kept as evidence,
   and the feed frozen;
7. plugin validation, for an event an installed plugin handles (one that no
   plugin handles is not judged but *held* by the fold);
8. the author's hash chain: whole feeds link event by event, feeds seen
   through a scope filter continue the range the page declares (on a
   department's node, every feed but its own is seen through its filter).

A refused event goes to ``quarantine`` with its reason; an admitted one is
stored and folded in the caller's transaction: at once, or inside ``batch``
with the rest of the page (``page_fold.apply_page``), which gives the same views.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from typing import Iterator, Sequence

from . import fold, i18n, page_fold, signatures, store
from .authority import Authority
from .errors import InvalidEvent
from .event import Event
from .i18n import N_, Message
from .kernel import validate as validate_body
from .scope import Judge, in_scope

#: what ``check`` says of an event already held; never stored, so never translated
DUPLICATE = "duplicate"


def validate(node, event) -> None:
    """Plugin and kernel checks of a draft or an arrived event; ``InvalidEvent``.

    A draft also passes this node's own department filter, if it has one.
    """
    if not isinstance(event, Event):
        cert = node.certificate
        refusal = cert is not None and cert.only is not None and Judge(
            node.db, cert.only).refusal(event.entity, event.entity_id, event.body)
        if refusal:
            raise InvalidEvent(refusal)
    registry = node.registry
    if registry.unhandled(event) is not None:
        return  # held: no installed plugin can judge it, and none may refuse it
    entity_type = registry.entity_type(event.entity)
    if entity_type.lifecycle_entity:
        validate_body(registry, event, node.db)
    node.pm.hook.xinfang_validate_event(event=event, node=node)


def now() -> str:
    """When a refusal was recorded: bookkeeping for people, never a reason."""
    return dt.datetime.now().isoformat(timespec="seconds")


class Admission:
    """Admits events into one node's log inside one transaction."""

    #: whether ``batch`` folds a page at a time; False folds each event as it is admitted,
    #: the reference the page fold is held to (benchmarks and tests set it)
    page_fold = True

    def __init__(self, node, context: fold.FoldContext | None = None, peer: str | None = None):
        self.node = node
        self.db = node.db
        self.context = context or node.context
        self.authority = Authority(node.db)
        self.peer = peer
        info = node.info
        self.own_scope, self.me = info.area, info.author
        cert = node.certificate
        #: this node's department filter: then it holds no feed but its own whole
        self.own_only = cert.only if cert is not None and cert.subject == self.me else None
        self._judges: dict = {}
        #: events admitted inside ``batch`` and not folded yet
        self._unfolded: list[Event] | None = None
        #: (author, epoch) -> (seq, head) of feeds read or written inside ``batch``
        self._feeds: dict[tuple[str, int], tuple[int, str | None]] = {}
        #: whether the quarantine may hold an event admitted now (None: not asked yet)
        self._quarantined: bool | None = None
        #: (bytes, signature) of arrivals whose signatures ``verify_ahead`` found good
        self._verified: frozenset[tuple[bytes, bytes]] = frozenset()

    def verify_ahead(self, events: Sequence[Event]) -> None:
        """Check the signatures of a page's new events on every core before admitting
        them; those at or below their feed's head here (held already, or a fork) are
        left to ``check``, which finds a duplicate before it looks at a signature."""
        heads: dict[tuple[str, int], int] = {}
        for event in events:
            if (event.author, event.epoch) not in heads:
                heads[(event.author, event.epoch)] = store.feed_head(
                    self.db, event.author, event.epoch)[0]
        self._verified = signatures.valid(
            [e for e in events if e.seq > heads[(e.author, e.epoch)]])

    @contextlib.contextmanager
    def batch(self) -> Iterator["Admission"]:
        """Admit a page: what is accepted inside is folded on leaving, a page at a time.

        Checks read the log, the trust data and what control events fold
        (exclusions, frozen feeds), never other views, so deferring the fold of
        the other events changes no answer: control events fold where they stand,
        and so does a fork, each after what came before them. On an error
        nothing is folded and the caller's transaction is rolled back.
        """
        if not self.page_fold or self._unfolded is not None:
            yield self
            return
        self._unfolded = []
        try:
            yield self
            self.fold_admitted()
        finally:
            self._unfolded, self._feeds = None, {}

    def fold_admitted(self) -> None:
        """Fold what ``batch`` has admitted so far."""
        if self._unfolded:
            events, self._unfolded = self._unfolded, []
            page_fold.apply_page(self.context, events)

    def check(self, event: Event, declared: tuple[int, int] | None = None,
              local: bool = False) -> str | None:
        """Why ``event`` may not enter this log, ``DUPLICATE``, or None.

        ``local`` is for an event this node has just signed, in this
        transaction, from a draft that ``validate`` passed, at the next place of
        its own feed: its signature, plugin checks and chain link hold by
        construction and are not repeated.

        A reason is the language-independent text the quarantine keeps and a
        peer is told (``i18n.stored``); show it with ``i18n.show``.
        """
        reason = self._check(event, declared, local)
        return None if reason is None else i18n.stored(reason)

    def _check(self, event: Event, declared: tuple[int, int] | None,
               local: bool) -> str | Message | None:
        db = self.db
        stored = None if local else self._held_at(event)
        if stored and stored[0] == event.id:
            return DUPLICATE
        if not local and (event.raw, event.signature) not in self._verified \
                and not event.signature_valid():
            return Message(N_("bad signature: the event's signature does not verify"))
        own = event.author == self.me  # its scope is this node's own area
        cert = None if own else self.authority.scope(event.author)
        if cert is None and not own:
            return self.authority.refusal(event.author) or Message(
                N_("unknown author: no certificate chain to the trusted root"))
        scope = cert.area if cert else self.own_scope
        name = cert.name if cert else Message(N_("this node"))
        if not event.area.startswith(scope):
            return Message(N_("outside jurisdiction: area {area} is not within the scope "
                              "{scope} of author {name}"), area=event.area, scope=scope, name=name)
        only = cert.only if cert else self.own_only
        if only is not None:
            judge = self._judges.setdefault(only, Judge(db, only))
            refusal = judge.refusal(event.entity, event.entity_id, event.body)
            if refusal is not None:
                return refusal
        if not in_scope(event.entity, event.area, self.own_scope):
            return Message(N_("not for this node: area {area} is not within this node's "
                              "scope {scope}"), area=event.area, scope=self.own_scope)
        if self.context.excluded(event):
            return fold.excluded_reason(db, event.author, event.epoch, event.seq)
        if stored:
            self.freeze(event, name)
            return Message(N_("fork: {name} signed two different events at epoch {epoch}, "
                              "seq {seq}; both are kept as evidence and the author's feed is "
                              "frozen"), name=name, epoch=event.epoch, seq=event.seq)
        if not local:
            try:
                validate(self.node, event)
            except InvalidEvent as exc:
                return Message(N_("invalid: {reason}"), reason=exc.message)
        if local:
            return None
        whole = own or (scope.startswith(self.own_scope) and self.own_only is None)
        return self._chain(event, whole, name, declared)

    def _held_at(self, event: Event) -> tuple[str] | None:
        """The id of the event this log holds at the event's place, if any: none past
        the feed's head (``feeds.seq`` is the highest seq ``insert_event`` stored)."""
        if self._unfolded is not None and event.seq > self._feed(event.author, event.epoch)[0]:
            return None
        return self.db.execute("select id from events where author = ? and epoch = ? and "
                               "seq = ?", [event.author, event.epoch, event.seq]).fetchone()

    def _feed(self, author: str, epoch: int) -> tuple[int, str | None]:
        """``store.feed_head``, kept in memory inside ``batch``."""
        if self._unfolded is None:
            return store.feed_head(self.db, author, epoch)
        if (author, epoch) not in self._feeds:
            self._feeds[(author, epoch)] = store.feed_head(self.db, author, epoch)
        return self._feeds[(author, epoch)]

    def _chain(self, event: Event, whole: bool, name: str | Message,
               declared: tuple[int, int] | None) -> Message | None:
        db = self.db
        seq, head = self._feed(event.author, event.epoch)
        if whole:
            if event.seq != seq + 1:
                return Message(N_("gap: the feed of {name} should go on at seq {expected}, "
                                  "seq {seq} arrived"), name=name, expected=seq + 1, seq=event.seq)
            if event.prev != head:
                return Message(N_("broken chain: the event before seq {seq} is not seq {before}"),
                               seq=event.seq, before=seq)
            return None
        held = frontier_of(db, event.author, event.epoch)
        if declared is None or not declared[0] < event.seq <= declared[1]:
            return Message(N_("undeclared: seq {seq} of {name} is outside the range this page "
                              "declares"), name=name, seq=event.seq)
        if declared[0] > held:
            return Message(N_("gap: this page continues the feed of {name} from seq {start}, "
                              "this node holds it only up to seq {held}"),
                           name=name, start=declared[0], held=held)
        if event.seq <= held:
            return Message(N_("out of order: seq {seq} of {name} is already below this node's "
                              "frontier"), name=name, seq=event.seq)
        before = db.execute("select id from events where author = ? and epoch = ? and seq = ?",
                            [event.author, event.epoch, event.seq - 1]).fetchone()
        if before and event.prev != before[0]:
            return Message(N_("broken chain: the event before seq {seq} is not seq {before}"),
                           seq=event.seq, before=event.seq - 1)
        return None

    def check_stored(self, event: Event) -> str | None:
        """``DUPLICATE`` if the log holds ``event`` already, else None."""
        row = self.db.execute("select 1 from events where id = ?", [event.id]).fetchone()
        return DUPLICATE if row else None

    def accept(self, event: Event, local: bool = False) -> None:
        """Store and fold an event that passed ``check`` (inside ``batch``: fold it with
        the page, or at once with what came before it if it is a control event)."""
        if store.insert_event(self.db, event) and (event.author, event.epoch) in self._feeds:
            seq, _ = self._feeds[(event.author, event.epoch)]
            if event.seq > seq:
                self._feeds[(event.author, event.epoch)] = (event.seq, event.id)
        if not local:  # the node's own clock stamped a local event
            self.node.clock.observe(event.hlc)
        if self._unfolded is None:
            fold.apply(self.context, event)
        elif event.entity in self.node.registry.control_entities():
            self.fold_admitted()
            fold.apply(self.context, event)
        else:
            self._unfolded.append(event)

    def admit(self, event: Event, declared: tuple[int, int] | None = None,
              local: bool = False) -> str | None:
        """Check and, if good, accept; returns what ``check`` returned."""
        reason = self.check(event, declared, local)
        if reason is None:
            self.accept(event, local)
            if not local and self._may_be_quarantined():
                # an event once refused may be good now that its chain is
                self.db.execute("delete from quarantine where event_id = ?", [event.id])
        elif reason != DUPLICATE:
            self.quarantine(event, reason)
        return reason

    def _may_be_quarantined(self) -> bool:
        """False while the quarantine is known to be empty: nothing to take out of it."""
        if self._quarantined is None:
            self._quarantined = self.db.execute(
                "select exists (select 1 from quarantine)").fetchone()[0] == 1
        return self._quarantined

    def quarantine(self, event: Event, reason: str | Message) -> None:
        """Keep a refused event with why, in the language-independent form."""
        self._quarantined = True
        self.db.execute(
            "insert into quarantine (event_id, author, epoch, seq, raw, sig, reason, peer, at) "
            "values (?,?,?,?,?,?,?,?,?) on conflict (event_id) do update set "
            "reason = excluded.reason, peer = excluded.peer, at = excluded.at",
            [event.id, event.author, event.epoch, event.seq, event.raw, event.signature,
             i18n.stored(reason), self.peer, now()])

    def freeze(self, event: Event, name: str | Message) -> None:
        """Freeze a forked feed from the fork point: its events there on leave the views.

        Which of two forked events arrived first differs between nodes; taking
        both branches out from the fork point on makes every node that has
        seen the fork hold the same state. The log keeps every row.
        """
        self.fold_admitted()  # what came before the fork folds before the feed freezes
        self.db.execute("insert or ignore into frozen_feeds (author, epoch, seq, reason) "
                        "values (?,?,?,?)",
                        [event.author, event.epoch, event.seq,
                         Message(N_("frozen feed: {name} forked at seq {seq}"),
                                 name=name, seq=event.seq).stored()])
        if event.author == self.me:
            # This node forked itself (it was restored from a copy). It writes on in
            # a new epoch, which no one holds a frozen feed for.
            if self.node.info.epoch == event.epoch:
                self.node.new_epoch()
            return
        self.context.exclusions_changed(event.author)
        self.context.drain()

    def take_fork_evidence(self, first: Event, second: Event) -> None:
        """Freeze a feed on proof from elsewhere: two valid signatures on one position."""
        same_place = ((first.author, first.epoch, first.seq)
                      == (second.author, second.epoch, second.seq))
        cert = self.authority.scope(first.author)
        if (not same_place or first.id == second.id or cert is None
                or not first.signature_valid() or not second.signature_valid()):
            return  # not evidence of anything: ignored, as a forged claim must be
        if self.db.execute("select 1 from frozen_feeds where author = ? and epoch = ?",
                           [first.author, first.epoch]).fetchone():
            return
        for event in (first, second):
            self.quarantine(event, Message(N_("fork: {name} signed two different events at "
                                              "epoch {epoch}, seq {seq}"),
                                           name=cert.name, epoch=event.epoch, seq=event.seq))
        self.freeze(first, cert.name)


def frontier_of(db, author: str, epoch: int) -> int:
    row = db.execute("select max(seq, covered) from feeds where author = ? and epoch = ?",
                     [author, epoch]).fetchone()
    return row[0] if row else 0
