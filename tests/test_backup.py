"""Backing a node up to one file and restoring it as a new epoch that never forks."""

from __future__ import annotations

import json
import shutil
import zipfile

import pytest

from sync_helpers import build_tree, carry, feed, quarantine, register
from xinfang.core import backup
from xinfang.core.errors import InvalidInput, KeyError_, NodeError
from xinfang.core.node import Node
from xinfang.core.verify import verify_log

PASS = "备份口令-1"


@pytest.fixture
def tree(tmp_path):
    made = build_tree(tmp_path / "tree", villages=1)
    yield made
    made.close()


def epochs_held(node: Node, author: str) -> dict[int, int]:
    return dict(node.db.execute("select epoch, seq from feeds where author = ?", [author]))


def test_a_restored_node_writes_a_new_epoch_the_parent_takes_without_a_fork(tree, tmp_path):
    village, township = tree.village, tree.township
    register(village, serial=1)
    file = tmp_path / "village.xfbak"
    summary = backup.backup(village, file, with_keys=True, passphrase=PASS)
    assert summary.with_keys and summary.events == 1 and file.is_file()
    assert not (tmp_path / "village.xfbak.part").exists()
    register(village, serial=2)  # written after the backup: lost with the machine
    carry(village, township, tmp_path)

    restored = backup.restore(file, tmp_path / "restored", PASS, pm=village.pm)
    try:
        assert restored.info.epoch == 1 and restored.info.author == village.info.author
        assert restored.keys_encrypted
        case_id = register(restored, serial=3)
        assert not case_id.endswith("00002")  # a new epoch numbers in a new range
        carry(restored, township, tmp_path)
        author = village.info.author
        assert township.db.execute("select count(*) from frozen_feeds").fetchone()[0] == 0
        assert quarantine(township) == {}
        assert epochs_held(township, author) == {0: 2, 1: 1}
        assert [e.seq for e in feed(township, author, 1)] == [1]
        # and back down: the restored node takes its own lost events without a fork
        carry(township, restored, tmp_path)
        assert quarantine(restored) == {}
        assert restored.db.execute("select count(*) from frozen_feeds").fetchone()[0] == 0
        assert verify_log(restored.db).ok
    finally:
        restored.close()


def test_a_backup_is_a_consistent_copy_while_the_node_writes(node, tmp_path):
    from conftest import case_input
    from xinfang.plugins.cases import api

    api.register_case(node, case_input())
    writer = Node.open(node.home, pm=node.pm)  # another process using the node
    try:
        with writer.db.atomic():  # its write, not yet committed, is not in the copy
            api.register_case(writer, case_input(request="第二件"))
            backup.backup(node, tmp_path / "b.xfbak")
    finally:
        writer.close()
    with zipfile.ZipFile(tmp_path / "b.xfbak") as archive:
        manifest = json.loads(archive.read("manifest.json"))
        assert sorted(archive.namelist()) == ["manifest.json", "xinfang.db"]
    assert manifest["format"] == "xinfang-backup" and manifest["events"] == 1
    assert manifest["with_keys"] is False
    with node.db.atomic(), pytest.raises(InvalidInput, match="事务"):
        backup.backup(node, tmp_path / "c.xfbak")
    assert not (tmp_path / "c.xfbak").exists()


def test_restore_without_keys_needs_the_keys_copied_by_hand(node, tmp_path):
    file = tmp_path / "nokeys.xfbak"
    backup.backup(node, file)
    target = tmp_path / "restored"
    with pytest.raises(InvalidInput, match="不含密钥.*手工复制"):
        backup.restore(file, target)
    assert not target.exists()
    target.mkdir()
    shutil.copytree(node.home / "keys", target / "keys")
    with backup.restore(file, target, pm=node.pm) as restored:
        assert restored.info.epoch == 1
        assert restored.keys.author == node.info.author


def test_bad_output_paths_are_clear_errors_and_leave_nothing(node, tmp_path):
    with pytest.raises(InvalidInput, match="不存在"):
        backup.backup(node, tmp_path / "missing" / "b.xfbak")
    with pytest.raises(InvalidInput, match="是一个目录"):
        backup.backup(node, tmp_path)
    with pytest.raises(InvalidInput, match="需要口令"):
        backup.backup(node, tmp_path / "k.xfbak", with_keys=True)
    (tmp_path / "old.xfbak").write_bytes(b"old")
    with pytest.raises(InvalidInput, match="已存在"):
        backup.backup(node, tmp_path / "old.xfbak")
    assert (tmp_path / "old.xfbak").read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["node0", "old.xfbak"]


def test_restore_refuses_a_non_backup_a_full_directory_and_a_wrong_passphrase(node, tmp_path):
    file = tmp_path / "b.xfbak"
    backup.backup(node, file, with_keys=True, passphrase=PASS)
    junk = tmp_path / "junk.xfbak"
    junk.write_bytes(b"not a zip")
    with pytest.raises(InvalidInput, match="不是 xinfang 备份文件"):
        backup.restore(junk, tmp_path / "r1")
    other = tmp_path / "other.zip"
    with zipfile.ZipFile(other, "w") as archive:
        archive.writestr("hello.txt", "hi")
    with pytest.raises(InvalidInput, match="不是 xinfang 备份文件"):
        backup.restore(other, tmp_path / "r1")
    with pytest.raises(NodeError, match="不为空"):
        backup.restore(file, node.home, PASS)
    with pytest.raises(InvalidInput, match="口令"):
        backup.restore(file, tmp_path / "r2")
    with pytest.raises(KeyError_, match="口令不对"):
        backup.restore(file, tmp_path / "r2", "wrong")
    assert not (tmp_path / "r1").exists() and not (tmp_path / "r2").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_backup_and_restore_through_the_cli(invoke, tmp_path):
    assert invoke("init", "--level", "village", "--area", "431202101201",
                  "--name", "示例村信访站").exit_code == 0
    assert invoke("case", "register", "-p", "name=赵某甲", "--channel", "来访",
                  "--category", "劳动社保", "--request", "请求追讨拖欠工资").exit_code == 0
    out = tmp_path / "cli.xfbak"
    result = invoke("backup", "--out", str(out), "--with-keys", "--passphrase", PASS, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["events"] == 1
    again = invoke("backup", "--out", str(out))
    assert again.exit_code != 0 and again.output.startswith("错误：文件")
    missing = invoke("backup", "--out", str(tmp_path / "nowhere" / "x.xfbak"))
    assert missing.exit_code != 0 and "不存在" in missing.output
    target = tmp_path / "cli-restored"
    result = invoke("restore", str(out), "--home", str(target), "--json", input=PASS + "\n")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output[result.output.index("{"):])
    assert data["epoch"] == 1 and data["events"] == 1 and data["keys_encrypted"]
    listed = invoke("--passphrase", PASS, "case", "list", "--json", home_dir=target)
    assert listed.exit_code == 0 and len(json.loads(listed.output)) == 1
    bad = invoke("restore", str(tmp_path / "nothing.xfbak"), "--home", str(tmp_path / "x"))
    assert bad.exit_code != 0 and bad.output.startswith("错误：备份文件")
