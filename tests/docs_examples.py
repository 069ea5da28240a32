"""Find the fenced code blocks of the README and ``docs/``, and decide how each is checked.

Every block is checked one way or another; ``test_docs_examples.py`` does the checking:

* ``python`` blocks are executed: a block that defines ``test_*`` functions is a test module run
  by pytest (in one pytest process per set of options), any other block runs as a script. Every
  Python block is also type-checked with mypy. A block whose first line is ``# not run: <why>``
  is type-checked only; the comment shows in the rendered page, so the reader sees it too.
* ``console`` blocks run their ``$ ...`` commands (every command must exit 0 unless the directive
  says otherwise), in a folder holding the page's blocks titled with a file name
  (``title="test_gateway.py"``). A console block that cannot run starts with ``# not run: <why>``.
* ``toml``, ``yaml``, ``ini`` and ``json`` blocks must parse; ``text`` blocks are output or
  pictures, not code.

A directive in an HTML comment right before the fence adjusts a block:
``<!-- check: pytest args="--audit-emulator -n 2" outcome="passed=1 failed=1" -->``,
``<!-- check: continue -->`` (a script that goes on in the namespace of the page's previous
script block), ``<!-- check: console exit="0 1" -->`` (expected exit codes, one per command).

Line numbers are kept: the code of a block sits at its own lines of the Markdown file in what is
run and type-checked, so a traceback or a mypy error points at ``file.md:line``.

Run ``python tests/docs_examples.py`` for a table of the blocks and how each is checked.
"""

from __future__ import annotations

import ast
import re
import shlex
import textwrap
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
#: Names of ``docs_stage`` an example may use without importing them (they stand for the
#: reader's code under test; ``docs/about.md`` lists them).
STAGE_NAMES = ("send_alert", "start_remediation", "trigger_gateway")

_OPEN = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<lang>[\w+-]*)(?P<info>.*)$")
_TITLE = re.compile(r'title="(?P<title>[^"]*)"')
_DIRECTIVE = re.compile(r"^\s*<!--\s*check:\s*(?P<body>.*?)\s*-->\s*$")
_NOT_RUN = re.compile(r"^#\s*not run:\s*(?P<reason>\S.*)$")
_FILENAME = re.compile(r"^[\w./-]+\.(py|ini|toml|cfg|yaml|yml|json)$")

PYTHON = {"python", "py"}
CONFIG = {"toml", "yaml", "yml", "ini", "json"}
OUTPUT = {"text"}

#: How a block is checked.
RUN, PYTEST, TYPECHECK, CONSOLE, CONFIG_KIND, OUTPUT_KIND, NOT_RUN = (
    "run",
    "pytest",
    "typecheck only",
    "console",
    "config",
    "output",
    "not run",
)


class BlockError(Exception):
    """A block that is neither checkable nor marked as not runnable."""


@dataclass(frozen=True)
class Block:
    """One fenced code block of a Markdown file."""

    source: str  # path relative to the repository root
    line: int  # line number of the block's first code line
    lang: str
    title: str | None
    code: str  # dedented
    options: dict[str, str] = field(default_factory=dict)
    mode: str = ""

    @property
    def where(self) -> str:
        return f"{self.source}:{self.line}"

    @property
    def kind(self) -> str:
        """How the block is checked (one of the constants above)."""
        lang = self.lang.lower()
        first = self.code.split("\n", 1)[0].strip()
        if lang in PYTHON:
            if _NOT_RUN.match(first):
                return TYPECHECK
            if self.mode in ("pytest", "run"):
                return PYTEST if self.mode == "pytest" else RUN
            if self.mode == "continue":
                return RUN
            if self.mode:
                raise BlockError(f"{self.where}: unknown check mode {self.mode!r} for Python")
            return PYTEST if re.search(r"^(async )?def test_", self.code, re.M) else RUN
        if lang == "console":
            if _NOT_RUN.match(first):
                return NOT_RUN
            if not self.commands():
                raise BlockError(
                    f"{self.where}: a console block needs '$ ' commands, "
                    "or a first line '# not run: <why>'"
                )
            return CONSOLE
        if lang in CONFIG:
            return CONFIG_KIND
        if lang in OUTPUT:
            return OUTPUT_KIND
        raise BlockError(
            f"{self.where}: a ```{self.lang or '(no language)'} block is neither checked nor "
            "marked: use python, console, toml, yaml, ini, json or text"
        )

    @property
    def reason(self) -> str | None:
        match = _NOT_RUN.match(self.code.split("\n", 1)[0].strip())
        return match.group("reason") if match else None

    @property
    def file_name(self) -> str | None:
        """The file this block is, when its title is a file name."""
        return self.title if self.title and _FILENAME.match(self.title) else None

    def commands(self) -> list[tuple[int, str, list[str]]]:
        """The ``$`` commands of a console block: (line number, command, output shown after it).

        Continuation lines (a command ending in a backslash) are joined.
        """
        out: list[tuple[int, str, list[str]]] = []
        lines = self.code.split("\n")
        i = 0
        while i < len(lines):
            text = lines[i]
            if text.startswith("$ "):
                start, command = self.line + i, text[2:]
                while command.endswith("\\") and i + 1 < len(lines):
                    i += 1
                    command = command[:-1] + " " + lines[i].strip()
                out.append((start, command, []))
            elif out:
                out[-1][2].append(text)
            i += 1
        return out

    def stage_names(self) -> list[str]:
        """The stand-ins of ``docs_stage`` this block uses without defining them."""
        try:
            tree = ast.parse(self.code)
        except SyntaxError:
            return []
        used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        defined = {
            n.name
            for n in ast.walk(tree)
            if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        } | {
            (a.asname or a.name).split(".")[0]
            for n in ast.walk(tree)
            if isinstance(n, ast.Import | ast.ImportFrom)
            for a in n.names
        }
        return sorted(name for name in STAGE_NAMES if name in used and name not in defined)


def sources(root: Path = ROOT) -> list[Path]:
    """The Markdown files whose blocks are checked: the README and every page of ``docs/``."""
    return [root / "README.md", *sorted((root / "docs").rglob("*.md"))]


def parse(path: Path, root: Path = ROOT) -> list[Block]:
    """Return the fenced blocks of one Markdown file, in order."""
    rel = path.relative_to(root).as_posix()
    lines = path.read_text(encoding="utf-8").split("\n")
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        match = _OPEN.match(lines[i])
        if not match:
            i += 1
            continue
        fence = match.group("fence")
        closing = re.compile(rf"^[ \t]*{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$")
        j = i + 1
        while j < len(lines) and not closing.match(lines[j]):
            j += 1
        if j == len(lines):
            raise BlockError(f"{rel}:{i + 1}: unclosed code fence")
        title = _TITLE.search(match.group("info"))
        options, mode = _directive(lines[i - 1] if i else "", f"{rel}:{i + 1}")
        blocks.append(
            Block(
                source=rel,
                line=i + 2,
                lang=match.group("lang"),
                title=title.group("title") if title else None,
                code=textwrap.dedent("\n".join(lines[i + 1 : j])),
                options=options,
                mode=mode,
            )
        )
        i = j + 1
    return blocks


def _directive(line: str, where: str) -> tuple[dict[str, str], str]:
    match = _DIRECTIVE.match(line)
    if not match:
        return {}, ""
    words = shlex.split(match.group("body"))
    if not words:
        raise BlockError(f"{where}: empty check directive")
    options: dict[str, str] = {}
    for word in words[1:]:
        key, eq, value = word.partition("=")
        if not eq:
            raise BlockError(f"{where}: directive option {word!r} is not key=value")
        options[key] = value
    return options, words[0]


def all_blocks(root: Path = ROOT) -> list[Block]:
    """Every block of every source."""
    return [block for path in sources(root) for block in parse(path, root)]


def chains(blocks: Sequence[Block]) -> Iterator[list[Block]]:
    """Group Python blocks that run together: a script and the ``continue`` blocks after it.

    Every other Python block is a chain of its own.
    """
    current: list[Block] = []
    for block in blocks:
        if block.lang.lower() not in PYTHON:
            continue
        if block.mode == "continue":
            if block.kind != RUN:
                raise BlockError(f"{block.where}: a 'continue' block must run (no '# not run:')")
            if not current or current[0].kind != RUN or current[0].source != block.source:
                raise BlockError(f"{block.where}: 'continue' needs a script block before it")
            current.append(block)
            continue
        if current:
            yield current
        current = [block]
    if current:
        yield current


def padded(chain: Sequence[Block], *, header: str = "") -> str:
    """The chain's code at its own line numbers of the Markdown file (other lines blank).

    ``header`` (one line, e.g. an import of stand-ins) takes line 1, which is never code: a
    block's code starts after its opening fence.
    """
    last = chain[-1].line + chain[-1].code.count("\n")
    lines = [""] * last
    for block in chain:
        for offset, text in enumerate(block.code.split("\n")):
            lines[block.line - 1 + offset] = text
    if header:
        lines[0] = header
    return "\n".join(lines) + "\n"


def stage_header(chain: Sequence[Block]) -> str:
    names = sorted({name for block in chain for name in block.stage_names()})
    return f"from docs_stage import {', '.join(names)}  # noqa: F401" if names else ""


def module_name(chain: Sequence[Block]) -> str:
    """A unique, importable module name for a chain."""
    slug = re.sub(r"\W+", "_", chain[0].source.removesuffix(".md")).strip("_").lower()
    return f"doc_{slug}_L{chain[0].line}"


def unmatched_line(shown: Sequence[str], actual: str, *, loose: bool = True) -> str | None:
    """The first shown line that the actual output lacks, or None when all are there in order.

    Shown lines match whole actual lines (trailing spaces aside); when ``loose``, runs of spaces
    count as one space (pytest indents its ``E`` lines by the traceback's depth). ``…`` in a
    shown line stands for any text (ids, times, widths).
    """

    def norm(line: str) -> str:
        return " ".join(line.split()) if loose else line.rstrip()

    lines = [norm(line) for line in actual.splitlines()]
    position = 0
    for want in shown:
        if not want.strip():
            continue
        parts = norm(want).split("…")
        pattern = re.compile(".*?".join(re.escape(part) for part in parts))
        for index in range(position, len(lines)):
            if pattern.fullmatch(lines[index]):
                position = index + 1
                break
        else:
            return want
    return None


def kind_of(block: Block) -> str:
    """The block's kind, or ``"unmarked"`` when it is neither checkable nor marked."""
    try:
        return block.kind
    except BlockError:
        return "unmarked"


def summary(blocks: Sequence[Block]) -> Counter[str]:
    return Counter(kind_of(block) for block in blocks)


def main() -> None:
    blocks = all_blocks()
    for block in blocks:
        note = f"  ({block.reason})" if block.reason else ""
        print(f"{block.where:45} {block.lang or '-':8} {kind_of(block)}{note}")
    counts = summary(blocks)
    print()
    for kind, n in sorted(counts.items()):
        print(f"{n:4}  {kind}")
    python = [b for b in blocks if b.lang.lower() in PYTHON]
    print(f"{len(python):4}  Python blocks type-checked (executed ones included)")


if __name__ == "__main__":
    main()
