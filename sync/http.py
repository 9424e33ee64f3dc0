"""HTTP sync: ``xinfang serve`` on a parent, ``xinfang sync`` on a child.

One endpoint, ``POST /v1/sync``, takes a sealed envelope (see ``envelope``):
signed by the calling node, encrypted to the server, with a timestamp and a
random id the server remembers while the timestamp is acceptable, so a
replayed request is refused. The server answers only a certified node below
it whose key is not revoked, only within its scope, in an envelope sealed to
the caller that names the request it answers. Operations are stateless: the
child sends its frontier with every hello and pull, and the server reports what
it holds of the child's feeds in every hello and of the page's feeds after every
push (``wire``: protocol 2; its whole frontier to a release-1 child), so a
connection cut at any moment resumes where the frontiers stand.
"""

from __future__ import annotations

import http.client
import io
import json
import time
import urllib.error
import urllib.request
from typing import Any, Callable


import attrs

from xinfang.core import keys
from xinfang.core.certs import Certificate, chain_from_wire, chain_to_wire
from xinfang.core.errors import InvalidInput, XinfangError
from xinfang.core.i18n import N_, _
from xinfang.core.routes import Request, Response
from xinfang.core.node import Node

from . import envelope, peers, receive, send, wire
from .server import BAD_REQUEST, CONFLICT, FORBIDDEN, NOTE, UNAUTHORIZED, Refused
from .server import MAX_REQUEST_BYTES, NodeApp  # noqa: F401 (imported from here too)
from .trust import Authority, TrustError, admit, certificate, chain_of, own_certificate

PATH = "/v1/sync"
MAX_SKEW_SECONDS = 300
#: how long a served request's id is kept against replay: twice the window, so a server
#: clock stepped back by up to the window does not make a forgotten request acceptable again
REPLAY_KEEP_SECONDS = 2 * MAX_SKEW_SECONDS


#: why a revoked or retired key is served nothing, by the kind of its ``revocations`` row
REVOKED = dict(revoke=N_("{name} ({fingerprint}) is refused: its key was revoked (trust.revoke) "
                         "after epoch {epoch} seq {seq}, so this node serves it nothing more; "
                         "the node must run `xinfang enroll rotate` and have its parent certify "
                         "the new key"),
               retire=N_("{name} ({fingerprint}) is refused: its key was retired (trust.retire) "
                         "after epoch {epoch} seq {seq}; the node syncs with its new key once "
                         "its parent has certified it"))


class SyncError(XinfangError):
    """The parent could not be reached, or refused the request."""


def _chain_wire(db, author: str) -> list[list[str]]:
    return chain_to_wire(chain_of(db, author))


def _chain_parse(data: Any) -> list[Certificate]:
    try:
        return chain_from_wire(data)
    except InvalidInput as exc:
        raise TrustError(N_("malformed certificate chain: {error}"), error=exc.message) from None


# -- server ----------------------------------------------------------------------


def sync_route(node: Node, request: Request) -> Response:
    """``POST /v1/sync``: one sealed request from a child, one sealed answer."""
    return Response(SyncEndpoint(node).handle(request.body),
                    content_type="application/octet-stream")


@attrs.define
class SyncEndpoint:
    """What the sync route does with one sealed request."""

    node: Node
    clock: Callable[[], float] = time.time

    def handle(self, body: bytes) -> bytes:
        """Open, authorise, serve; the answer names the request it answers (its envelope
        id, sealed and signed with the rest), so a relay cannot pass off an old answer.

        The caller is authorised from the envelope's header and credentials, before
        one byte of its payload is inflated or parsed."""
        callers: list[Certificate] = []
        header, payload = self.open(body, lambda header, credentials: callers.append(
            self.authorise(header, credentials)))
        result = {**self.dispatch(callers[0], payload), "request": header["id"]}
        return envelope.seal(self.node.keys, callers[0].subject, callers[0].encryption,
                             "response", result)

    def open(self, body: bytes, check: envelope.Check) -> tuple[dict[str, Any], dict[str, Any]]:
        """The request's header and payload, once it is whole, signed and ``check``ed."""
        try:
            opened = envelope.open_(self.node.keys, body, "request", check)
        except envelope.EnvelopeError as exc:
            raise Refused(BAD_REQUEST, N_("request refused: {error}"), error=exc.message) from None
        if not isinstance(opened.payload, dict):
            raise Refused(BAD_REQUEST,
                          N_("the request body is not a map of an operation and its values"))
        return opened.header, opened.payload

    def authorise(self, header: dict[str, Any], credentials: dict[str, Any]) -> Certificate:
        """The caller's certificate, if the request is in time, the caller a certified
        node below this one, its key not revoked and the request new; then the
        request's id is kept.

        Decided in one transaction, rolled back by any refusal, so a caller that is
        not a certified node below this one writes nothing: neither the certificates
        it offers (even genuine ones, of a node elsewhere in the tree) nor a replay
        row, with which any key could fill the table. A replay of a genuine request
        is still refused, since its id is kept before the answer is made.
        """
        sent = header.get("sent")
        if type(sent) is not int or abs(self.clock() * 1000 - sent) > MAX_SKEW_SECONDS * 1000:
            raise Refused(UNAUTHORIZED, N_("the request's timestamp is more than {minutes} "
                                           "minutes from the server's clock; check the "
                                           "client's clock"), minutes=MAX_SKEW_SECONDS // 60)
        chain = _chain_parse(credentials.get("chain", []) if isinstance(credentials, dict)
                             else credentials)
        node, caller = self.node, header["from"]
        with node.db.atomic():
            if chain and chain[0].subject == caller:
                admit(node.db, chain)
            cert = Authority(node.db).scope(caller)
            NOTE.peer = cert.name if cert is not None else keys.fingerprint(caller)
            mine = own_certificate(node)
            if cert is None or not (cert.area.startswith(mine.area)
                                    and cert.subject != mine.subject):
                raise Refused(FORBIDDEN, Authority(node.db).refusal(caller)  # a void chain
                              or N_("the caller is not a certified node below this one"))
            revoked = peers.revocation(node, caller)
            if revoked is not None:
                raise Refused(FORBIDDEN, REVOKED.get(revoked[0], REVOKED["revoke"]),
                              name=cert.name, fingerprint=keys.fingerprint(caller),
                              epoch=revoked[1], seq=revoked[2])
            if peers.request_seen(node, header["id"]):
                raise Refused(CONFLICT, N_("a replayed request was refused (its nonce was "
                                           "already used)"))
            peers.remember_request(node, header["id"], caller, header["sent"],
                                   int(self.clock() * 1000), REPLAY_KEEP_SECONDS * 1000)
        return cert

    def dispatch(self, caller: Certificate, payload: dict[str, Any]) -> dict[str, Any]:
        node, op = self.node, payload.get("op")
        scope = payload.get("area") or caller.area
        if not isinstance(scope, str) or not scope.startswith(caller.area):
            raise Refused(FORBIDDEN, N_("{name} may read only its own scope {area}, not "
                                        "“{scope}”"),
                          name=caller.name, area=caller.area, scope=scope)
        reports = peers.refusals_to_report(node, caller.subject)
        compact = wire.speaks_compact(payload)
        if op == "hello":
            theirs = wire.frontier_from_wire(payload.get("frontier", []))
            pending = send.count_missing(node, scope, theirs, peer=caller)
            result = {"chain": _chain_wire(node.db, node.info.author),
                      **wire.hello_frontier(node.db, theirs, payload.get("summary"), compact),
                      "pending": pending, "refused": reports}
            NOTE.detail = "hello: " + _("{count} events to send to the peer").format(
                count=pending)
        elif op == "pull":
            theirs = wire.frontier_from_wire(payload.get("frontier", []))
            page = next(iter(send.pages_for(node, scope, theirs,
                                            release=send.outgoing_rule(node, caller))), None)
            with node.db.atomic():
                peers.record_ack(node, caller.subject, theirs, "http")
                if page is not None:
                    peers.record_sent(node, caller.subject, len(page.events))
            result = {"page": page.to_wire() if page else None, "refused": reports}
            NOTE.detail = "pull: " + _("{count} events sent").format(
                count=len(page.events) if page else 0)
        elif op == "push":
            page = wire.Page.from_wire(payload.get("page"))
            outcome = receive.apply_page(node, page, peer=caller.subject)
            node.pm.hook.xinfang_received(node=node, applied=outcome.applied)
            held = wire.frontier_over(node.db, wire.feeds_of(page)) if compact else \
                wire.frontier(node.db)
            result = {"applied": outcome.applied, "duplicates": outcome.duplicates,
                      "refused": [[r.event_id, r.reason] for r in outcome.refused],
                      "frontier": wire.frontier_to_wire(held),
                      **({"v": wire.PROTOCOL} if compact else {})}
            NOTE.detail = "push: " + _(
                "{applied} events taken, {duplicates} duplicates, {refused} refused").format(
                applied=outcome.applied, duplicates=outcome.duplicates,
                refused=len(outcome.refused))
            reports = []
        else:
            raise Refused(BAD_REQUEST, N_("unknown operation “{op}”"), op=op)
        with node.db.atomic():
            peers.mark_reported(node, caller.subject, [r[0] for r in reports])
        return result


# -- client ----------------------------------------------------------------------


def _count(value: Any) -> bool:
    return type(value) is int and value >= 0


def _refusals(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(r, list) and len(r) == 2 and all(isinstance(x, str) for x in r)
        for r in value)


#: what each answer holds, checked before any of it is used, so an answer of another
#: shape (another release, a stolen parent key) is a named error, never a crash; the
#: frontier and the page are read by ``wire``, whose errors name what is wrong in them
ANSWERS = {"hello": {"frontier": lambda v: isinstance(v, list), "pending": _count,
                     "refused": _refusals},
           "push": {"applied": _count, "refused": _refusals,
                    "frontier": lambda v: isinstance(v, list)},
           "pull": {"page": lambda v: v is None or isinstance(v, dict), "refused": _refusals}}


@attrs.frozen
class SyncSummary:
    pushed: int
    pulled: int
    refused_here: int
    refused_there: int
    rounds: int


@attrs.define
class Client:
    node: Node
    url: str
    timeout: float = 30.0
    parent: Certificate | None = None

    def __attrs_post_init__(self) -> None:
        self.url = peers.check_url(self.url)  # before anything else: a bad address fails at once
        mine = own_certificate(self.node)
        self.parent = certificate(self.node.db, mine.issuer)
        if self.parent is None or mine.self_signed:
            raise SyncError(N_("this node has no parent to sync with: it is the root, or the "
                               "parent's certificate is missing"))

    def call(self, payload: dict[str, Any]) -> dict[str, Any]:
        request_id, body = self.request(payload)
        answer = self.answer(self.post(body), request_id)
        for field, fits in ANSWERS.get(payload.get("op"), {}).items():
            if field not in answer or not fits(answer[field]):
                raise self._invalid(payload["op"], field)
        return answer

    def _invalid(self, op: str, field: str) -> SyncError:
        return SyncError(N_("the answer of the parent {name} ({url}) to “{op}” has no "
                            "valid {field}, and nothing of it was taken; check that the "
                            "parent runs the same release of xinfang"),
                         name=self.parent.name, url=self.url, op=op, field=field)

    def request(self, payload: dict[str, Any]) -> tuple[str, bytes]:
        """The sealed request and its envelope id, which the answer must name. Every
        request says the protocol version this client reads (``wire.PROTOCOL``)."""
        node, parent = self.node, self.parent
        payload = {"v": wire.PROTOCOL, **payload,
                   "chain": _chain_wire(node.db, node.info.author)}
        body = envelope.seal(node.keys, parent.subject, parent.encryption, "request", payload,
                             extra={"sent": int(time.time() * 1000)})
        return envelope.read_header(io.BytesIO(body), len(body))[1]["id"], body

    def post(self, body: bytes) -> bytes:
        """The parent's answer to one sealed request, as bytes."""
        parent = self.parent
        request = urllib.request.Request(self.url.rstrip("/") + PATH, data=body, method="POST",
                                         headers={"Content-Type": "application/octet-stream"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return response.read()
        except urllib.error.HTTPError as exc:
            try:
                message = json.loads(exc.read().decode("utf-8"))["error"]
            except (ValueError, KeyError, TypeError, RecursionError, OSError,
                    http.client.HTTPException):
                message = exc.reason
            raise SyncError(N_("the parent {name} ({url}) refused the sync request (HTTP "
                               "{code}): {error}"), name=parent.name, url=self.url,
                            code=exc.code, error=str(message)) from None
        except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise SyncError(N_("cannot reach the parent {name} ({url}): {reason}; check that the "
                               "parent runs `xinfang serve` and that the address and the network "
                               "are right"), name=parent.name, url=self.url,
                            reason=str(reason)) from None

    def answer(self, reply: bytes, request_id: str) -> dict[str, Any]:
        """The payload of the parent's answer to the request ``request_id``.

        The parent seals and signs the id of the request it answers with the
        answer, so an answer recorded earlier (by a relay, a proxy, anyone on the
        path) and given back for another request is refused here, before any of it
        is applied or acknowledged.
        """
        parent = self.parent
        try:
            opened = envelope.open_(self.node.keys, reply, "response")
            if opened.header["from"] != parent.subject or not isinstance(opened.payload, dict):
                raise envelope.EnvelopeError(N_("it was not signed by this node's parent"))
        except envelope.EnvelopeError as exc:
            raise SyncError(N_("the answer from {url} is not a sync answer from the parent "
                               "{name} ({error}); check that --url points at the `xinfang serve` "
                               "of this node's parent"), url=self.url, name=parent.name,
                            error=exc.message) from None
        answered = opened.payload.get("request")
        if answered is None:
            raise SyncError(N_("the answer from the parent {name} ({url}) does not name the "
                               "request it answers: the parent runs an older release of "
                               "xinfang; upgrade it, then sync again"),
                            name=parent.name, url=self.url)
        if answered != request_id:
            raise SyncError(N_("the answer from {url} was made by the parent {name} for another "
                               "request, not this one: an old answer was replayed on the way, "
                               "and nothing of it was taken; check what stands between this "
                               "node and its parent (a proxy or relay), then sync again"),
                            url=self.url, name=parent.name)
        return opened.payload

    def sync(self, progress: Callable[[int, int], None] | None = None,
             max_rounds: int = 20) -> SyncSummary:
        """Push and pull pages until neither side has anything the other lacks."""
        node, parent = self.node, self.parent
        pushed = pulled = refused_here = refused_there = 0
        for round_ in range(1, max_rounds + 1):
            payload, known = self.hello_payload()
            hello = self.call(payload)
            self._reports(hello)
            theirs = self.their_frontier(hello, known)
            with node.db.atomic():
                peers.record_ack(node, parent.subject, theirs, "http")
            outgoing = list(send.pages_for(node, parent.area, theirs,
                                           release=send.outgoing_rule(node, parent)))
            total = sum(len(p.events) for p in outgoing) + hello["pending"]
            done = 0
            moved = 0
            for page in outgoing:
                result = self.call({"op": "push", "page": page.to_wire()})
                with node.db.atomic():
                    peers.record_sent(node, parent.subject, len(page.events))
                    peers.record_refusals(node, parent.subject, result["refused"])
                    told = wire.frontier_from_wire(result["frontier"])  # the page's feeds
                    theirs = {**theirs, **told} if result.get("v") == wire.PROTOCOL else told
                    peers.record_ack(node, parent.subject, theirs, "http")
                pushed += result["applied"]
                moved += result["applied"]
                refused_there += len(result["refused"])
                done += len(page.events)
                if progress:
                    progress(done, total)
            pulled_now = 0
            while True:
                reply = self.call({"op": "pull",
                                   "frontier": wire.frontier_to_wire(wire.frontier(node.db))})
                self._reports(reply)
                if reply["page"] is None:
                    break
                page = wire.Page.from_wire(reply["page"])
                outcome = receive.apply_page(node, page, peer=parent.subject)
                pulled += outcome.applied
                pulled_now += outcome.applied
                moved += outcome.applied
                refused_here += len(outcome.refused)
                done += len(page.events)
                if progress:
                    progress(done, max(total, done))
                if not page.events or outcome.applied == 0:
                    break
            node.pm.hook.xinfang_received(node=node, applied=pulled_now)
            if moved == 0:
                return SyncSummary(pushed, pulled, refused_here, refused_there, round_)
        return SyncSummary(pushed, pulled, refused_here, refused_there, max_rounds)

    def hello_payload(self) -> tuple[dict[str, Any], wire.Frontier]:
        """A hello: this node's frontier, and the digest of what the parent last said it
        holds of those feeds (``known``, returned too), so that an unchanged parent
        answers with the digest alone."""
        mine = wire.frontier(self.node.db)
        acked = peers.ack(self.node, self.parent.subject)
        known = {feed: acked[feed] for feed in mine if feed in acked}
        return {"op": "hello", "frontier": wire.frontier_to_wire(mine),
                "summary": wire.summary(known)}, known

    def their_frontier(self, hello: dict[str, Any], known: wire.Frontier) -> wire.Frontier:
        """What the parent holds of this node's feeds, from its answer to a hello.

        Protocol 2: the frontier it sent, or, sent empty with the digest of
        ``known``, ``known``; a frontier that does not match its digest is refused.
        An answer without ``"v"`` (release 1) holds the parent's whole frontier.
        """
        if hello.get("v") != wire.PROTOCOL:
            return wire.frontier_from_wire(hello["frontier"])
        digest = hello.get("summary")
        if not wire.is_summary(digest):
            raise self._invalid("hello", "summary")
        told = wire.frontier_from_wire(hello["frontier"])
        if not told and digest == wire.summary(known):
            return known
        if wire.summary(told) != digest:
            raise self._invalid("hello", "summary")
        return told

    def _reports(self, reply: dict[str, Any]) -> None:
        if reply.get("refused"):
            with self.node.db.atomic():
                peers.record_refusals(self.node, self.parent.subject, reply["refused"])
