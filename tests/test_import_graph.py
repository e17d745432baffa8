"""The import graph of our own packages: no cycles, and the layers point one way.

Read from the source with ``ast`` (nothing is imported), so a cycle hidden behind a lazy
import inside a function counts too: it still ties two modules together, and the day
someone hoists that import to the top the package stops loading. Imports under
``if TYPE_CHECKING:`` are left out: they never run.

Layers (docs/design.md, "The top level"): ``connectors/`` talks to platforms and
``analysis/`` computes, neither touches the database, so neither imports ``storage``;
nothing below ``listener/`` imports ``listener`` (it only wires). And every package on
disk is in pyproject.toml's list, so the wheel ships it.
"""

from __future__ import annotations

import ast
import functools
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from storage.store import Store

ROOT = Path(__file__).resolve().parent.parent


def our_packages() -> list[str]:
    """The top-level packages pyproject.toml ships (``analysis.roi`` lives under ``analysis``)."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return sorted({name.split(".")[0] for name in config["tool"]["setuptools"]["packages"]})


def module_files() -> dict[str, Path]:
    """Dotted module name -> file, for every module of our packages."""
    modules = {}
    for package in our_packages():
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imported_names(tree: ast.AST, module: str, is_package: bool) -> set[str]:
    """Every dotted name the module imports (``from a import b`` gives ``a`` and ``a.b``)."""
    names: set[str] = set()
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                anchor = module.split(".")
                if not is_package:
                    anchor.pop()
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
        stack.extend(ast.iter_child_nodes(node))
    return names


@functools.cache  # the tests below only read it: parsing every module once is enough
def import_graph() -> dict[str, set[str]]:
    """Module -> the modules of ours it imports. ``from pkg import sub`` points at
    ``pkg.sub`` when that is a module, else at ``pkg``; a parent package's ``__init__``
    is not an implied edge (Python runs it first, but a submodule importing a sibling
    does not re-enter it)."""
    files = module_files()
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        targets = set()
        for name in _imported_names(tree, module, path.name == "__init__.py"):
            if name in files:
                targets.add(name)
            elif name.rpartition(".")[0] in files and name.rpartition(".")[0] != module:
                targets.add(name.rpartition(".")[0])  # ``from pkg import function``
        targets.discard(module)
        graph[module] = targets
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a path that starts and ends at the same module, or None."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state and (found := visit(target)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_graph_is_read():
    graph = import_graph()
    # Guards against a walker that finds nothing and so finds no cycle.
    assert {"listener.cli", "connectors.base", "inputs.spend", "demo.world"} <= graph.keys()
    assert "connectors.base" in graph["connectors.demo"]
    assert "demo.world" in graph["connectors.demo"]


def test_no_import_cycles():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_find_cycle_reports_a_lazy_cycle():
    # The walker counts imports inside functions (the kind that hid bluesky <-> jetstream).
    tree = ast.parse("def f():\n    from b import thing\n")
    assert _imported_names(tree, "a", False) == {"b", "b.thing"}
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


@pytest.mark.parametrize("layer, forbidden", [
    ("connectors", "storage"),  # no SQL in connectors/
    ("analysis", "storage"),    # no SQL in analysis/
    ("inputs", "storage"),
    ("demo", "storage"),
    ("connectors", "listener"),  # listener/ wires; nothing below imports it
    ("analysis", "listener"),
    ("storage", "listener"),
    ("inputs", "listener"),
    ("demo", "listener"),
])
def test_layers_point_one_way(layer, forbidden):
    wrong = sorted(f"{module} imports {target}"
                   for module, targets in import_graph().items() if module.split(".")[0] == layer
                   for target in targets if target.split(".")[0] == forbidden)
    assert not wrong, "\n".join(wrong)


def test_every_package_is_listed_for_the_wheel():
    # pyproject.toml lists the packages one by one (docs/design.md); a subpackage left out
    # still imports from a checkout and an editable install, so only a built wheel would
    # miss it (connectors.x, say, and with it the x entry point).
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    listed = set(config["tool"]["setuptools"]["packages"])
    on_disk = {".".join(init.parent.relative_to(ROOT).parts)
               for package in our_packages() for init in (ROOT / package).rglob("__init__.py")}
    assert on_disk - listed == set(), "packages missing from [tool.setuptools] packages"
    assert listed - on_disk == set(), "listed packages that do not exist"


# What a 'listener' start must not import before its command needs it: each start costs
# its imports in CPU (the daemon, every test that runs the CLI as a subprocess, a user's
# 'listener status'). numpy and pyarrow cost 0.25 CPU s together, sqlalchemy and duckdb
# 0.25 more; only the commands that compute alerts or write batches need the first two.
_LISTENER_START = """
import sys
import click
import listener.cli
loaded = {"import listener.cli": sorted(m for m in ("numpy", "pyarrow", "sqlalchemy", "duckdb") if m in sys.modules)}
listener.cli.cli.main(["--db", sys.argv[1], "status"], standalone_mode=False)
loaded["listener status"] = sorted(m for m in ("numpy", "pyarrow") if m in sys.modules)
print(loaded)
"""


def test_a_listener_start_imports_only_what_its_command_needs(tmp_path):
    Store.open(tmp_path / "listener.duckdb").close()  # an empty database, migrated
    proc = subprocess.run([sys.executable, "-c", _LISTENER_START, str(tmp_path / "listener.duckdb")],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == str({"import listener.cli": [], "listener status": []})
