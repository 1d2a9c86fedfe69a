"""The package's import rules (DESIGN.md §2), checked on the source with :mod:`ast`.

Every module of ``backdoor_curves`` and ``extractors`` is parsed and every import read: at module
level, inside functions and methods, and under ``if TYPE_CHECKING:`` (a layering rule holds for
type hints too). Nothing is imported to do so, except in the torch test, which imports the package
in a fresh interpreter.

The rules:

1. **No import cycles between modules.** An edge ``a -> b`` is drawn when module ``a`` imports
   module ``b`` or a name from it (``from b import name``; ``from pkg import sub`` draws an edge to
   the submodule ``pkg.sub``). Importing ``pkg.sub`` also runs ``pkg/__init__.py``, but that
   implicit edge is not drawn: a package's ``__init__`` importing its own modules is not a cycle.
   A lazy import inside a function counts: it hides a cycle from the interpreter, not the design.
2. **No private names across subpackages.** A module may not import a private module (a dotted
   path with a ``_name`` component) nor a private name (``from m import _name``, ``m._name``) from
   another part of the project, nor use a private member (``obj._name``) that only classes of
   another part define. The parts are the subpackages of ``backdoor_curves`` (``learners``,
   ``paths``, ``measures``, ...), the top level of ``backdoor_curves`` (``data.py``,
   ``linalg.py``, ``demo.py``, ...), and ``extractors``. Dunder names (``__version__``) are
   public. One exception: the private helper modules at the top of the package (``_validation``,
   ``_io``, ``_threads``, ``_version``, ``_param_validation``, ``_config``, ``_memory``,
   ``_identity``) are
   shared by the whole project, so any part, ``extractors`` included (it ships in the same
   distribution and raises the same argument errors), may import them and their public names.
3. **``backdoor_curves`` never imports ``extractors``.** ``extractors`` depends on
   ``backdoor_curves``, never the reverse.
4. **``import backdoor_curves`` does not import torch** (nor torchvision): an optional extra.

Beyond modules, the subpackages themselves must not import each other in a circle (data flows one
way: datasets -> attacks -> learners -> paths/measures -> study -> viz/report), except for the
lazy convenience imports listed, with their reason, in :data:`CONVENIENCE_IMPORTS`.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from collections import deque
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "backdoor_curves"
PACKAGES = (PACKAGE, "extractors")
SHARED_PRIVATE_MODULES = frozenset(
    f"{PACKAGE}.{name}"
    for name in (
        "_validation",
        "_io",
        "_threads",
        "_version",
        "_param_validation",
        "_config",
        "_memory",
        "_identity",
    )
)
TORCH_MODULES = ("torch", "torchvision")
#: Imports against the flow of data between subpackages that the order of stages allows, with
#: the reason. Each is a lazy import in a convenience method; the module cycle rule still holds
#: for them (the imported module must not import the importer back).
CONVENIENCE_IMPORTS = {
    # LearningCurve.plot() draws with viz.plots (pandas' DataFrame.plot habit); viz.plots reads
    # the curve's attributes and imports nothing from measures.
    (f"{PACKAGE}.measures.results", f"{PACKAGE}.viz.plots"),
    # DeepBackdoorTrigger(model=None) trains its default clean SmallCNN with nn's model and
    # trainer (lazy imports in attacks.dba); neither nn.models nor nn.train imports attacks.
    (f"{PACKAGE}.attacks.dba", f"{PACKAGE}.nn.models"),
    (f"{PACKAGE}.attacks.dba", f"{PACKAGE}.nn.train"),
}


@dataclass(frozen=True)
class Import:
    """One import statement's target, resolved to a module of the project (or outside it)."""

    importer: str  # dotted name of the importing module
    line: int
    where: str  # "module level", "in f", "in C.method", "under TYPE_CHECKING"
    module: str  # the module imported, or the module a name is imported from
    name: str | None  # the name taken from ``module`` (``from module import name``), if any

    def place(self) -> str:
        return f"{module_file(self.importer)}:{self.line} ({self.where})"


def module_file(module: str) -> str:
    path = _MODULE_PATHS.get(module)
    return str(path.relative_to(ROOT)) if path is not None else module


def _discover() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


_MODULE_PATHS = _discover()
MODULES = frozenset(_MODULE_PATHS)


def _is_package(module: str) -> bool:
    return _MODULE_PATHS[module].name == "__init__.py"


def _resolve_relative(importer: str, level: int, module: str | None) -> str:
    base = importer.split(".")
    if not _is_package(importer):
        base.pop()  # a plain module's "." is its package
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join(base + ([module] if module else []))


class _ImportCollector(ast.NodeVisitor):
    """Collect the imports of one module with their line and enclosing function."""

    def __init__(self, module: str):
        self.module = module
        self.scope: list[str] = []
        self.type_checking = 0
        self.imports: list[Import] = []
        self.module_aliases: dict[str, str] = {}  # local name -> project module it is bound to
        self.attribute_uses: list[tuple[str, str, int, str]] = []  # (base name, attr, line, where)

    def _where(self) -> str:
        where = f"in {'.'.join(self.scope)}" if self.scope else "module level"
        return where + (", under TYPE_CHECKING" if self.type_checking else "")

    def _add(self, line: int, module: str, name: str | None) -> None:
        self.imports.append(Import(self.module, line, self._where(), module, name))

    def _scoped(self, node, name: str) -> None:
        self.scope.append(name)
        self.generic_visit(node)
        self.scope.pop()

    def visit_FunctionDef(self, node):
        self._scoped(node, node.name)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node):
        self._scoped(node, node.name)

    def visit_If(self, node):
        test = node.test
        guarded = (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
            isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
        )
        if not guarded:
            self.generic_visit(node)
            return
        self.visit(node.test)
        self.type_checking += 1
        for stmt in node.body:
            self.visit(stmt)
        self.type_checking -= 1
        for stmt in node.orelse:
            self.visit(stmt)

    def visit_Import(self, node):
        for alias in node.names:
            self._add(node.lineno, alias.name, None)
            if alias.asname:
                self.module_aliases[alias.asname] = alias.name
            else:
                top = alias.name.split(".")[0]
                self.module_aliases[top] = top

    def visit_ImportFrom(self, node):
        if node.level:
            source = _resolve_relative(self.module, node.level, node.module)
        else:
            source = node.module or ""
        for alias in node.names:
            submodule = f"{source}.{alias.name}"
            if submodule in MODULES:  # ``from pkg import sub``: the submodule itself
                self._add(node.lineno, submodule, None)
                self.module_aliases[alias.asname or alias.name] = submodule
            else:
                self._add(node.lineno, source, alias.name)

    def visit_Attribute(self, node):
        if isinstance(node.value, ast.Name):
            self.attribute_uses.append((node.value.id, node.attr, node.lineno, self._where()))
        self.generic_visit(node)


def _parse(module: str) -> ast.Module:
    path = _MODULE_PATHS[module]
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _collect(module: str) -> _ImportCollector:
    collector = _ImportCollector(module)
    collector.visit(_parse(module))
    return collector


_COLLECTED = {module: _collect(module) for module in sorted(MODULES)}


def _project_module(name: str) -> str | None:
    """``name`` if it is a module of the project; None otherwise (outside it, or missing)."""
    return name if name in MODULES else None


def part_of(module: str) -> str:
    """The part of the project a module belongs to: a subpackage, the package top, or extractors."""
    parts = module.split(".")
    if parts[0] != PACKAGE:
        return parts[0]
    if len(parts) > 2 or (len(parts) == 2 and _is_package(module)):
        return f"{PACKAGE}.{parts[1]}"
    return PACKAGE  # backdoor_curves/__init__.py and the modules beside it


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def test_project_imports_resolve():
    # A stale import (a module moved or deleted) would drop an edge from the checks below; an
    # import inside a function is not caught by importing the package either.
    missing = sorted(
        {
            f"{imp.place()}: imports {imp.module}, which is no module of the project"
            for collected in _COLLECTED.values()
            for imp in collected.imports
            if imp.module.split(".")[0] in PACKAGES and imp.module not in MODULES
        }
    )
    assert not missing, "imports of missing modules:\n  " + "\n  ".join(missing)


# -- (a) cycles -------------------------------------------------------------------------------


def import_graph() -> dict[str, dict[str, Import]]:
    """``graph[a][b]``: the first import of project module ``b`` by project module ``a``."""
    graph: dict[str, dict[str, Import]] = {module: {} for module in MODULES}
    for module, collected in _COLLECTED.items():
        for imp in collected.imports:
            target = _project_module(imp.module)
            if target is None or target == module:
                continue
            graph[module].setdefault(target, imp)
    return graph


def _strongly_connected(graph: dict[str, dict[str, Import]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative; the components with more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        components.append(sorted(component))
    return components


def _shortest_path(graph, start: str, goal: str, allowed: set[str]) -> list[str]:
    previous = {start: None}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        if node == goal:
            break
        for child in sorted(graph[node]):
            if child in allowed and child not in previous:
                previous[child] = node
                queue.append(child)
    path = [goal]
    while path[-1] != start:
        path.append(previous[path[-1]])
    return path[::-1]


def import_cycles(graph: dict[str, dict[str, Import]]) -> list[list[str]]:
    """One shortest cycle through each import edge inside a strongly connected component.

    Each cycle is a list of modules whose first and last entries are equal; rotations of one cycle
    are reported once.
    """
    cycles, seen = [], set()
    for component in _strongly_connected(graph):
        members = set(component)
        for source in component:
            for target in sorted(graph[source]):
                if target not in members:
                    continue
                cycle = [source] + _shortest_path(graph, target, source, members)
                ring = cycle[:-1]
                start = ring.index(min(ring))
                key = tuple(ring[start:] + ring[:start])
                if key not in seen:
                    seen.add(key)
                    cycles.append([*key, key[0]])
    return cycles


def describe_cycle(graph, cycle: list[str]) -> str:
    lines = [cycle[0]]
    for a, b in zip(cycle[:-1], cycle[1:], strict=True):
        imp = graph[a][b]
        what = f"{imp.module}.{imp.name}" if imp.name else imp.module
        lines.append(f"  -> {b}    [{imp.place()}: imports {what}]")
    return "\n".join(lines)


def test_no_import_cycles():
    graph = import_graph()
    cycles = import_cycles(graph)
    report = "\n\n".join(describe_cycle(graph, cycle) for cycle in cycles)
    assert not cycles, f"{len(cycles)} import cycle(s) between modules:\n\n{report}"


def layer_graph(graph: dict[str, dict[str, Import]]) -> dict[str, dict[str, Import]]:
    """The import graph between parts: a subpackage is one node, a top-level module is its own.

    The edges of :data:`CONVENIENCE_IMPORTS` are left out.
    """

    def node(module: str) -> str:
        part = part_of(module)
        return module if part == PACKAGE else part

    layers: dict[str, dict[str, Import]] = {node(module): {} for module in graph}
    for module, targets in sorted(graph.items()):
        for target, imp in sorted(targets.items()):
            if node(target) != node(module) and (module, target) not in CONVENIENCE_IMPORTS:
                layers[node(module)].setdefault(node(target), imp)
    return layers


def test_no_cycles_between_subpackages():
    # Data flows one way (datasets -> attacks -> learners -> paths/measures -> study -> viz): two
    # subpackages that import each other, even through different modules, break the order.
    layers = layer_graph(import_graph())
    cycles = import_cycles(layers)
    report = "\n\n".join(describe_cycle(layers, cycle) for cycle in cycles)
    assert not cycles, f"{len(cycles)} import cycle(s) between subpackages:\n\n{report}"


# -- (b) private names across parts -----------------------------------------------------------


def _private_class_members() -> dict[str, dict[str, str]]:
    """``members[name][part]``: where a class of ``part`` defines the private member ``name``."""
    members: dict[str, dict[str, str]] = {}

    def record(name: str, module: str, line: int) -> None:
        if _is_private(name):
            members.setdefault(name, {}).setdefault(
                part_of(module), f"{module_file(module)}:{line}"
            )

    for module in sorted(MODULES):
        for cls in ast.walk(_parse(module)):
            if not isinstance(cls, ast.ClassDef):
                continue
            for stmt in cls.body:
                if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    record(stmt.name, module, stmt.lineno)
                elif isinstance(stmt, (ast.Assign, ast.AnnAssign)):
                    targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
                    for target in targets:
                        if isinstance(target, ast.Name):
                            record(target.id, module, stmt.lineno)
            for node in ast.walk(cls):  # self._x = ... in the methods
                if (
                    isinstance(node, ast.Attribute)
                    and isinstance(node.ctx, ast.Store)
                    and isinstance(node.value, ast.Name)
                    and node.value.id == "self"
                ):
                    record(node.attr, module, node.lineno)
    return members


def private_name_violations() -> list[str]:
    violations = []
    members = _private_class_members()
    for module, collected in _COLLECTED.items():
        part = part_of(module)
        for imp in collected.imports:
            target = _project_module(imp.module)
            if target is None or part_of(target) == part:
                continue
            private_path = any(_is_private(piece) for piece in imp.module.split("."))
            if private_path and target not in SHARED_PRIVATE_MODULES:
                violations.append(
                    f"{imp.place()}: imports the private module {imp.module} of {part_of(target)}"
                )
            elif imp.name is not None and _is_private(imp.name):
                violations.append(
                    f"{imp.place()}: imports the private name {imp.name} from {imp.module}"
                )
        for base, attr, line, where in collected.attribute_uses:
            if not _is_private(attr) or base in ("self", "cls"):
                continue
            place = f"{module_file(module)}:{line} ({where})"
            bound = collected.module_aliases.get(base)
            if bound is not None:
                target = _project_module(bound)
                if target is not None and part_of(target) != part:
                    violations.append(f"{place}: uses the private name {bound}.{attr}")
                continue
            owners = members.get(attr, {})
            if owners and part not in owners:
                defined = ", ".join(f"{owner} ({at})" for owner, at in sorted(owners.items()))
                violations.append(
                    f"{place}: uses {base}.{attr}, a private member of a class of {defined}"
                )
    return sorted(set(violations))


def test_no_private_names_across_subpackages():
    violations = private_name_violations()
    assert not violations, (
        f"{len(violations)} use(s) of another part's private names "
        "(make the name public, or move the code to the part that owns it):\n  "
        + "\n  ".join(violations)
    )


# -- (c) backdoor_curves does not import extractors --------------------------------------------


def test_backdoor_curves_never_imports_extractors():
    violations = [
        f"{imp.place()}: imports {imp.module}" + (f".{imp.name}" if imp.name else "")
        for module, collected in _COLLECTED.items()
        if module.split(".")[0] == PACKAGE
        for imp in collected.imports
        if imp.module.split(".")[0] == "extractors"
    ]
    assert not violations, (
        "backdoor_curves imports extractors (extractors depends on backdoor_curves, never the "
        "reverse):\n  " + "\n  ".join(violations)
    )


# -- (d) importing backdoor_curves does not import torch -----------------------------------------


def test_import_does_not_import_torch():
    # A finder records every attempt to import torch, so the check holds whether or not torch is
    # installed (a ``try: import torch`` would otherwise pass unseen where torch is missing).
    script = textwrap.dedent(
        f"""
        import sys, traceback
        attempts = []
        class Spy:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {TORCH_MODULES!r}:
                    attempts.append((name, "".join(traceback.format_stack(limit=8)[:-1])))
                return None
        sys.meta_path.insert(0, Spy())
        import {PACKAGE}
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in {TORCH_MODULES!r})
        for name, stack in attempts[:1]:
            print(f"attempted import of {{name}} from:\\n{{stack}}")
        print("loaded:", loaded)
        sys.exit(1 if attempts or loaded else 0)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, (
        f"import {PACKAGE} imports torch (an optional extra):\n{result.stdout}{result.stderr}"
    )


# -- the checker checks itself ----------------------------------------------------------------


def test_the_scan_sees_the_package():
    assert f"{PACKAGE}.measures" in MODULES and f"{PACKAGE}._validation" in MODULES
    assert part_of(f"{PACKAGE}.measures.slope") == f"{PACKAGE}.measures"
    assert part_of(f"{PACKAGE}.measures") == f"{PACKAGE}.measures"
    assert part_of(f"{PACKAGE}.linalg") == PACKAGE
    assert part_of("extractors.cache") == "extractors"
    assert _resolve_relative(f"{PACKAGE}.measures.slope", 2, "linalg") == f"{PACKAGE}.linalg"
    assert _resolve_relative(f"{PACKAGE}.measures", 1, "slope") == f"{PACKAGE}.measures.slope"
    graph = import_graph()
    assert f"{PACKAGE}.linalg" in graph[f"{PACKAGE}.learners.linear"]


def test_cycle_finder_reports_each_cycle_once():
    def imp(a, b):
        return Import(a, 1, "module level", b, None)

    edges = {"a": ["b"], "b": ["c", "a"], "c": ["a"], "d": ["a"]}
    graph = {a: {b: imp(a, b) for b in bs} for a, bs in edges.items()}
    assert import_cycles(graph) == [["a", "b", "a"], ["a", "b", "c", "a"]]
