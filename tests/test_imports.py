"""The import graph: the harness never imports a plugin, and no module imports itself back.

``benchmark/`` is the harness; ``methods/`` holds plugins on its contract (``benchmark.method``),
which the methods registry imports on its first lookup. Read statically: the imports a module
runs when it is imported (top level, class bodies, ``if``/``try`` blocks), with the packages that
importing a submodule initialises first, and optionally those deferred into function bodies or
``if TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from benchmark.method import METHODS

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("benchmark", "methods", "datasets")


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imported(node: ast.AST, module: str, is_package: bool) -> list[str]:
    """The project modules one import statement names (a ``from pkg import name`` may name a submodule)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:  # relative: from the module's package, one level up per extra dot
        package = module if is_package else module.rpartition(".")[0]
        for _ in range(node.level - 1):
            package = package.rpartition(".")[0]
        base = f"{package}.{base}".rstrip(".")
    return [base] + [f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in MODULES]


def _deferred(node: ast.stmt) -> bool:
    """A block whose imports do not run when the module is imported: a function body, ``if TYPE_CHECKING``."""
    if isinstance(node, ast.If):
        return "TYPE_CHECKING" in ast.unparse(node.test)
    return isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))


def _statements(body: list[ast.stmt], functions: bool):
    """Import statements in ``body``: at import time only, or (``functions``) anywhere."""
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif _deferred(node):
            if functions:
                yield from _statements(node.body, functions)
        else:
            for field in ("body", "orelse", "finalbody", "handlers"):
                yield from _statements(getattr(node, field, []) or [], functions)


def _edges(module: str, functions: bool = False) -> set[str]:
    """Project modules that importing ``module`` runs: each named module and the packages above it."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(), str(path))
    own_packages = {".".join(module.split(".")[:i]) for i in range(1, module.count(".") + 1)}
    edges = set()
    for node in _statements(tree.body, functions):
        for name in _imported(node, module, path.name == "__init__.py"):
            parts = name.split(".")
            for i in range(1, len(parts) + 1):
                target = ".".join(parts[:i])
                # A module's own packages are already initialising when it runs.
                if target in MODULES and target not in own_packages and target != module:
                    edges.add(target)
    return edges


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a list of nodes (first == last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_find_cycle_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_no_import_cycle():
    """None at import time, and none hidden by deferring an import into a function either."""
    graph = {module: _edges(module, functions=True) for module in MODULES}
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


@pytest.mark.parametrize("module", [m for m in MODULES if m.split(".")[0] == "benchmark"])
def test_the_harness_never_imports_a_plugin_method(module):
    """Not even inside a function: the methods registry loads the plugins by name (``Registry(plugins=...)``)."""
    plugins = {m for m in _edges(module, functions=True) if m.split(".")[0] == "methods"}
    assert not plugins, f"{module} imports {sorted(plugins)}"


def _code_strings(path: Path) -> list[str]:
    """Every string constant in a module's code, docstrings left out."""
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    ]


@pytest.mark.parametrize("module", [m for m in MODULES if m.split(".")[0] == "benchmark"])
def test_the_harness_names_no_method(module):
    """No ``if method.name == "hypermod"``: a method's behaviour lives in its plugin, reached through the contract."""
    named = sorted(set(_code_strings(MODULES[module])) & set(METHODS.names()))
    assert not named, f"{module} names method(s) {named} in its code"


def test_loading_a_suite_and_every_method_leaves_torch_dynamo_unimported():
    """Importing torch._dynamo costs over a second of CPU in every CLI process and SLURM job; only
    ``train.compile`` (and torchvision's image saving, deferred in the runner) needs it."""
    import subprocess
    import sys

    probe = (
        "import sys; from benchmark.config import load_suite; from benchmark.method import METHODS; "
        "load_suite('toy'); [METHODS.get(name) for name in METHODS.names()]; "
        "print('torch._dynamo' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False", "a module imports torch._dynamo (or torchvision) at import time"
