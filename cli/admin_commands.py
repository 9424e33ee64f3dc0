"""Looking after a node: backup and restore, and the access log."""

from __future__ import annotations

from pathlib import Path

import attrs
import click

from xinfang.core import backup as backup_mod
from xinfang.core.node import Node

from .base import App, pass_app
from .output import emit, json_option, table


def _passphrase(given: str | None, app: App, confirm: bool) -> str:
    return given or app.passphrase or click.prompt(
        "Passphrase for the keys in the backup", hide_input=True, confirmation_prompt=confirm)


@click.command("backup")
@click.option("--out", required=True, type=click.Path(path_type=Path),
              help="备份文件（一个新文件，如 village-20260301.xfbak）.")
@click.option("--with-keys", is_flag=True,
              help="连同私钥一起备份（以口令加密）；否则恢复时须手工复制 keys/ 目录.")
@click.option("--passphrase", "key_passphrase",
              help="加密备份中私钥的口令 [默认 --passphrase / XINFANG_PASSPHRASE，否则提示输入].")
@json_option
@pass_app
def backup_command(app: App, out, with_keys, key_passphrase, as_json):
    """备份本节点：数据库的一致副本（节点运行时也可），可选连同加密的私钥."""
    with app.open_node() as node:
        passphrase = _passphrase(key_passphrase, app, confirm=True) if with_keys else None
        if node.passphrase is None:  # key files under the same passphrase open with it too
            node.passphrase = passphrase
        summary = backup_mod.backup(node, out, with_keys=with_keys, passphrase=passphrase)
    emit(attrs.asdict(summary), as_json, lambda d: (
        f"已备份 {d['name']} 到 {d['path']}：{d['events']} 条事件，{d['bytes']} 字节，"
        + ("含加密的私钥" if d["with_keys"] else "不含私钥（恢复时须手工复制 keys/ 目录）")))


@click.command("restore")
@click.argument("backup_file", type=click.Path(path_type=Path))
@click.option("--home", "target", type=click.Path(path_type=Path),
              help="恢复到这个新目录 [默认 --home / XINFANG_HOME].")
@click.option("--passphrase", "key_passphrase",
              help="备份时加密私钥的口令 [默认 --passphrase / XINFANG_PASSPHRASE，否则提示输入].")
@json_option
@pass_app
def restore_command(app: App, backup_file, target, key_passphrase, as_json):
    """从备份文件恢复节点到一个新目录，并开始新纪元（不会与原节点分叉）."""
    manifest = backup_mod.read_manifest(backup_file)
    passphrase = (_passphrase(key_passphrase, app, confirm=False) if manifest["with_keys"]
                  else key_passphrase or app.passphrase)
    with backup_mod.restore(backup_file, target or app.home, passphrase, pm=app.pm) as node:
        data = _restored(node)
    emit(data, as_json, lambda d: (
        f"已将 {d['name']}（{d['area']}）恢复到 {d['home']}：{d['events']} 条事件，"
        f"新纪元 epoch {d['epoch']}，可继续写入而不与原节点分叉"
        + ("；私钥以该口令加密，以后请用 --passphrase 或 XINFANG_PASSPHRASE"
           if d["keys_encrypted"] else "")))


def _restored(node: Node) -> dict:
    info = node.info
    events = node.db.execute("select count(*) from events").fetchone()[0]
    return {"home": str(node.home), "name": info.name, "area": info.area, "epoch": info.epoch,
            "events": events, "keys_encrypted": node.keys_encrypted}


def access_log(node: Node, case_id: str | None = None) -> list[dict]:
    """Who read whose identity, and when (oldest first); one case's rows with ``case_id``."""
    where, params = "", []
    if case_id:
        where, params = "where entity = 'case' and entity_id = ?", [case_id]
    return [dict(r) for r in node.db.query(
        f"select at, who, entity, entity_id, what from access_log {where} order by pos", params)]


@click.command("access-log")
@click.option("--case", "case_id", help="只列这件信访事项的查阅记录.")
@json_option
@pass_app
def access_log_command(app: App, case_id, as_json):
    """查阅记录：谁在何时查看了哪件信访事项的信访人身份，或按身份查找过."""
    with app.open_node() as node:
        rows = access_log(node, case_id)
    emit(rows, as_json, lambda rs: table(
        [[r["at"], r["who"], r["entity"], r["entity_id"], r["what"]] for r in rs],
        ["时间", "操作人", "类型", "对象", "内容"]) + f"\n共 {len(rs)} 条"
        if rs else "没有查阅记录 (no reads logged)")


ADMIN_COMMANDS = (backup_command, restore_command, access_log_command)
