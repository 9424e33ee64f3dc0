"""Keeping a message catalogue: extract, update, compile and check, with Babel.

Used by the project for ``locale/zh_CN/LC_MESSAGES/xinfang.po`` and by
plugin authors for their own domain (see CONTRIBUTING.md, "Messages")::

    python -m xinfang.core.catalogue update     # new msgids in, unused ones out
    python -m xinfang.core.catalogue compile    # .po -> .mo, which is what runs
    python -m xinfang.core.catalogue check      # what the tests check

Babel is needed here only (``pip install -e '.[test]'``); a running node
reads the compiled ``.mo`` with the standard library. Click's own texts
(``Usage:``, ``Missing option``) are extracted from the installed click, so
the catalogue covers every line the command line can print.
"""

from __future__ import annotations

import argparse
import io
import re
import sys
from pathlib import Path
from typing import Iterable

from .i18n import DOMAIN, LOCALE_DIR, placeholders

PACKAGE = LOCALE_DIR.parent
#: what the code marks: ``_()``, ``N_()`` and ``ngettext()``
KEYWORDS = {"_": None, "N_": None, "gettext": None, "ngettext": (1, 2)}
#: what is not the program (the tests and benchmarks keep their own texts)
NOT_SOURCES = ("tests", "benchmarks", "build", ".venv", "locale")
PERCENT = re.compile(r"%\((\w+)\)")


def _python_files(root: Path, skip: Iterable[str] = ()) -> list[Path]:
    skip = tuple(skip)
    return sorted(p for p in root.rglob("*.py")
                  if not any(part in skip for part in p.relative_to(root).parts))


def extract(root: Path, skip: Iterable[str] = NOT_SOURCES, keywords=None, only: str = "",
            domain: str = DOMAIN):
    """Every marked message under ``root``, as a Babel catalogue (the template)."""
    from babel.messages.catalog import Catalog
    from babel.messages.extract import extract as babel_extract

    template = Catalog(domain=domain, project=domain, charset="utf-8")
    for path in _python_files(root / only if only else root, skip):
        with path.open("rb") as handle:
            for lineno, message, comments, _context in babel_extract(
                    "python", handle, keywords=keywords or KEYWORDS):
                template.add(message, locations=[(str(path.relative_to(root)), lineno)],
                             auto_comments=comments)
    return template


def click_template():
    """Click's own messages, from the installed click."""
    import click

    return extract(Path(click.__file__).parent.parent, skip=(), keywords={
        "_": None, "ngettext": (1, 2)}, only="click")


def template():
    """What the xinfang catalogue must translate: the program's messages and click's."""
    found = extract(PACKAGE)
    for message in click_template():
        if message.id and message.id not in found:
            found.add(message.id, locations=message.locations)
    return found


def read(po_path: Path):
    from babel.messages.pofile import read_po

    with po_path.open("rb") as handle:
        return read_po(handle, locale=po_path.parent.parent.name)


def write(catalog, po_path: Path) -> None:
    from babel.messages.pofile import write_po

    buffer = io.BytesIO()
    write_po(buffer, catalog, width=100, sort_output=True, omit_header=False,
             include_lineno=False, ignore_obsolete=True)
    po_path.parent.mkdir(parents=True, exist_ok=True)
    po_path.write_bytes(buffer.getvalue())


def compile_mo(po_path: Path, mo_path: Path | None = None) -> Path:
    from babel.messages.mofile import write_mo

    mo_path = mo_path or po_path.with_suffix(".mo")
    buffer = io.BytesIO()
    write_mo(buffer, read(po_path))
    mo_path.write_bytes(buffer.getvalue())
    return mo_path


def update(po_path: Path, new_template) -> list[str]:
    """Bring ``po_path`` up to ``new_template``; the msgids still untranslated."""
    catalog = read(po_path) if po_path.exists() else None
    if catalog is None:
        from babel.messages.catalog import Catalog

        catalog = Catalog(locale=po_path.parent.parent.name, domain=new_template.domain,
                          project=new_template.project)
    kept = catalog.creation_date
    catalog.update(new_template, no_fuzzy_matching=True)
    catalog.fuzzy = False
    # a stable header, so a change to the catalogue is a change to its messages
    catalog.creation_date = catalog.revision_date = kept
    catalog.msgid_bugs_address = catalog.last_translator = catalog.language_team = DOMAIN
    write(catalog, po_path)
    return untranslated(catalog)


def _ids(message) -> tuple[str, ...]:
    return message.id if isinstance(message.id, tuple) else (message.id,)


def _strs(message) -> tuple[str, ...]:
    return message.string if isinstance(message.string, tuple) else (message.string,)


def untranslated(catalog) -> list[str]:
    return [_ids(m)[0] for m in catalog if m.id and (m.fuzzy or not all(_strs(m)))]


def _fields(text: str) -> set[str]:
    return placeholders(text) | set(PERCENT.findall(text))


def bad_placeholders(catalog) -> list[str]:
    """Translations whose ``{name}`` (or click's ``%(name)s``) fields differ from their msgid's."""
    wrong = []
    for message in catalog:
        if not message.id or not all(_strs(message)):
            continue
        wanted = set().union(*(_fields(i) for i in _ids(message)))
        for text in _strs(message):
            if _fields(text) - wanted or (len(_ids(message)) == 1 and _fields(text) != wanted):
                wrong.append(_ids(message)[0])
    return wrong


def problems(po_path: Path, wanted) -> list[str]:
    """Everything wrong with a catalogue against its template, one line each."""
    catalog = read(po_path)
    present = {m.id for m in catalog if m.id}
    lines = [f"not in {po_path.name}: {_ids(m)[0]!r}" for m in wanted
             if m.id and m.id not in present]
    lines += [f"no translation: {msgid!r}" for msgid in untranslated(catalog)]
    lines += [f"placeholders differ: {msgid!r}" for msgid in bad_placeholders(catalog)]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m xinfang.core.catalogue")
    parser.add_argument("action", choices=("update", "compile", "check"))
    parser.add_argument("--po", type=Path,
                        default=LOCALE_DIR / "zh_CN" / "LC_MESSAGES" / f"{DOMAIN}.po",
                        help="the catalogue (default: xinfang's zh_CN)")
    parser.add_argument("--source", type=Path, default=None,
                        help="a plugin's package directory (default: xinfang and click)")
    args = parser.parse_args(argv)
    wanted = (extract(args.source, skip=("tests",), domain=args.po.stem) if args.source
              else template())
    if args.action == "update":
        left = update(args.po, wanted)
        print(f"{args.po}: {len(wanted)} messages, {len(left)} without a translation")
    elif args.action == "compile":
        print(compile_mo(args.po))
    else:
        found = problems(args.po, wanted)
        print("\n".join(found) or f"{args.po}: complete")
        return 1 if found else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
