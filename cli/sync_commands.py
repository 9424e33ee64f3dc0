"""Commands that connect nodes: enrol, bundle, serve, sync, and what they refused."""

from __future__ import annotations

import contextlib
import re
import sys
import time
from pathlib import Path

import click

from xinfang.core import keys, transports
from xinfang.core.errors import InvalidInput
from xinfang.core.node import Draft
from xinfang.plugins import settlements
from xinfang.sync import envelope, peers, trust
from xinfang.sync.http import SyncError, make_server

from .base import App, Group, pass_app
from .output import emit, json_option, progress_to, table


@click.group("enroll", cls=Group)
def enroll_group():
    """Enrolment: a new node asks its parent for a certificate."""


@enroll_group.command("request")
@click.option("--out", type=click.Path(path_type=Path), help="File to write [default NAME.request].")
@pass_app
def enroll_request(app: App, out):
    """Write an enrolment request to carry to the parent."""
    with app.open_node() as node:
        request = trust.make_request(node)
        path = out or Path(f"{node.info.area}.request")
        path.write_text(request.to_json(), encoding="utf-8")
    click.echo(f"已写出注册申请 {path}：请交上级节点运行 `xinfang enroll sign {path}`")


@enroll_group.command("sign")
@click.argument("request_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), help="File to write [default AREA.cert].")
@pass_app
def enroll_sign(app: App, request_file, out):
    """(Parent) Certify a child whose scope lies inside this node's."""
    request = trust.EnrolmentRequest.from_file(request_file)
    with app.open_node() as node:
        payload = trust.sign_request(node, request)
        data = envelope.seal(node.keys, request.subject, request.encryption, "enrolment", payload)
    path = out or Path(f"{request.area}.cert")
    path.write_bytes(data)
    click.echo(f"已为 {request.name}（{request.area}，指纹 {keys.fingerprint(request.subject)}）"
               f"签发证书 {path}：请核对指纹后交回该节点运行 `xinfang enroll import {path}`")


@enroll_group.command("import")
@click.argument("cert_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@json_option
@pass_app
def enroll_import(app: App, cert_file, as_json):
    """Import the certificate the parent signed; pins the root's fingerprint."""
    with app.open_node() as node:
        opened = envelope.open_(node.keys, cert_file.read_bytes(), "enrolment")
        root = trust.import_certificate(node, opened.payload)
        parent = trust.certificate(node.db, node.certificate.issuer)
        if parent is None or parent.subject != opened.header["from"]:
            raise trust.TrustError("the certificate file was not sent by the issuing parent")
    data = {"root_fingerprint": keys.fingerprint(root.subject), "root": root.name,
            "parent": parent.name}
    emit(data, as_json, lambda d: f"已导入证书。上级：{d['parent']}；根节点：{d['root']}\n"
                                  f"根节点指纹 {d['root_fingerprint']}（请电话核对）")


@enroll_group.command("rotate")
@click.option("--out", type=click.Path(path_type=Path), help="Enrolment request file to write.")
@pass_app
def enroll_rotate(app: App, out):
    """Replace this node's keys; the old key signs its own retirement."""
    with app.open_node() as node:
        request = trust.rotate_keys(node)
        path = out or Path(f"{node.info.area}-rotated.request")
        path.write_text(request.to_json(), encoding="utf-8")
    click.echo(f"已更换密钥（新指纹 {keys.fingerprint(request.subject)}），旧密钥已签署停用事件。"
               f"请将 {path} 交上级节点签发新证书，导入后同步即可")


@click.group("bundle", cls=Group)
def bundle_group():
    """Offline sync by file (USB stick)."""


@bundle_group.command("export")
@click.option("--to", "peer", required=True, help="Parent or child: name or fingerprint.")
@click.option("--out", type=click.Path(path_type=Path), help="File to write.")
@json_option
@pass_app
def bundle_export(app: App, peer, out, as_json):
    """Write one sealed file of what the peer lacks."""
    with app.open_node() as node:
        target = peers.resolve(node, peer)
        path = out or Path(f"{node.info.area}-to-{target.area}-{time.strftime('%Y%m%d%H%M%S')}.xfb")
        with progress_to("写出数据包", not as_json) as moved:
            summary = transports.find(node.registry, "bundle").send(node, peer, path,
                                                                    progress=moved)
    emit(vars_of(summary), as_json,
         lambda d: f"已写出 {d['path']}：发往 {d['peer']}，{d['events']} 条事件，{d['bytes']} 字节")


@bundle_group.command("import")
@click.argument("bundle_file", type=click.Path(dir_okay=False, path_type=Path))
@json_option
@pass_app
def bundle_import(app: App, bundle_file, as_json):
    """Verify a bundle and apply it page by page; one imported before is reported as done."""
    with app.open_node() as node:
        try:
            with progress_to("导入数据包", not as_json) as moved:
                summary = transports.find(node.registry, "bundle").receive(node, bundle_file,
                                                                           progress=moved)
        except envelope.AlreadyImported as done:  # nothing to do is not a failure
            emit({"already_imported": done.at, "path": str(bundle_file)}, as_json,
                 lambda d: f"数据包 {d['path']} 已于 {d['already_imported']} 导入过，无需再次导入")
            return
    data = vars_of(summary)
    data["refused"] = [vars_of(r) for r in summary.refused]
    emit(data, as_json, lambda d: (
        f"已导入来自 {d['sender']} 的数据包：新增 {d['applied']} 条，重复 {d['duplicates']} 条，"
        f"拒收 {len(d['refused'])} 条（见 `xinfang quarantine list`）"))


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on: 127.0.0.1 for this machine only, 0.0.0.0 (or the "
                   "office network's address) for children on the network.")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535),
              help="TCP port, 0–65535 (0: any free port).")
@pass_app
def serve(app: App, host, port):
    """Serve this node to its children over HTTP (waitress); one line per request on stderr."""
    server = make_server(app.home, host, port, passphrase=app.passphrase, pm=app.pm,
                         log=lambda line: click.echo(line, err=True))
    click.echo(f"xinfang serving {server.xinfang_node.info.name} on "
               f"http://{host}:{server.effective_port}（目录 {app.home}）", err=True)
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
        raise InvalidInput(f"--every {text!r} 不是有效的间隔：请写一个正整数加 s、m 或 h，"
                           "例如 --every 15m")
    return int(match.group(1)) * {"s": 1, "m": 60, "h": 3600}[match.group(2)]


@click.group("sync", cls=Group, invoke_without_command=True)
@click.option("--url", help="The parent's address, e.g. http://10.0.0.2:8765 (remembered).")
@click.option("--every", help="Keep syncing on a schedule, e.g. 15m; a failed attempt is retried "
              "with jittered exponential backoff (up to 4 times the interval).")
@click.option("--rounds", type=click.IntRange(min=1), help="With --every: stop after N attempts.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
@click.pass_context
def sync_group(ctx, url, every, rounds, as_json):
    """Sync with the parent over HTTP until both sides agree."""
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
            before_sleep=lambda state: click.echo(
                f"同步失败：{state.outcome.exception()}；{state.next_action.sleep:.1f} 秒后重试",
                err=True))

    done = 0
    while True:
        try:
            for attempt in retrying(rounds - done if rounds else None):
                with attempt:
                    done += 1
                    _sync_once(app, url, as_json)
        except SyncError as exc:  # the last of --rounds attempts failed
            click.echo(f"同步失败：{exc}", err=True)
            return
        if rounds and done >= rounds:
            return
        time.sleep(interval)


def _sync_once(app: App, url: str | None, as_json: bool) -> None:
    from xinfang.core import store

    with app.open_node() as node:
        url = url or store.get_meta(node.db, "parent_url")
        if not url:
            raise InvalidInput("尚不知道上级的地址：请第一次同步时给出 --url http://主机:端口 "
                               "(give the parent's address once with --url)")
        bar = click.progressbar(length=1, label="同步", file=sys.stderr,
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
    emit(vars_of(summary), as_json, lambda d: (
        f"已与上级同步：上传 {d['pushed']} 条，下载 {d['pulled']} 条，本地拒收 {d['refused_here']} 条，"
        f"上级拒收 {d['refused_there']} 条"))


@sync_group.command("status")
@json_option
@pass_app
def sync_status(app: App, as_json):
    """Per peer, in events: sent, acknowledged, pending, received, refused.

    \b
    已发送 sent          events this node sent the peer
    已确认 acknowledged  of those, the ones the peer says it holds (never more than sent)
    待发送 pending       what the peer still lacks of what this node would send it
    已接收 received      events this node took from the peer
    对方拒收 / 本地拒收  events the peer refused of this node's / this node refused of the peer's
    """
    with app.open_node() as node:
        rows = [vars_of(s) for s in peers.status(node)]
    emit(rows, as_json, lambda rs: table(
        [[r["name"], r["relation"], r["area"], r["sent"], r["acknowledged"], r["pending"],
          r["received"], r["refused_by_peer"], r["refused_from_peer"], r["last_sync"] or "从未",
          r["last_error"] or ""] for r in rs],
        ["节点", "关系", "区划", "已发送", "已确认", "待发送", "已接收", "对方拒收", "本地拒收",
         "最近同步", "最近错误"]) if rs else "尚无上下级节点 (no peers yet)")


@click.group("quarantine", cls=Group)
def quarantine_group():
    """Events refused on arrival, with the reason."""


@quarantine_group.command("list")
@json_option
@pass_app
def quarantine_list(app: App, as_json):
    """List refused events and why."""
    with app.open_node() as node:
        rows = [dict(r) for r in node.db.query(
            "select event_id, author, epoch, seq, reason, peer, at from quarantine order by at, "
            "author, epoch, seq")]
        for row in rows:
            row["author_name"] = _name(node, row["author"])
    emit(rows, as_json, lambda rs: table(
        [[r["event_id"][:12], r["author_name"], r["epoch"], r["seq"], r["reason"], r["at"]]
         for r in rs], ["事件", "作者", "纪元", "序号", "原因", "时间"]) if rs else "隔离区为空")


@click.group("conflicts", cls=Group, invoke_without_command=True)
@click.option("--all", "show_all", is_flag=True, help="Include settled conflicts.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
@click.pass_context
def conflicts_group(ctx, show_all, as_json):
    """Concurrent steps the lifecycle could not accept, for a person to settle."""
    if ctx.invoked_subcommand is not None:
        return
    with ctx.obj.open_node() as node:
        rows = [vars_of(c) for c in settlements.list_conflicts(node, show_all)]
    emit(rows, as_json, lambda rs: table(
        [[r["event_id"][:12], r["entity_id"], r["type"], "已处理" if r["settled"] else "待处理",
          r["reason"]] for r in rs], ["事件", "对象", "类型", "状态", "原因"]) if rs else "没有冲突")


@conflicts_group.command("settle")
@click.argument("event_id")
@click.option("--note", required=True, help="How it was settled.")
@pass_app
def conflicts_settle(app: App, event_id, note):
    """Record that a person settled a conflict."""
    with app.open_node() as node:
        settlements.settle(node, event_id, note)
    click.echo("已记录冲突处理结果")


@click.group("trust", cls=Group)
def trust_group():
    """Revoking keys."""


@trust_group.command("revoke")
@click.argument("node_name")
@click.option("--epoch", type=int, required=True, help="Epoch of the last good event.")
@click.option("--seq", type=int, required=True, help="Sequence number of the last good event.")
@click.option("--reason", required=True)
@pass_app
def trust_revoke(app: App, node_name, epoch, seq, reason):
    """Revoke a descendant's key after its last good event."""
    with app.open_node() as node:
        matches = [r for r in node.db.execute("select subject, area, name from certs").fetchall()
                   if node_name in (r[2], keys.fingerprint(r[0]))]
        if len(matches) != 1:
            raise InvalidInput(f"no single certified node matches {node_name!r}")
        subject, area, name = matches[0]
        node.append(Draft("trust.revoke", "trust", subject, area,
                          {"epoch": epoch, "seq": seq, "reason": reason}))
    click.echo(f"已吊销 {name} 的密钥（纪元 {epoch} 序号 {seq} 之后的事件一律拒收）")


@trust_group.command("list")
@json_option
@pass_app
def trust_list(app: App, as_json):
    """Certificates, revocations, the pinned root, and each child's revocation point."""
    from xinfang.sync import trust_list as listing

    with app.open_node() as node:
        data = listing.trust_list(node).to_dict()
    emit(data, as_json, listing.text)


def _name(node, author: str) -> str:
    cert = trust.certificate(node.db, author)
    return cert.name if cert else keys.fingerprint(author)


def vars_of(value) -> dict:
    import attrs

    return attrs.asdict(value)


COMMANDS = (enroll_group, bundle_group, serve, sync_group, quarantine_group, conflicts_group,
            trust_group)
