"""Griffe extension for the API reference: read our reST-flavoured docstrings as Markdown.

The docstrings are Google style with a few reST habits (``:class:`X``` roles, ``.. versionadded::``,
literal blocks introduced by ``::``). This turns each into what mkdocstrings renders: a role into
a cross-reference to the public name (a name outside the public API stays inline code), the
directive into an "Added in version" line, a literal block into a fenced Python block.

Loaded by ``mkdocs.yml`` (``extensions: [scripts/docs_griffe.py]``); nothing imports it.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

#: The public modules; their ``__all__`` is the API the reference documents.
PUBLIC_MODULES = (
    "kubernaut_audit",
    "kubernaut_audit.emitters",
    "kubernaut_audit.emulator",
    "kubernaut_audit.models",
    "kubernaut_audit.pytest_plugin",
    "kubernaut_audit.testing",
)

_ROLE = re.compile(r":(?:class|func|meth|attr|exc|data|obj|mod):`~?([^`]+)`")
_VERSION = re.compile(r"^(\s*)\.\. (versionadded|versionchanged|deprecated):: *(\S+)(.*)$", re.M)
_LABELS = {
    "versionadded": "Added in version",
    "versionchanged": "Changed in version",
    "deprecated": "Deprecated since version",
}


def public_paths(package: griffe.Module) -> dict[str, str]:
    """Map the canonical path of every public object to the path it is documented under."""
    paths: dict[str, str] = {}
    for module_path in PUBLIC_MODULES:
        module = package.modules_collection.get_member(module_path)
        for name in module.exports or ():
            member = module.get_member(str(name))
            public = f"{module_path}.{name}"
            paths[public] = public
            try:
                paths[member.canonical_path] = public
            except griffe.AliasResolutionError:
                continue
    return paths


def _link(obj: griffe.Object | griffe.Alias, name: str, public: dict[str, str]) -> str:
    head, _, rest = name.partition(".")
    candidates = [name]
    try:
        resolved = obj.resolve(head)
        candidates.insert(0, f"{resolved}.{rest}" if rest else resolved)
    except (griffe.NameResolutionError, ValueError):
        pass
    for candidate in candidates:
        prefix, suffix = candidate, ""
        while prefix:
            if prefix in public:
                return f"[`{name}`][{_rendered(obj, public[prefix], suffix)}]"
            prefix, dot, last = prefix.rpartition(".")
            suffix = f"{dot}{last}{suffix}"
    return f"`{name}`"


def _rendered(obj: griffe.Object | griffe.Alias, path: str, suffix: str) -> str:
    """``path + suffix``, cut back to the deepest object the reference renders (members without
    a docstring, such as fields listed in an Attributes section, get no heading of their own)."""
    try:
        target = obj.modules_collection.get_member(path)
    except (KeyError, ValueError):
        return path
    for part in suffix.split(".")[1:]:
        try:
            member = target.get_member(part)
        except (KeyError, ValueError, griffe.AliasResolutionError):
            break
        if not member.has_docstring:
            break
        target, path = member, f"{path}.{part}"
    return path


def _literal_blocks(text: str) -> str:
    lines = text.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.rstrip().endswith("::") and not line.strip().startswith(".."):
            indent = len(line) - len(line.lstrip())
            out.append(line.rstrip()[:-1])
            j = i + 1
            block: list[str] = []
            while j < len(lines) and (
                not lines[j].strip() or len(lines[j]) - len(lines[j].lstrip()) > indent
            ):
                block.append(lines[j])
                j += 1
            body = [b for b in block if b.strip()]
            if body:
                cut = min(len(b) - len(b.lstrip()) for b in body)
                pad = " " * indent
                out.extend(["", f"{pad}```python"])
                out.extend(pad + b[cut:] if b.strip() else "" for b in block if b is not None)
                while out and not out[-1].strip():
                    out.pop()
                out.extend([f"{pad}```", ""])
                i = j
                continue
        out.append(line)
        i += 1
    return "\n".join(out)


def rewrite(text: str, obj: griffe.Object | griffe.Alias, public: dict[str, str]) -> str:
    """Return ``text`` with reST roles, version directives and literal blocks made Markdown."""
    text = _literal_blocks(text)
    text = _VERSION.sub(
        lambda m: f"{m.group(1)}*{_LABELS[m.group(2)]} {m.group(3)}.*{m.group(4)}", text
    )
    return _ROLE.sub(lambda m: _link(obj, m.group(1), public), text)


class RestToMarkdown(griffe.Extension):
    """Rewrite the docstrings of a loaded package (see the module docstring)."""

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        if pkg.path != "kubernaut_audit":
            return
        public = public_paths(pkg)
        seen: set[int] = set()
        stack: list[griffe.Object] = [pkg]
        while stack:
            obj = stack.pop()
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            if obj.docstring is not None:
                obj.docstring.value = rewrite(obj.docstring.value, obj, public)
            stack.extend(m for m in obj.members.values() if isinstance(m, griffe.Object))
