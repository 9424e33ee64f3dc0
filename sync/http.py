"""HTTP sync: ``xinfang serve`` on a parent, ``xinfang sync`` on a child.

One endpoint, ``POST /v1/sync``, takes a sealed envelope (see ``envelope``):
signed by the calling node, encrypted to the server, with a timestamp and a
random id the server remembers, so a replayed request is refused. The server
answers only within the caller's certified scope, in an envelope sealed to
the caller. Operations are stateless: the child sends its frontier with
every pull and the server reports its own with every push, so a connection
cut at any moment resumes where the frontiers stand.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.error
import urllib.request
from typing import Any, Callable

from http import HTTPStatus
from urllib.parse import parse_qsl

import attrs

from xinfang.core import keys
from xinfang.core.certs import Certificate, chain_from_wire, chain_to_wire
from xinfang.core.errors import Explained, InvalidInput, XinfangError
from xinfang.core.i18n import N_, _
from xinfang.core.routes import Request, Response
from xinfang.core.node import Node

from . import envelope, peers, receive, send, wire
from .trust import Authority, TrustError, admit, certificate, chain_of, own_certificate

PATH = "/v1/sync"
MAX_SKEW_SECONDS = 300
MAX_REQUEST_BYTES = 16 * 1024 * 1024
#: the status lines of the refusals
BAD_REQUEST, UNAUTHORIZED, FORBIDDEN = "400 Bad Request", "401 Unauthorized", "403 Forbidden"
NOT_FOUND, CONFLICT, TOO_LARGE = "404 Not Found", "409 Conflict", "413 Payload Too Large"


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


#: who the request being served came from and what it did, for the request log
_NOTE = threading.local()


class _Refused(Explained):
    """A request refused with an HTTP status; the message is rendered in the server's
    language when the answer is written."""

    def __init__(self, status: str, message: str, **args):
        super().__init__(message, **args)
        self.status = status


@attrs.define
class NodeApp:
    """The node's WSGI application: every registered route, one lock.

    SQLite has one writer and the node one connection, so requests are
    served one at a time; a handler's ``XinfangError`` is a 400 with its
    message, never a 500.
    """

    node: Node
    log: Callable[[str], None] | None = None
    lock: threading.Lock = attrs.Factory(threading.Lock)

    def __call__(self, environ, start_response):
        _NOTE.peer, _NOTE.detail = None, ""
        try:
            status, headers, data = self._serve(environ)
        except (_Refused, XinfangError) as exc:
            status = getattr(exc, "status", BAD_REQUEST)
            _NOTE.detail = _NOTE.detail or str(exc)
            data = json.dumps({"error": str(exc)}, ensure_ascii=False).encode("utf-8")
            headers = [("Content-Type", "application/json; charset=utf-8")]
        if self.log is not None:  # one line: who, what, the answer, what moved
            self.log(f"{peers.now()} {_NOTE.peer or environ.get('REMOTE_ADDR') or '?'} "
                     f"{environ.get('REQUEST_METHOD')} {environ.get('PATH_INFO')} "
                     f"{status.split()[0]} {_NOTE.detail}".rstrip())
        start_response(status, [*headers, ("Content-Length", str(len(data)))])
        return [data]

    def _serve(self, environ):
        path, method = environ.get("PATH_INFO") or "/", environ.get("REQUEST_METHOD", "GET")
        route = self.node.registry.routes_by_path.get(path)
        if route is None or method not in route.methods:
            known = _(", ").join(" ".join((*r.methods, r.path))
                                 for r in self.node.registry.routes.values())
            raise _Refused(NOT_FOUND, N_("this node does not serve {method} {path}; it serves: "
                                         "{known}"), method=method, path=path, known=known)
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            raise _Refused(BAD_REQUEST, N_("Content-Length is not a number")) from None
        if length > MAX_REQUEST_BYTES:
            raise _Refused(TOO_LARGE,
                           N_("the request is {length} bytes, over the limit of {limit}"),
                           length=length, limit=MAX_REQUEST_BYTES)
        request = Request(method, path, dict(parse_qsl(environ.get("QUERY_STRING", ""))),
                          {k[5:].replace("_", "-").lower(): v for k, v in environ.items()
                           if k.startswith("HTTP_")},
                          environ["wsgi.input"].read(length) if length else b"",
                          environ.get("REMOTE_ADDR"))
        with self.lock:
            response = route.handler(self.node, request)
        return (f"{response.status} {HTTPStatus(response.status).phrase}",
                [("Content-Type", response.content_type), *response.headers], response.data)


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
        node = self.node
        try:
            opened = envelope.open_(node.keys, body, "request")
        except envelope.EnvelopeError as exc:
            raise _Refused(BAD_REQUEST, N_("request refused: {error}"), error=exc.message) from None
        header, payload = opened.header, opened.payload
        if not isinstance(payload, dict):
            raise _Refused(BAD_REQUEST,
                           N_("the request body is not a map of an operation and its values"))
        sent = header.get("sent")
        if type(sent) is not int or abs(self.clock() * 1000 - sent) > MAX_SKEW_SECONDS * 1000:
            raise _Refused(UNAUTHORIZED, N_("the request's timestamp is more than {minutes} "
                                            "minutes from the server's clock; check the "
                                            "client's clock"), minutes=MAX_SKEW_SECONDS // 60)
        caller = header["from"]
        with node.db.atomic():
            if node.db.execute("select 1 from seen_envelopes where id = ?",
                               [header["id"]]).fetchone():
                raise _Refused(CONFLICT, N_("a replayed request was refused (its nonce was "
                                            "already used)"))
            node.db.execute("insert into seen_envelopes (id, sender, at) values (?,?,?)",
                            [header["id"], caller, peers.now()])
            chain = _chain_parse(payload.get("chain", []))
            if chain and chain[0].subject == caller:
                admit(node.db, chain)
        cert = Authority(node.db).scope(caller)
        _NOTE.peer = cert.name if cert is not None else keys.fingerprint(caller)
        mine = own_certificate(node)
        if cert is None or not (cert.area.startswith(mine.area) and cert.subject != mine.subject):
            raise _Refused(FORBIDDEN, N_("the caller is not a certified node below this one"))
        result = self.dispatch(cert, payload)
        return envelope.seal(node.keys, caller, cert.encryption, "response", result)

    def dispatch(self, caller: Certificate, payload: dict[str, Any]) -> dict[str, Any]:
        node, op = self.node, payload.get("op")
        scope = payload.get("area") or caller.area
        if not isinstance(scope, str) or not scope.startswith(caller.area):
            raise _Refused(FORBIDDEN, N_("{name} may read only its own scope {area}, not "
                                         "“{scope}”"),
                           name=caller.name, area=caller.area, scope=scope)
        reports = peers.refusals_to_report(node, caller.subject)
        if op == "hello":
            theirs = wire.frontier_from_wire(payload.get("frontier", []))
            pending = send.count_missing(node, scope, theirs)
            result = {"chain": _chain_wire(node.db, node.info.author),
                      "frontier": wire.frontier_to_wire(wire.frontier(node.db)),
                      "pending": pending, "refused": reports}
            _NOTE.detail = "hello: " + _("{count} events to send to the peer").format(
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
            _NOTE.detail = "pull: " + _("{count} events sent").format(
                count=len(page.events) if page else 0)
        elif op == "push":
            page = wire.Page.from_wire(payload.get("page"))
            outcome = receive.apply_page(node, page, peer=caller.subject)
            result = {"applied": outcome.applied, "duplicates": outcome.duplicates,
                      "refused": [[r.event_id, r.reason] for r in outcome.refused],
                      "frontier": wire.frontier_to_wire(wire.frontier(node.db))}
            _NOTE.detail = "push: " + _(
                "{applied} events taken, {duplicates} duplicates, {refused} refused").format(
                applied=outcome.applied, duplicates=outcome.duplicates,
                refused=len(outcome.refused))
            reports = []
        else:
            raise _Refused(BAD_REQUEST, N_("unknown operation “{op}”"), op=op)
        with node.db.atomic():
            peers.mark_reported(node, caller.subject, [r[0] for r in reports])
        return result


# -- client ----------------------------------------------------------------------


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
        node, parent = self.node, self.parent
        payload = {**payload, "chain": _chain_wire(node.db, node.info.author)}
        body = envelope.seal(node.keys, parent.subject, parent.encryption, "request", payload,
                             extra={"sent": int(time.time() * 1000)})
        request = urllib.request.Request(self.url.rstrip("/") + PATH, data=body, method="POST",
                                         headers={"Content-Type": "application/octet-stream"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                reply = response.read()
        except urllib.error.HTTPError as exc:
            try:
                message = json.loads(exc.read().decode("utf-8"))["error"]
            except (ValueError, KeyError, TypeError, OSError, http.client.HTTPException):
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
        try:
            opened = envelope.open_(node.keys, reply, "response")
            if opened.header["from"] != parent.subject or not isinstance(opened.payload, dict):
                raise envelope.EnvelopeError(N_("it was not signed by this node's parent"))
        except envelope.EnvelopeError as exc:
            raise SyncError(N_("the answer from {url} is not a sync answer from the parent "
                               "{name} ({error}); check that --url points at the `xinfang serve` "
                               "of this node's parent"), url=self.url, name=parent.name,
                            error=exc.message) from None
        return opened.payload

    def sync(self, progress: Callable[[int, int], None] | None = None,
             max_rounds: int = 20) -> SyncSummary:
        """Push and pull pages until neither side has anything the other lacks."""
        node, parent = self.node, self.parent
        pushed = pulled = refused_here = refused_there = 0
        for round_ in range(1, max_rounds + 1):
            hello = self.call({"op": "hello",
                               "frontier": wire.frontier_to_wire(wire.frontier(node.db))})
            self._reports(hello)
            theirs = wire.frontier_from_wire(hello["frontier"])
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
                    theirs = wire.frontier_from_wire(result["frontier"])
                    peers.record_ack(node, parent.subject, theirs, "http")
                pushed += result["applied"]
                moved += result["applied"]
                refused_there += len(result["refused"])
                done += len(page.events)
                if progress:
                    progress(done, total)
            while True:
                reply = self.call({"op": "pull",
                                   "frontier": wire.frontier_to_wire(wire.frontier(node.db))})
                self._reports(reply)
                if reply["page"] is None:
                    break
                page = wire.Page.from_wire(reply["page"])
                outcome = receive.apply_page(node, page, peer=parent.subject)
                pulled += outcome.applied
                moved += outcome.applied
                refused_here += len(outcome.refused)
                done += len(page.events)
                if progress:
                    progress(done, max(total, done))
                if not page.events or outcome.applied == 0:
                    break
            if moved == 0:
                return SyncSummary(pushed, pulled, refused_here, refused_there, round_)
        return SyncSummary(pushed, pulled, refused_here, refused_there, max_rounds)

    def _reports(self, reply: dict[str, Any]) -> None:
        if reply.get("refused"):
            with self.node.db.atomic():
                peers.record_refusals(self.node, self.parent.subject, reply["refused"])
