"""Petitioners' clear values are encrypted at rest (``core.vault``).

A name, ID number, phone or address reaches a node's disk only inside the
vault, under a data key sealed to the node's own X25519 key. Each test works
on real nodes on disk: it reads the bytes of the database and its -wal and
-shm files, opens nodes without their passphrase, rotates keys (also cut off
midway), backs up and restores, opens a release 0.1.0 node, and tampers with
vault rows the way someone holding the file could.
"""

from __future__ import annotations

import shutil
import sqlite3
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings, strategies as st

from sync_helpers import TODAY, build_tree, carry, register, sql
from xinfang.app import plugin_manager
from xinfang.cli.main import build_cli
from xinfang.core import backup, sealing, store, vault as vault_mod
from xinfang.core.errors import InvalidInput, KeyError_, NodeError
from xinfang.core.keys import NodeKeys
from xinfang.core.node import DB_NAME, KEYS_DIR, Node
from xinfang.core.verify import verify_log
from xinfang.core.vault import PassphraseNeeded, VaultDamaged
from xinfang.plugins.cases import api, find
from xinfang.plugins.cases.idnumber import synthetic
from xinfang.sync import trust

PASSPHRASE = "村里的口令"
VILLAGE = ("431202101201", "示例一镇示例一村信访站")
LEGACY = Path(__file__).parent / "data" / "node-0.1.0"


def identity(serial: int) -> dict[str, str]:
    """The clear values ``sync_helpers.register(node, serial)`` gives its petitioner."""
    return {"name": f"赵某{serial}", "id_number": synthetic(serial),
            "phone": f"1380000{serial:04d}"}


def disk_bytes(home: Path) -> bytes:
    """The database file with its -wal and -shm, as they are on disk now."""
    return b"".join(path.read_bytes() for path in
                    (home / DB_NAME, home / f"{DB_NAME}-wal", home / f"{DB_NAME}-shm")
                    if path.exists())


def leaked(data: bytes, serial: int) -> list[str]:
    return [key for key, value in identity(serial).items() if value.encode("utf-8") in data]


def village_node(home: Path, passphrase: str | None = None) -> Node:
    node = Node.init(home, level="village", area=VILLAGE[0], name=VILLAGE[1],
                     passphrase=passphrase, pm=plugin_manager())
    node.operator = "测试员"
    return node


def reopened(home: Path, passphrase: str | None = None) -> Node:
    node = Node.open(home, passphrase=passphrase, pm=plugin_manager())
    node.operator = "测试员"
    return node


def wraps(node: Node) -> set[str]:
    return {key[len(vault_mod.WRAP_PREFIX):] for (key,) in node.db.execute(
        "select key from meta where key like ?", [vault_mod.WRAP_PREFIX + "%"])}


def reads(node: Node, case_id: str, serial: int) -> bool:
    person = api.get_case(node, case_id).petitioners[0]
    return (person.name, person.id_number, person.phone) == tuple(identity(serial).values())


@pytest.fixture
def tree(tmp_path):
    made = build_tree(tmp_path / "tree", villages=1)
    yield made
    made.close()


# -- nothing clear on disk ---------------------------------------------------------


@pytest.mark.parametrize("checkpoint", [False, True], ids=["wal-live", "checkpointed"])
def test_no_clear_identity_is_in_the_database_files_at_the_village_or_the_county(
        tree, tmp_path, checkpoint):
    case_id = register(tree.village, serial=7)
    carry(tree.village, tree.township, tmp_path)
    carry(tree.township, tree.county, tmp_path)
    assert tree.county.db.execute("select 1 from cases where id = ?", [case_id]).fetchone()
    assert reads(tree.village, case_id, 7)  # the village holds the values, in its vault
    for node in (tree.village, tree.township, tree.county):
        if checkpoint:
            node.db.execute("pragma wal_checkpoint(truncate)")
        data = disk_bytes(node.home)
        assert "请求追讨拖欠工资".encode() in data  # the search does read what is on disk
        assert leaked(data, 7) == [], node.info.name


def test_a_backup_file_holds_no_clear_identity(tmp_path):
    with village_node(tmp_path / "v") as node:
        register(node, serial=3)
        backup.backup(node, tmp_path / "v.xfbak")
    with zipfile.ZipFile(tmp_path / "v.xfbak") as archive:
        data = archive.read(DB_NAME)
    assert "请求追讨拖欠工资".encode() in data
    assert leaked(data, 3) == []


# -- the passphrase ----------------------------------------------------------------


@pytest.fixture
def locked(tmp_path):
    """A village whose keys have a passphrase, holding case 1, opened without it."""
    home = tmp_path / "locked"
    with village_node(home, PASSPHRASE) as node:
        case_id = register(node, serial=1)
    node = reopened(home)
    yield node, case_id
    node.close()


def test_without_the_passphrase_cases_list_but_identity_stays_locked(locked):
    locked, case_id = locked
    assert [c.id for c in api.list_cases(locked, today=TODAY)] == [case_id]
    assert api.get_case(locked, case_id, reveal=False).petitioners[0].name is None
    with pytest.raises(PassphraseNeeded) as caught:
        api.get_case(locked, case_id)
    message = str(caught.value)
    assert "--passphrase" in message and "XINFANG_PASSPHRASE" in message and "口令" in message
    with pytest.raises(PassphraseNeeded):
        find.find_cases(locked, name="赵某1")


def test_with_the_passphrase_identity_reads(locked):
    locked, case_id = locked
    home = locked.home
    locked.close()
    with reopened(home, PASSPHRASE) as node:
        assert reads(node, case_id, 1)
        assert [f.case.id for f in find.find_cases(node, name="赵某1")] == [case_id]
    with reopened(home, "别的口令") as wrong, pytest.raises(KeyError_, match="口令"):
        api.get_case(wrong, case_id)


def cli(home: Path, *args: str, env: dict | None = None):
    return CliRunner().invoke(build_cli(plugin_manager()),
                              ["--home", str(home), "--operator", "测试员", *args], env=env)


def one_chinese_line(result) -> str:
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        repr(result.exception)
    return lines[0]


@pytest.mark.parametrize("command", [["case", "show", "{id}"], ["case", "find", "--name", "赵某1"],
                                     ["case", "find", "--id-number", synthetic(1)]])
def test_cli_without_the_passphrase_says_in_one_chinese_line_how_to_give_it(locked, command):
    locked, case_id = locked
    home = locked.home
    locked.close()
    args = [a.format(id=case_id) for a in command]
    result = cli(home, *args, env={"XINFANG_PASSPHRASE": None})
    assert result.exit_code != 0
    line = one_chinese_line(result)
    assert "口令" in line and "--passphrase" in line and "XINFANG_PASSPHRASE" in line
    assert "1380000" not in line
    listed = cli(home, "case", "list", env={"XINFANG_PASSPHRASE": None})
    assert listed.exit_code == 0 and case_id in listed.output
    shown = cli(home, *args, env={"XINFANG_PASSPHRASE": PASSPHRASE})
    assert shown.exit_code == 0, shown.output
    assert ("赵某1" if command[1] == "show" else case_id) in shown.output


def test_log_verify_without_the_passphrase_counts_the_values_and_says_they_were_not_checked(
        locked):
    locked, _ = locked
    home = locked.home
    locked.close()
    result = cli(home, "log", "verify", env={"XINFANG_PASSPHRASE": None})
    assert result.exit_code == 0, result.output
    line = one_chinese_line(result)
    assert "未检查" in line and "--passphrase" in line
    data = cli(home, "log", "verify", "--json", env={"XINFANG_PASSPHRASE": None})
    assert '"secrets_checked": false' in data.output and '"secrets": 4' in data.output  # name, ID, phone, address
    checked = cli(home, "log", "verify", env={"XINFANG_PASSPHRASE": PASSPHRASE})
    assert checked.exit_code == 0 and "未检查" not in checked.output


# -- key rotation ------------------------------------------------------------------


@pytest.mark.parametrize("passphrase", [None, PASSPHRASE])
def test_identity_reads_after_a_key_rotation_and_the_old_wrap_is_gone(tmp_path, passphrase):
    home = tmp_path / "v"
    with village_node(home, passphrase) as node:
        case_id = register(node, serial=2)
        old = node.keys.encryption_public
        trust.rotate_keys(node)
        new = node.keys.encryption_public
        assert new != old and wraps(node) == {new}
        assert reads(node, case_id, 2)
        register(node, serial=4, received="2026-03-06")
    with reopened(home, passphrase) as node:
        assert node.keys.encryption_public == new
        assert reads(node, case_id, 2)
        assert verify_log(node.db, vault=node.vault).ok


def cut_after_the_database_switched(home: Path) -> None:
    raise OSError("power cut")


def cut_between_the_renames(home: Path) -> None:
    (home / KEYS_DIR).rename(home / f"{KEYS_DIR}.retired-cut")
    raise OSError("power cut")


@pytest.mark.parametrize("cut", [cut_after_the_database_switched, cut_between_the_renames])
def test_identity_reads_after_a_rotation_cut_off_midway(tmp_path, monkeypatch, cut):
    home = tmp_path / "v"
    with village_node(home, PASSPHRASE) as node:
        case_id = register(node, serial=5)
        old = node.keys.encryption_public
        monkeypatch.setattr(trust, "finish_rotation", cut)
        with pytest.raises(OSError, match="power cut"):
            trust.rotate_keys(node)
    monkeypatch.undo()
    assert (home / f"{KEYS_DIR}.next").exists()
    with reopened(home, PASSPHRASE) as node:
        assert reads(node, case_id, 5)
        new = node.keys.encryption_public
        assert new != old and wraps(node) == {new}
        assert not (home / f"{KEYS_DIR}.next").exists()
    with reopened(home, PASSPHRASE) as node:
        assert reads(node, case_id, 5)


def test_a_rotation_cut_off_before_the_database_switched_keeps_the_old_keys(tmp_path,
                                                                          monkeypatch):
    home = tmp_path / "v"
    with village_node(home) as node:
        case_id = register(node, serial=6)
        old = node.keys.encryption_public

        def cut(*args, **kwargs):
            raise OSError("power cut")

        monkeypatch.setattr(store, "set_meta", cut)
        with pytest.raises(OSError):
            trust.rotate_keys(node)
    monkeypatch.undo()
    with reopened(home) as node:
        assert node.keys.encryption_public == old and wraps(node) == {old}
        assert reads(node, case_id, 6)


# -- backup and restore ------------------------------------------------------------


@pytest.fixture
def backed_up(tmp_path):
    home = tmp_path / "original"
    with village_node(home) as node:
        case_id = register(node, serial=8)
        backup.backup(node, tmp_path / "with-keys.xfbak", with_keys=True, passphrase="备份口令")
        backup.backup(node, tmp_path / "without-keys.xfbak")
    return home, case_id


def test_a_backup_with_keys_restores_a_readable_vault(tmp_path, backed_up):
    _, case_id = backed_up
    with backup.restore(tmp_path / "with-keys.xfbak", tmp_path / "restored",
                        passphrase="备份口令", pm=plugin_manager()) as node:
        assert reads(node, case_id, 8)
    with reopened(tmp_path / "restored") as node, pytest.raises(PassphraseNeeded):
        api.get_case(node, case_id)  # the restored keys are under the backup's passphrase


def test_a_backup_without_keys_reads_with_the_hand_copied_keys(tmp_path, backed_up):
    original, case_id = backed_up
    target = tmp_path / "restored"
    target.mkdir()
    shutil.copytree(original / KEYS_DIR, target / KEYS_DIR)
    with backup.restore(tmp_path / "without-keys.xfbak", target, pm=plugin_manager()) as node:
        assert reads(node, case_id, 8)


def test_the_database_alone_with_another_nodes_keys_is_refused(tmp_path, backed_up):
    original, case_id = backed_up
    other = tmp_path / "other"
    village_node(other).close()
    target = tmp_path / "restored"
    target.mkdir()
    shutil.copytree(other / KEYS_DIR, target / KEYS_DIR)
    with pytest.raises(InvalidInput, match=KEYS_DIR):
        backup.restore(tmp_path / "without-keys.xfbak", target, pm=plugin_manager())
    # copied by hand beside them, the node refuses them
    shutil.copy(original / DB_NAME, target / DB_NAME)
    with reopened(target) as node, pytest.raises(NodeError, match=KEYS_DIR):
        api.get_case(node, case_id)
    # and with the database's own idea of its keys rewritten to match, the vault stays shut
    sql(target, "update meta set value = ? where key = 'author'",
        [NodeKeys.load(other / KEYS_DIR, None).author])
    with reopened(target) as node:
        with pytest.raises(KeyError_, match="其他密钥") as caught:
            api.get_case(node, case_id)
        assert not isinstance(caught.value, PassphraseNeeded)
        assert api.get_case(node, case_id, reveal=False).petitioners[0].name is None


# -- release 0.1.0 -----------------------------------------------------------------


def legacy_village(tmp_path: Path) -> Path:
    home = tmp_path / "old-village"
    shutil.copytree(LEGACY / "village", home)
    return home


def clear_rows(home: Path) -> int:
    conn = sqlite3.connect(home / DB_NAME)
    try:
        return conn.execute("select count(*) from secrets").fetchone()[0]
    finally:
        conn.close()


def test_an_old_nodes_clear_values_move_into_the_vault_and_leave_secrets(tmp_path):
    home = legacy_village(tmp_path)
    before = clear_rows(home)
    assert before > 0 and "赵某1".encode() in disk_bytes(home)
    with reopened(home) as node:
        first = api.list_cases(node, today=TODAY)[0].id
        assert api.get_case(node, first).petitioners[0].name == "赵某1"
        assert node.db.execute("select count(*) from secrets").fetchone()[0] == 0
        assert node.db.execute("select count(*) from vault").fetchone()[0] == before
        assert verify_log(node.db, vault=node.vault).ok
    assert clear_rows(home) == 0
    assert "赵某1".encode() not in disk_bytes(home)


def test_an_old_nodes_clear_values_move_without_its_private_keys(tmp_path):
    home = legacy_village(tmp_path)
    shutil.move(home / KEYS_DIR, tmp_path / "keys-elsewhere")
    with reopened(home) as node:
        assert vault_mod.adopt_clear_rows(node.db)
        assert node.db.execute("select count(*) from secrets").fetchone()[0] == 0
    assert "赵某1".encode() not in disk_bytes(home)
    shutil.move(tmp_path / "keys-elsewhere", home / KEYS_DIR)
    with reopened(home) as node:
        first = api.list_cases(node, today=TODAY)[0].id
        assert api.get_case(node, first).petitioners[0].name == "赵某1"


# -- tampering ---------------------------------------------------------------------


@pytest.fixture
def two_cases(tmp_path):
    home = tmp_path / "v"
    with village_node(home) as node:
        ids = [register(node, serial=1), register(node, serial=2, received="2026-03-06")]
        name_seal = node.db.execute("select name_seal from case_petitioners where case_id = ?",
                                    [ids[0]]).fetchone()[0]
    return home, ids, name_seal


def flip_last_byte(home: Path, digest: str) -> None:
    conn = sqlite3.connect(home / DB_NAME)
    try:
        sealed = conn.execute("select sealed from vault where digest = ?", [digest]).fetchone()[0]
    finally:
        conn.close()
    assert sql(home, "update vault set sealed = ? where digest = ?",
               [sealed[:-1] + bytes([sealed[-1] ^ 0x01]), digest]) == 1


def move_to(home: Path, digest: str, entity_id: str) -> None:
    assert sql(home, "update vault set entity_id = ? where digest = ?", [entity_id, digest]) == 1


@pytest.mark.parametrize("tamper", ["flip", "move"])
def test_a_tampered_vault_row_is_reported_and_never_returned(two_cases, tamper):
    home, (first, second), digest = two_cases
    if tamper == "flip":
        flip_last_byte(home, digest)
    else:
        move_to(home, digest, second)
    result = cli(home, "log", "verify")
    assert result.exit_code == 1
    assert "密封值" in result.output and digest[:16] in result.output
    with reopened(home) as node:
        if tamper == "flip":
            with pytest.raises(VaultDamaged) as caught:
                api.get_case(node, first)
            assert "赵某1" not in str(caught.value)
        else:  # the row now names another record: read for its own, it is not there
            assert api.get_case(node, first).petitioners[0].name is None
        assert node.vault.of_entity(first, [digest]) == []
        assert node.vault.of_entity(second, [digest]) == []
        assert find.find_cases(node, name="赵某1") == []
        assert reads(node, second, 2)  # the other case is untouched


def test_a_row_whose_lookup_was_changed_is_reported(two_cases):
    home, _, digest = two_cases
    assert sql(home, "update vault set lookup = ? where digest = ?", ["0" * 64, digest]) == 1
    with reopened(home) as node:
        assert node.vault.problems() == [digest]


@pytest.fixture(scope="module")
def bare_vault(tmp_path_factory):
    node = village_node(tmp_path_factory.mktemp("vault") / "v")
    yield node.vault
    node.close()


ENTITY_CHARS = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.text(min_size=1, max_size=40), entity=st.text(ENTITY_CHARS, min_size=1, max_size=30),
       other=st.text(ENTITY_CHARS, min_size=1, max_size=30), position=st.integers(min_value=0))
def test_any_kept_value_reads_back_only_as_itself_and_any_flipped_byte_opens_nothing(
        bare_vault, value, entity, other, position):
    secret = sealing.seal(value)
    assert bare_vault.keep(secret, entity)
    assert bare_vault.get(secret.digest) == secret
    assert secret.digest in bare_vault.digests_of_value(value)
    sealed = bytes(bare_vault.db.execute("select sealed from vault where digest = ?",
                                         [secret.digest]).fetchone()[0])
    if len(value.encode("utf-8")) >= 4:  # shorter ones turn up in random bytes by chance
        assert value.encode("utf-8") not in sealed
    index = position % len(sealed)
    flipped = sealed[:index] + bytes([sealed[index] ^ 0x01]) + sealed[index + 1:]
    assert bare_vault._open_or_none(secret.digest, entity, flipped) is None
    if other != entity:
        assert bare_vault._open_or_none(secret.digest, other, sealed) is None
        assert bare_vault.of_entity(other, [secret.digest]) == []


# -- reads are logged --------------------------------------------------------------


def access_log(node: Node) -> list[tuple[str, str]]:
    return node.db.execute("select entity_id, what from access_log order by pos").fetchall()


def test_every_read_of_identity_is_in_the_access_log(tmp_path):
    with village_node(tmp_path / "v") as node:
        case_id = register(node, serial=9)
        api.get_case(node, case_id, reveal=False)
        api.list_cases(node, today=TODAY)
        assert access_log(node) == []
        api.get_case(node, case_id)
        find.find_cases(node, name="赵某9")
        find.find_cases(node, id_number=synthetic(9))
        logged = access_log(node)
    assert [entity_id for entity_id, _ in logged] == [case_id, "*", "*"]
    assert leaked(b"".join(what.encode() for _, what in logged), 9) == []
    result = cli(tmp_path / "v", "case", "show", case_id)
    assert result.exit_code == 0 and "赵某9" in result.output
    with reopened(tmp_path / "v") as node:
        assert access_log(node)[3:] == [(case_id, logged[0][1])]
        assert {who for (who,) in node.db.execute("select who from access_log")} == {"测试员"}


def test_a_rolled_back_first_write_does_not_lose_the_vaults_key(tmp_path):
    home = tmp_path / "v"
    with village_node(home) as node:
        with pytest.raises(RuntimeError), node.db.atomic():
            node.vault.keep(sealing.seal("钱某乙"), "431202101201-2026-99999")
            raise RuntimeError("the first write fails")
        assert wraps(node) == set()
        case_id = register(node, serial=3)
    with reopened(home) as node:
        assert reads(node, case_id, 3)
