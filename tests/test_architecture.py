"""The layers of docs/architecture.md, checked on the source: no import cycle, no upward import.

Every ``import`` and ``from ... import`` of every module under ``src/medcodec`` is read from its
AST, including those inside functions (a lazy import is still a dependency), resolved to the
medcodec module it names, and checked against the layer table below.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"
PACKAGE = SRC / "medcodec"

#: Layer of each top-level part of the package: a module may import its own layer or lower ones.
LAYERS: dict[str, int] = {
    "errors": 0, "spec": 0, "_version": 0, "_jitcache": 0, "warnfilter": 0,
    "_parallel": 1, "fileio": 1, "metrics": 1, "progress": 1,
    "ratecontrol": 2, "render": 2,
    "codec": 3, "testing": 3,
    "numcodec": 4,
    "external": 4,
    "registry": 5,
    "dicom": 6,
    "zarr": 7,
    "evaluate": 7,
    "delivery": 8,
    "service": 9,
    "cli": 10,
    "__main__": 10,  # python -m medcodec: the CLI
    "__init__": 3,  # the package facade: re-exports the codec, errors and spec (and __version__)
}  # fmt: skip


def _module_name(path: Path) -> str:
    rel = path.relative_to(SRC).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


MODULES = _modules()


def _resolve(name: str) -> str | None:
    """The medcodec module ``name`` refers to (a package, or the module itself)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str, path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    package = module if is_package else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            # "from . import x" may name a submodule x
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        else:
            continue
        for target in targets:
            if target == "medcodec" or target.startswith("medcodec."):
                resolved = _resolve(target)
                if resolved and resolved != module:
                    found.add(resolved)
    return found


GRAPH = {m: _imports(m, p) for m, p in MODULES.items()}


def _layer(module: str) -> int:
    parts = module.split(".")
    key = parts[1] if len(parts) > 1 else "__init__"
    if key not in LAYERS:
        raise AssertionError(f"{module}: no layer for {key!r} in LAYERS (add it, and to docs/architecture.md)")
    return LAYERS[key]


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_the_walker_sees_lazy_and_relative_imports() -> None:
    """Guard against a walker that checks nothing: known edges must be found."""
    assert "medcodec.codec.framecoder" in GRAPH["medcodec.codec.jpeg"]
    assert "medcodec.registry" in GRAPH["medcodec.dicom.coding"]
    assert any(m.startswith("medcodec.dicom") for m in GRAPH["medcodec.cli.encode"])
    assert "medcodec.codec" in GRAPH["medcodec.registry"]  # imported inside functions only


def test_no_upward_import() -> None:
    bad = []
    for module, deps in GRAPH.items():
        for dep in deps:
            if _layer(dep) > _layer(module):
                bad.append(f"{module} (layer {_layer(module)}) -> {dep} (layer {_layer(dep)})")
    assert not bad, "upward imports:\n" + "\n".join(sorted(bad))


def test_no_import_cycle() -> None:
    """Tarjan's strongly connected components over module-level edges: every one of size 1."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH.get(v, ()):
            if w not in GRAPH:
                continue
            # a package's __init__ re-exporting its own modules is not a cycle with them
            if w == v.rpartition(".")[0] and MODULES[w].name == "__init__.py" and v.startswith(w + "."):
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in GRAPH:
        if v not in index:
            visit(v)
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith("medcodec.codec")))
def test_codec_is_pure(module: str) -> None:
    """The codec reads and writes bytes and arrays only: no DICOM, no file or network access."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {(n.module or "").split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and not n.level}
    assert not names & {"pydicom", "socket", "urllib", "requests", "tqdm", "click"}, names


#: Modules whose plain builtin raises belong to open work on another branch (none left).
_BUILTIN_RAISES_PENDING: set[str] = set()


@pytest.mark.parametrize("module", sorted(MODULES))
def test_errors_come_from_the_hierarchy(module: str) -> None:
    """No ``raise ValueError/TypeError/KeyError/IndexError/RuntimeError(...)``: the error hierarchy's
    classes (also builtins: InvalidInputError is a ValueError) say which kind of failure it is."""
    if module in _BUILTIN_RAISES_PENDING:
        pytest.skip("owned by open work on another branch")
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    builtin = {"ValueError", "TypeError", "KeyError", "IndexError", "RuntimeError", "Exception"}
    bad = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise) and node.exc is not None:
            exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            if isinstance(exc, ast.Name) and exc.id in builtin:
                bad.append(f"line {node.lineno}: raise {exc.id}")
    assert not bad, bad
