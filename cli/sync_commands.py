"""Commands that connect nodes: enrol, bundle, serve, sync, and what they refused."""

from __future__ import annotations

import contextlib
import re
import sys
import time
from pathlib import Path

import click

from xinfang.core import i18n, keys, quarantine, transports
from xinfang.core.errors import InvalidInput
from xinfang.core.i18n import N_, _
from xinfang.core.node import Draft
from xinfang.plugins import settlements
from xinfang.sync import envelope, peers, trust
from xinfang.sync.http import SyncError
from xinfang.sync.server import make_server

from .base import App, Group, command, listening, option, pass_app
from .output import echo, emit, json_option, progress_to, table


@click.group("enroll", cls=Group,
             help=N_("Enrolment: a new node asks its parent for a certificate."))
def enroll_group():
    pass


@enroll_group.command("request", help=N_("Write an enrolment request to carry to the parent."))
@option("--out", type=click.Path(path_type=Path),
        help=N_("File to write [default AREA.request]."))
@pass_app
def enroll_request(app: App, out):
    with app.open_node() as node:
        request = trust.make_request(node)
        path = out or Path(f"{node.info.area}.request")
        path.write_text(request.to_json(), encoding="utf-8")
    click.echo(_("Wrote the enrolment request {path}: take it to the parent node, which runs "
                 "`xinfang enroll sign {path}`").format(path=path))


@enroll_group.command("sign", help=N_("(Parent) Certify a child whose scope lies inside this "
                                      "node's."))
@click.argument("request_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@option("--out", type=click.Path(path_type=Path), help=N_("File to write [default AREA.cert]."))
@option("--only-entities",
        help=N_("Certify a department: the entity types it may get and write, e.g. "
                "dispute,project,target,case (its area may then equal this node's)."))
@option("--only", "only_matches", multiple=True,
        help=N_("With --only-entities: the values a field of a record's creation must have, "
                "e.g. case.category=resettlement; may be repeated."))
@pass_app
def enroll_sign(app: App, request_file, out, only_entities, only_matches):
    only = trust.parse_filter(only_entities, only_matches)
    request = trust.EnrolmentRequest.from_file(request_file)
    with app.open_node() as node:
        payload = trust.sign_request(node, request, only=only)
        data = envelope.seal(node.keys, request.subject, request.encryption, "enrolment", payload)
    path = out or Path(f"{request.area}.cert")
    path.write_bytes(data)
    echo(_("Issued the certificate {path} for {name} ({area}, fingerprint {fingerprint}): "
                 "check the fingerprint, then take the file back to that node, which runs "
                 "`xinfang enroll import {path}`").format(
        path=path, name=request.name, area=request.area,
        fingerprint=keys.fingerprint(request.subject)))


@enroll_group.command("import", help=N_("Import the certificate the parent signed; pins the "
                                        "root's fingerprint."))
@click.argument("cert_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@option("--root-fingerprint",
        help=N_("The root's fingerprint as its office reads it out: nothing is imported "
                "unless the chain ends there."))
@json_option
@pass_app
def enroll_import(app: App, cert_file, root_fingerprint, as_json):
    with app.open_node() as node:
        opened = envelope.open_(node.keys, cert_file.read_bytes(), "enrolment")
        root = trust.import_certificate(node, opened.payload, root_fingerprint)
        parent = trust.certificate(node.db, node.certificate.issuer)
        if parent is None or parent.subject != opened.header["from"]:
            raise trust.TrustError(N_("the certificate file was not sent by the issuing parent"))
    data = {"root_fingerprint": keys.fingerprint(root.subject), "root": root.name,
            "parent": parent.name}
    emit(data, as_json, lambda d: _(
        "Certificate imported. Parent: {parent}; root: {root}\n"
        "Root fingerprint {fingerprint} (check it with the root's office by telephone)").format(
        parent=d["parent"], root=d["root"], fingerprint=d["root_fingerprint"]))


@enroll_group.command("rotate", help=N_("Replace this node's keys; the old key signs its own "
                                        "retirement."))
@option("--out", type=click.Path(path_type=Path), help=N_("Enrolment request file to write."))
@pass_app
def enroll_rotate(app: App, out):
    with app.open_node() as node:
        request = trust.rotate_keys(node)
        path = out or Path(f"{node.info.area}-rotated.request")
        path.write_text(request.to_json(), encoding="utf-8")
    click.echo(_("Keys replaced (new fingerprint {fingerprint}); the old key signed its "
                 "retirement. Take {path} to the parent node for a new certificate; once it is "
                 "imported, sync as usual").format(
        fingerprint=keys.fingerprint(request.subject), path=path))


@click.group("bundle", cls=Group, help=N_("Offline sync by file (USB stick)."))
def bundle_group():
    pass


@bundle_group.command("export", help=N_("Write one sealed file of what the peer lacks."))
@option("--to", "peer", required=True, help=N_("Parent or child: name or fingerprint."))
@option("--out", type=click.Path(path_type=Path), help=N_("File to write."))
@json_option
@pass_app
def bundle_export(app: App, peer, out, as_json):
    with app.open_node() as node:
        target = peers.resolve(node, peer)
        path = out or Path(f"{node.info.area}-to-{target.area}-{time.strftime('%Y%m%d%H%M%S')}.xfb")
        with progress_to(_("Writing the bundle"), not as_json) as moved:
            summary = transports.find(node.registry, "bundle").send(node, peer, path,
                                                                    progress=moved)
    emit(vars_of(summary), as_json, lambda d: _(
        "Wrote {path} for {peer}: {events} events, {bytes} bytes").format(
        path=d["path"], peer=d["peer"], events=d["events"], bytes=d["bytes"]))


@bundle_group.command("import", help=N_("Verify a bundle and apply it page by page; one imported "
                                        "before is reported as done."))
@click.argument("bundle_file", type=click.Path(dir_okay=False, path_type=Path))
@json_option
@pass_app
def bundle_import(app: App, bundle_file, as_json):
    with app.open_node() as node:
        try:
            with progress_to(_("Importing the bundle"), not as_json) as moved:
                summary = transports.find(node.registry, "bundle").receive(node, bundle_file,
                                                                           progress=moved)
        except envelope.AlreadyImported as done:  # nothing to do is not a failure
            emit({"already_imported": done.at, "path": str(bundle_file)}, as_json, lambda d: _(
                "The bundle {path} was already imported at {at}; there is nothing more to "
                "do").format(path=d["path"], at=d["already_imported"]))
            return
    data = vars_of(summary)
    data["refused"] = [{**vars_of(r), "reason": i18n.show(r.reason)} for r in summary.refused]
    emit(data, as_json, lambda d: _(
        "Imported the bundle from {sender}: {applied} new, {duplicates} duplicates, {refused} "
        "refused (see `xinfang quarantine list`)").format(
        sender=d["sender"], applied=d["applied"], duplicates=d["duplicates"],
        refused=d["refused_count"]))


@command(help=N_("Serve this node to its children over HTTP; one line per request on stderr."))
@listening(8765, N_("Address to listen on: 127.0.0.1 for this machine only, 0.0.0.0 (or the "
                    "office network's address) for children on the network."))
@pass_app
def serve(app: App, host, port):
    """Served by waitress; the request log is ``NodeApp``'s, one line per request."""
    server = make_server(app.home, host, port, passphrase=app.passphrase, pm=app.pm,
                         log=lambda line: echo(line, err=True, lines=False))
    click.echo(_("xinfang serving {name} on {url} (directory {home})").format(
        name=server.xinfang_node.info.name, url=f"http://{host}:{server.effective_port}",
        home=app.home), err=True)
    try:
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how an operator stops it
            server.run()
    finally:
        server.close()
        server.xinfang_node.close()


_DURATION = re.compile(r"\A(\d+)([smh])\Z")


def parse_duration(text: str) -> int:
    match = _DURATION.match(text.strip())
    if not match or not int(match.group(1)):
        raise InvalidInput(N_("--every “{text}” is not a valid interval: write a positive whole "
                              "number followed by s, m or h, e.g. --every 15m"), text=text)
    return int(match.group(1)) * {"s": 1, "m": 60, "h": 3600}[match.group(2)]


@click.group("sync", cls=Group, invoke_without_command=True,
             help=N_("Sync with the parent over HTTP until both sides agree."))
@option("--url", help=N_("The parent's address, e.g. http://10.0.0.2:8765 (remembered)."))
@option("--every", help=N_("Keep syncing on a schedule, e.g. 15m; a failed attempt is retried "
                           "with jittered exponential backoff (up to 4 times the interval)."))
@option("--rounds", type=click.IntRange(min=1), help=N_("With --every: stop after N attempts."))
@option("--json", "as_json", is_flag=True, help=N_("Print JSON on stdout."))
@click.pass_context
def sync_group(ctx, url, every, rounds, as_json):
    if ctx.invoked_subcommand is not None:
        return
    app: App = ctx.obj
    interval = parse_duration(every) if every else None
    url = peers.check_url(url) if url else None  # remembered only once a sync succeeded
    if interval is None:
        _sync_once(app, url, as_json)
    else:
        _sync_on_schedule(app, url, as_json, interval, rounds)


def _sync_on_schedule(app: App, url: str | None, as_json: bool, interval: int,
                      rounds: int | None) -> None:
    """Sync every ``interval`` seconds; a failed attempt is retried after a jittered,
    exponentially growing wait (from the interval up to 4 times it), so children whose
    parent comes back do not all call it at once. ``rounds`` caps the attempts."""
    import tenacity

    def retrying(left: int | None) -> tenacity.Retrying:
        return tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(SyncError), reraise=True,
            wait=tenacity.wait_exponential_jitter(initial=interval, max=4 * interval,
                                                  jitter=interval / 2),
            stop=tenacity.stop_after_attempt(left) if left else tenacity.stop_never,
            before_sleep=lambda state: click.echo(_(
                "sync failed: {error}; retrying in {seconds} s").format(
                error=state.outcome.exception(), seconds=f"{state.next_action.sleep:.1f}"),
                err=True))

    done = 0
    while True:
        try:
            for attempt in retrying(rounds - done if rounds else None):
                with attempt:
                    done += 1
                    _sync_once(app, url, as_json)
        except SyncError as exc:  # the last of --rounds attempts failed
            click.echo(_("sync failed: {error}").format(error=exc), err=True)
            return
        if rounds and done >= rounds:
            return
        time.sleep(interval)


def _sync_once(app: App, url: str | None, as_json: bool) -> None:
    from xinfang.core import store

    with app.open_node() as node:
        url = url or store.get_meta(node.db, "parent_url")
        if not url:
            raise InvalidInput(N_("the parent's address is not known yet: give it once, at the "
                                  "first sync, with --url http://host:port"))
        bar = click.progressbar(length=1, label=_("Syncing"), file=sys.stderr,
                                show_pos=True) if sys.stderr.isatty() else None

        def progress(done: int, total: int) -> None:
            if bar is not None:
                bar.length = max(total, 1)
                bar.update(done - bar.pos)

        try:
            summary = transports.find(node.registry, "http").send(node, None, url, progress)
        finally:
            if bar is not None:
                bar.render_finish()
        store.set_meta(node.db, "parent_url", url)
    emit(vars_of(summary), as_json, lambda d: _(
        "Synced with the parent: {pushed} events sent up, {pulled} brought down, {refused_here} "
        "refused here, {refused_there} refused by the parent").format(**d))


#: what each column of ``xinfang sync status`` counts (a help paragraph click keeps as it is)
STATUS_SUMMARY = N_("Per peer, in events: sent, acknowledged, pending, received, refused.")
STATUS_COLUMNS = N_(
    "sent            events this node sent the peer\n"
    "acknowledged    of those, the ones the peer says it holds (never more than sent)\n"
    "pending         what the peer still lacks of what this node would send it\n"
    "received        events this node took from the peer\n"
    "refused by peer / refused here   events the peer refused of this node's / this node "
    "refused of the peer's")
STATUS_HEADERS = (N_("Node"), N_("Relation"), N_("Area"), N_("Events sent"), N_("Acknowledged"),
                  N_("To send"), N_("Events received"), N_("Refused by peer"),
                  N_("Refused here"), N_("Last sync"), N_("Last error"))
#: ``relation`` is an identifier in JSON; the table shows it in the reader's language
RELATIONS = {"parent": N_("parent node"), "child": N_("child node")}


@sync_group.command("status", help=lambda: "{}\n\n\b\n{}".format(_(STATUS_SUMMARY),
                                                                 _(STATUS_COLUMNS)))
@json_option
@pass_app
def sync_status(app: App, as_json):
    with app.open_node() as node:
        rows = [{**vars_of(s), "last_error": i18n.show(s.last_error)}
                for s in peers.status(node)]
    emit(rows, as_json, lambda rs: table(
        [[r["name"], _(RELATIONS[r["relation"]]), r["area"], r["sent"], r["acknowledged"],
          r["pending"], r["received"], r["refused_by_peer"], r["refused_from_peer"],
          r["last_sync"] or _("never"), r["last_error"] or ""] for r in rs],
        [_(h) for h in STATUS_HEADERS]) if rs else _("no parent or child nodes yet"))


@click.group("quarantine", cls=Group, help=N_("Events refused on arrival, with the reason."))
def quarantine_group():
    pass


QUARANTINE_HEADERS = (N_("Event"), N_("Author"), N_("Epoch"), N_("Seq"), N_("Reason"),
                      N_("Time"))


@quarantine_group.command("list", help=N_("List refused events and why."))
@json_option
@pass_app
def quarantine_list(app: App, as_json):
    """The reasons are stored language-independent; they are shown in the reader's."""
    with app.open_node() as node:
        rows = [vars_of(q) for q in quarantine.quarantined(node)]
    emit(rows, as_json, lambda rs: table(
        [[r["event_id"][:12], r["author_name"], r["epoch"], r["seq"], r["reason"], r["at"]]
         for r in rs], [_(h) for h in QUARANTINE_HEADERS]) if rs else _("the quarantine is empty"))


CONFLICT_HEADERS = (N_("Event"), N_("Entity"), N_("Type"), N_("State"), N_("Reason"))


@click.group("conflicts", cls=Group, invoke_without_command=True,
             help=N_("Concurrent steps the lifecycle could not accept, for a person to settle."))
@option("--all", "show_all", is_flag=True, help=N_("Include settled conflicts."))
@option("--json", "as_json", is_flag=True, help=N_("Print JSON on stdout."))
@click.pass_context
def conflicts_group(ctx, show_all, as_json):
    """The reasons are stored language-independent; they are shown in the reader's."""
    if ctx.invoked_subcommand is not None:
        return
    with ctx.obj.open_node() as node:
        rows = [{**vars_of(c), "reason": i18n.show(c.reason)}
                for c in settlements.list_conflicts(node, show_all)]
    emit(rows, as_json, lambda rs: table(
        [[r["event_id"][:12], r["entity_id"], r["type"],
          _("settled") if r["settled"] else _("to be settled"), r["reason"]] for r in rs],
        [_(h) for h in CONFLICT_HEADERS]) if rs else _("no conflicts"))


@conflicts_group.command("settle", help=N_("Record that a person settled a conflict."))
@click.argument("event_id")
@option("--note", required=True, help=N_("How it was settled."))
@pass_app
def conflicts_settle(app: App, event_id, note):
    with app.open_node() as node:
        settlements.settle(node, event_id, note)
    click.echo(_("Recorded how the conflict was settled"))


@click.group("trust", cls=Group, help=N_("Revoking keys."))
def trust_group():
    pass


@trust_group.command("revoke", help=N_("Revoke a descendant's key after its last good event."))
@click.argument("node_name")
@option("--epoch", type=int, required=True, help=N_("Epoch of the last good event."))
@option("--seq", type=int, required=True, help=N_("Sequence number of the last good event."))
@option("--reason", required=True, help=N_("Why the key is revoked (kept in the revocation)."))
@pass_app
def trust_revoke(app: App, node_name, epoch, seq, reason):
    with app.open_node() as node:
        matches = [r for r in node.db.execute("select subject, area, name from certs").fetchall()
                   if node_name in (r[2], keys.fingerprint(r[0]))]
        if len(matches) != 1:
            raise InvalidInput(N_("no single certified node matches “{name}”"), name=node_name)
        subject, area, name = matches[0]
        node.append(Draft("trust.revoke", "trust", subject, area,
                          {"epoch": epoch, "seq": seq, "reason": reason}))
    click.echo(_("Revoked the key of {name} (events after epoch {epoch} seq {seq} are refused)")
               .format(name=name, epoch=epoch, seq=seq))


@trust_group.command("list", help=N_("Certificates, revocations, the pinned root, and each "
                                     "child's revocation point."))
@json_option
@pass_app
def trust_list(app: App, as_json):
    from xinfang.sync import trust_list as listing

    with app.open_node() as node:
        data = listing.trust_list(node).to_dict()
    emit(data, as_json, listing.text)


def vars_of(value) -> dict:
    import attrs

    return attrs.asdict(value)


COMMANDS = (enroll_group, bundle_group, serve, sync_group, quarantine_group, conflicts_group,
            trust_group)
