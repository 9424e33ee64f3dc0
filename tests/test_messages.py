"""One message catalogue: Chinese by default, English on request, nothing bypasses it."""

from __future__ import annotations

import gettext
import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from conftest import synthetic_id
from i18n_lint import bypasses
from plugins import hearing
from xinfang.cli.base import Command, Group, Option
from xinfang.cli.main import build_cli
from xinfang.core import catalogue, i18n
from xinfang.core.errors import PluginError
from xinfang.core.plugins import Registry, get_plugin_manager
from xinfang import hookimpl

PO = i18n.LOCALE_DIR / "zh_CN" / "LC_MESSAGES" / "xinfang.po"


def walk(command: click.Command, path: tuple[str, ...] = ()):
    yield path, command
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            yield from walk(sub, (*path, name))


def cli():
    return build_cli(get_plugin_manager([hearing]))


COMMANDS = list(walk(cli()))


def test_every_message_in_the_code_and_in_click_has_a_zh_cn_translation():
    assert catalogue.problems(PO, catalogue.template()) == []


def test_the_compiled_catalogue_is_the_po_file(tmp_path):
    fresh = catalogue.compile_mo(PO, tmp_path / "fresh.mo")
    with fresh.open("rb") as a, PO.with_suffix(".mo").open("rb") as b:
        assert gettext.GNUTranslations(b)._catalog == gettext.GNUTranslations(a)._catalog, (
            "run: python -m xinfang.core.catalogue compile")


def test_no_user_facing_text_bypasses_the_catalogue():
    assert bypasses() == []


def test_the_lint_catches_each_kind_of_bypass(tmp_path):
    (tmp_path / "mod.py").write_text(
        'import click\n'
        'from xinfang.core.i18n import _, N_\n'
        'class NotFound(Exception): ...\n'
        'def f(x):\n'
        '    click.echo("plain text")\n'
        '    raise NotFound(f"no case {x} here")\n'
        '    label = "信访人"\n'
        '    click.echo(_(f"case {x}"))\n'
        '    return f"the case {x} is closed"\n'
        '    click.echo(_("fine {x}").format(x=x))\n'
        '    raise NotFound(N_("fine too {x}"), x=x)\n', encoding="utf-8")
    found = [line.split(": ")[1] for line in bypasses(tmp_path)]
    assert found == ["bare text given to echo()", "bare text given to NotFound()",
                     "Chinese outside the catalogue", "f-string inside a catalogue marker "
                     "(use .format)", "English prose in an f-string"]


@pytest.mark.parametrize("path,command", COMMANDS, ids=lambda p: " ".join(p) if
                         isinstance(p, tuple) else "")
def test_every_command_reads_its_texts_from_the_catalogue(path, command):
    assert isinstance(command, (Command, Group)), f"{path}: use xinfang.cli.base.command"
    raw = object.__getattribute__(command, "help")
    assert raw, f"{' '.join(path)} has no help"
    for param in command.params:
        if isinstance(param, click.Option) and param.name != "help":
            assert isinstance(param, Option), f"{path} {param.name}: use xinfang.cli.base.option"


#: words that stay as they are in Chinese text: formats, protocols, placeholders
IDENTIFIERS = {"JSON", "CSV", "xlsx", "XLSX", "URL", "HTTP", "HTTPS", "USB", "ID", "SQLite",
               "YYYY", "MM", "DD", "xinfang", "zh_CN", "en", "epoch", "seq", "TTY", "NUL",
               "SHA", "Ed25519", "X25519", "IP", "TCP", "PEM", "ok", "UUID", "UTF", "GB",
               "Ed", "base", "Excel", "Bash", "Windows", "http", "https", "waitress",
               "Content", "Length"}
#: the names of an event's fields and of a plugin's declarations, which errors about
#: malformed events and plugins quote as they are written
FIELD_NAMES = {"key", "value", "note", "area", "author", "body", "hlc", "id", "name", "prev",
               "null", "fields", "values", "date", "create", "table", "apply", "Catalog",
               "domain", "localedir", "xinfang_message_catalogs"}


def english_words(text: str, command_names: set[str]) -> set[str]:
    text = re.sub(r"`[^`]*`", " ", text)                     # quoted commands
    text = re.sub(r"\[[\w|.-]+(\|[\w|.-]+)+\]", " ", text)   # choices [a|b]
    text = re.sub(r"(?<![\w-])--?[\w-]+", " ", text)         # option names
    text = re.sub(r"\b[A-Z][A-Z0-9_]*_[A-Z0-9_]+\b", " ", text)  # environment variables
    text = re.sub(r"\S*[./\\@:=]\S*[\w]", " ", text)         # files, URLs, name=value, codes
    text = re.sub(r"\b[A-Z0-9]{4}(-[A-Z0-9]{4})+\b", " ", text)  # key fingerprints
    text = re.sub(r"[\w-]+", lambda m: " " if m.group(0) in command_names else m.group(0),
                  text)                                      # command names, new-epoch too
    words = set(re.findall(r"[A-Za-z][A-Za-z_]+", text))
    return {w for w in words if w not in IDENTIFIERS and w not in command_names}


def codes() -> set[str]:
    """What a user may type or read as an identifier: command names, and the codes of
    states, steps and controlled lists (``accepted``, ``visit``), shown beside their labels."""
    registry = Registry.collect(get_plugin_manager([hearing]))
    found = {word for p, _ in COMMANDS for name in p for word in (name, *name.split("-"))}
    for name, entity_type in registry.entity_types.items():
        if not entity_type.lifecycle_entity:
            continue
        lifecycle = registry.lifecycle(name)
        found |= {*lifecycle.states, *lifecycle.steps}
        fields = [*registry.fields(name), *(entity_type.create.fields if entity_type.create
                                            else ()),
                  *(f for step in lifecycle.steps.values() for f in step.fields)]
        for field in fields:
            if field.choices:
                found |= {choice.code for choice in registry.vocabulary(field.choices)}
    return found


@pytest.mark.parametrize("path", [p for p, _ in COMMANDS], ids=lambda p: " ".join(p) or "xinfang")
def test_help_in_chinese_shows_no_english_but_identifiers(path):
    names = codes()
    result = CliRunner().invoke(cli(), [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert english_words(result.output, names) == set(), result.output


def test_english_is_one_flag_or_one_variable_away(monkeypatch):
    assert CliRunner().invoke(cli(), ["--help"]).output.startswith("用法")
    assert CliRunner().invoke(cli(), ["--lang", "en", "--help"]).output.startswith("Usage:")
    monkeypatch.setenv("XINFANG_LANG", "en")
    assert CliRunner().invoke(cli(), ["--help"]).output.startswith("Usage:")
    monkeypatch.delenv("XINFANG_LANG")
    monkeypatch.setenv("LANG", "en_US.UTF-8")
    assert CliRunner().invoke(cli(), ["--help"]).output.startswith("Usage:")
    monkeypatch.setenv("LANG", "C.UTF-8")
    assert CliRunner().invoke(cli(), ["--help"]).output.startswith("用法")


def test_a_command_in_english_leaves_the_next_one_in_chinese():
    assert CliRunner().invoke(cli(), ["--lang", "en", "--help"]).output.startswith("Usage:")
    assert CliRunner().invoke(cli(), ["--help"]).output.startswith("用法")
    assert i18n.language() == "zh_CN"


def test_click_usage_errors_are_in_chinese(tmp_path):
    result = CliRunner().invoke(cli(), ["--home", str(tmp_path), "case", "list", "--nope"])
    assert result.exit_code == 2
    assert "Error" not in result.output and "No such option" not in result.output
    assert "--nope" in result.output


@pytest.mark.parametrize("value,expected", [
    ("zh_CN.UTF-8", "zh_CN"), ("zh-cn", "zh_CN"), ("zh", "zh_CN"), ("en_US.UTF-8", "en"),
    ("C.UTF-8", None), ("POSIX", None), ("", None), ("fr_FR:en_GB", "en")])
def test_locale_names_are_read_as_a_language(value, expected):
    assert i18n.normalize(value) == expected


def test_a_stored_message_is_shown_in_the_reader_s_language():
    message = i18n.Message(i18n.N_("database error: {error} (is another xinfang process "
                                   "writing to this node?)"), error="locked")
    stored = message.stored()
    with i18n.language_scope("en"):
        english = i18n.show(stored)
    with i18n.language_scope("zh_CN"):
        chinese = i18n.show(stored)
    assert english.startswith("database error: locked")
    assert "locked" in chinese and chinese != english
    assert i18n.show("a reason stored as plain text") == "a reason stored as plain text"


HEARING_PO = Path(hearing.__file__).parent / "locale" / "zh_CN" / "LC_MESSAGES" / "hearing.po"
REGISTER = ("case", "register", "-p", f"name=赵某甲,id={synthetic_id(1)},phone=13800000001",
            "--channel", "来访", "--category", "劳动社保", "--request", "请求追讨拖欠工资",
            "--received", "2026-01-05", "--json")


def test_no_translation_leaves_english_words_but_identifiers():
    names = codes() | FIELD_NAMES
    wrong = []
    for message in catalogue.read(PO):
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        for text in strings:
            words = english_words(re.sub(r"\{[^}]*\}|%\(\w+\)s", " ", text), names)
            if message.id and words:
                wrong.append(f"{sorted(words)}: {text}")
    assert wrong == []


def test_a_plugin_s_messages_come_from_its_own_catalogue(invoke):
    assert invoke("init", "--level", "village", "--area", "431202101201", "--name", "测试村",
                  plugins=[hearing]).exit_code == 0
    registered = invoke(*REGISTER, plugins=[hearing])
    assert registered.exit_code == 0, registered.output
    case_id = __import__("json").loads(registered.output)["id"]
    assert invoke("case", "accept", case_id, "--date", "2026-01-06",
                  plugins=[hearing]).exit_code == 0
    refused = invoke("case", "hold-hearing", case_id, "--date", "2026-01-02", plugins=[hearing])
    assert refused.exit_code == 1
    assert "听证日期 2026-01-02 早于信访事项的登记日期 2026-01-05" in refused.output
    english = invoke("--lang", "en", "case", "hold-hearing", case_id, "--date", "2026-01-02",
                     plugins=[hearing])
    assert "a hearing cannot be dated 2026-01-02, before the case was received" in english.output
    assert i18n._(hearing.MAJOR.help) == "是或否"


def test_a_plugin_s_catalogue_is_complete(tmp_path):
    wanted = catalogue.extract(HEARING_PO.parents[3], domain="hearing")
    assert catalogue.problems(HEARING_PO, wanted) == []
    fresh = catalogue.compile_mo(HEARING_PO, tmp_path / "fresh.mo")
    with fresh.open("rb") as a, HEARING_PO.with_suffix(".mo").open("rb") as b:
        assert gettext.GNUTranslations(b)._catalog == gettext.GNUTranslations(a)._catalog


def test_a_plugin_that_returns_something_else_than_a_catalogue_stops_start_up():
    class Plugin:
        @hookimpl
        def xinfang_message_catalogs(self):
            return ["locale/"]

    with pytest.raises(PluginError, match="Catalog"):
        Registry.collect(get_plugin_manager([Plugin()]))


#: the domain's words, each with the one Chinese spelling every message uses
GLOSSARY = {
    "petitioner": "信访人", "certificate": "证书", "revoked": "吊销", "conflict": "冲突",
    "quarantine": "隔离区", "fingerprint": "指纹", "epoch": "纪元", "passphrase": "口令",
}


def test_domain_words_have_one_spelling_in_every_message():
    wrong = []
    for message in catalogue.read(PO):
        if not message.id or not isinstance(message.id, str):
            continue
        prose = re.sub(r"\{[^}]*\}|`[^`]*`|--[\w-]+", " ", message.id)
        for english, chinese in GLOSSARY.items():
            if re.search(rf"\b{english}s?\b", prose, re.I) and chinese not in message.string:
                wrong.append(f"{message.id!r} -> {message.string!r} lacks {chinese}")
    assert wrong == []


def test_the_demo_in_chinese_shows_no_english_but_identifiers():
    result = CliRunner().invoke(build_cli(), ["demo"])
    assert result.exit_code == 0, result.output
    # the HTTP server's name is an identifier too
    assert english_words(result.output, codes() | {"waitress"}) == set(), result.output
