"""Finds user-facing text in the program that does not go through the catalogue.

A message is marked with ``_()``, ``N_()``, ``ngettext()`` or kept as a
``Message``; what is left as a bare literal where users read it is a bypass:

- a literal (or f-string, or ``"...".format()``) given to an error, to
  ``click.echo``, a prompt, a progress bar or a ``Message``, or as a
  ``help=``/``label=``/``prompt=``-like keyword;
- any literal with Chinese in it, except the domain vocabulary (the labels
  given to ``Choice``, ``State``, ``Step``, ``Field``, ``EntityType`` and the
  level names): Chinese belongs in the catalogue, where --lang en can
  replace it;
- an f-string with English words in it, unless it is SQL or an identifier.

A line that holds an identifier that happens to look like prose says so
with ``# i18n: identifier``.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SKIP = ("tests", "benchmarks", "build", ".venv", "locale")
#: synthetic names and places for the demo, and the catalogue's own maintenance tool,
#: which speaks to developers
DATA_MODULES = {"demo/synthetic.py", "core/catalogue.py"}
MARKERS = {"_", "N_", "gettext", "ngettext"}
SHOWN = {"echo", "secho", "fail", "ClickException", "UsageError", "BadParameter", "prompt",
         "confirm", "progress", "progress_to", "progressbar", "Message", "Abort"}
TEXT_KEYWORDS = {"help", "short_help", "epilog", "prompt", "label", "title", "header",
                 "message", "description"}
VOCABULARY = {"Choice", "State", "Step", "Field", "EntityType", "Level", "_choices"}
SQL = re.compile(r"^\s*(select|insert|update|delete|create|drop|alter|with|pragma|replace|"
                 r"attach|vacuum|order|where|and|or|group|from|values|on|join|left|limit)\b",
                 re.I)
CJK = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")
PROSE = re.compile(r"[A-Za-z]{2,}[,;:]? [A-Za-z]{2,}")
ALLOW = "# i18n: identifier"


def _is_error(name: str) -> bool:
    return name.endswith(("Error", "Refused", "NotFound", "Exception", "Hold", "Input",
                          "Event", "Denied", "Imported", "Mismatch"))


def _name(func: ast.expr) -> str:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


def _literal_text(node: ast.expr) -> str | None:
    """The text of a bare literal, f-string, concatenation or ``"...".format()``."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value for v in node.values
                       if isinstance(v, ast.Constant) and isinstance(v.value, str))
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mod)):
        left, right = _literal_text(node.left), _literal_text(node.right)
        if left is not None or right is not None:
            return (left or "") + (right or "")
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr == "format"):
        return _literal_text(node.func.value)
    return None


def _words(text: str) -> bool:
    return bool(re.search(r"[A-Za-z]{2,}", text)) or bool(CJK.search(text))


class _Finder(ast.NodeVisitor):
    def __init__(self, path: str, lines: list[str]):
        self.path, self.lines, self.found = path, lines, []
        self.seen: set[int] = set()
        self.exempt: set[int] = set()    # ids of literals that are vocabulary or marked

    def report(self, node: ast.AST, why: str) -> None:
        line = self.lines[node.lineno - 1]
        if ALLOW not in line and node.lineno not in self.seen:
            self.seen.add(node.lineno)
            self.found.append(f"{self.path}:{node.lineno}: {why}: {line.strip()[:90]}")

    def _exempt_tree(self, node: ast.AST) -> None:
        for inner in ast.walk(node):
            self.exempt.add(id(inner))

    def visit_Call(self, node: ast.Call) -> None:
        name = _name(node.func)
        if name in MARKERS:
            for arg in node.args:
                if isinstance(arg, ast.JoinedStr):
                    self.report(arg, "f-string inside a catalogue marker (use .format)")
            self._exempt_tree(node)
        elif name in VOCABULARY:
            for arg in [*node.args, *(k.value for k in node.keywords if k.arg == "label")]:
                self._exempt_tree(arg)
        if name in SHOWN or _is_error(name):
            for arg in node.args[:1]:
                text = _literal_text(arg)
                if text is not None and _words(text):
                    self.report(arg, f"bare text given to {name}()")
        for keyword in node.keywords:
            if keyword.arg in TEXT_KEYWORDS:
                text = _literal_text(keyword.value)
                if text is not None and _words(text):
                    self.report(keyword.value, f"bare text as {keyword.arg}=")
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        if (isinstance(node.value, str) and id(node) not in self.exempt
                and CJK.search(node.value)):
            self.report(node, "Chinese outside the catalogue")

    def visit_JoinedStr(self, node: ast.JoinedStr) -> None:
        if id(node) not in self.exempt:
            text = _literal_text(node) or ""
            if CJK.search(text):
                self.report(node, "Chinese outside the catalogue")
            elif PROSE.search(text) and not SQL.match(text):
                self.report(node, "English prose in an f-string")
            self._exempt_tree(node)
        self.generic_visit(node)


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            found.add(id(node.value))    # attribute docstrings (#: and bare strings)
    return found


def bypasses(root: Path = ROOT) -> list[str]:
    """Every place that shows text without the catalogue, as ``path:line: why: code``."""
    found: list[str] = []
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root)
        if relative.parts[0] in SKIP or str(relative) in DATA_MODULES:
            continue
        source = path.read_text(encoding="utf-8")
        tree = ast.parse(source)
        finder = _Finder(str(relative), source.splitlines())
        finder.exempt |= _docstrings(tree)
        finder.visit(tree)
        found.extend(finder.found)
    return found


if __name__ == "__main__":
    import collections
    import sys

    lines = bypasses()
    print("\n".join(lines))
    counts = collections.Counter(line.split(":")[0] for line in lines)
    for file, n in counts.most_common():
        print(f"{n:5} {file}", file=sys.stderr)
    print(len(lines), file=sys.stderr)
