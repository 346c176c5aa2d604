"""The import graph of the package, read from its source: which module imports which, at module level and
inside functions (``python -m lbie.devtools imports`` prints it).

Three rules keep the layout readable, and :func:`check` fails on a break of any of them:

* no import cycle (a module that imports, directly or through others, a module that imports it);
* no module imports another module's private name (``from .x import _helper``, ``x._helper``): a helper two
  modules share lives below both under a public name;
* imports point down the layers of :data:`LAYERS`: helpers at the bottom, then the data, the models and
  metrics, the experiments, the figures, and the entry points on top.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent  # lbie/

# The package's layers, bottom first: a module imports modules of its own layer or of a lower one, never of a
# higher one.  A name stands for that module and, for a subpackage, every module in it; the top package's name
# ("lbie") stands for lbie/__init__.py only, so that a new module must be placed in a layer.
LAYERS = (("shared helpers", ("lbie.version", "lbie.utils", "lbie.config")),
          ("training loop and published checkpoints", ("lbie.train", "lbie.checkpoints")),
          ("data", ("lbie.data",)),
          ("models and metrics", ("lbie.models", "lbie.metrics")),
          ("experiments", ("lbie.experiments",)),
          ("figures", ("lbie.plotting",)),
          ("entry points", ("lbie", "lbie.__main__", "lbie.bench", "lbie.devtools", "lbie.editor", "lbie.import_graph")))


@dataclass
class ImportGraph:
    """The imports between the modules of one package, read from the source (nothing is imported).

    ``edges[a]``: the modules ``a`` imports at module level; ``lazy[a]``: those it imports only inside
    functions.  ``private``: ``(module, line, "from x import _name")`` for every import of (or attribute
    access to) another module's private name."""
    modules: list[str]
    edges: dict[str, set[str]] = field(default_factory=dict)
    lazy: dict[str, set[str]] = field(default_factory=dict)
    private: list[tuple[str, int, str]] = field(default_factory=list)

    def imports(self, module: str) -> set[str]:
        return self.edges[module] | self.lazy[module]

    def components(self) -> list[set[str]]:
        """The strongly connected groups of modules (Tarjan's algorithm), every group after the ones it imports."""
        index, low, stack, on_stack, groups = {}, {}, [], set(), []

        def visit(v):
            index[v] = low[v] = len(index)
            stack.append(v)
            on_stack.add(v)
            for w in sorted(self.imports(v)):
                if w not in index:
                    visit(w)
                    low[v] = min(low[v], low[w])
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
            if low[v] == index[v]:
                group = set()
                while v not in group:
                    group.add(stack.pop())
                on_stack.difference_update(group)
                groups.append(group)

        for v in self.modules:
            if v not in index:
                visit(v)
        return groups

    def cycles(self) -> list[list[str]]:
        """The import cycles ``[a, b, ..., a]``: for every module on a cycle the shortest cycle through it, each
        cycle once (starting at its first module by name)."""
        found = []
        for group in self.components():
            if len(group) == 1 and not group & self.imports(next(iter(group))):
                continue
            for start in sorted(group):
                cycle = self._cycle_from(start, group)[:-1]
                first = cycle.index(min(cycle))
                cycle = cycle[first:] + cycle[:first]
                if cycle + cycle[:1] not in found:
                    found.append(cycle + cycle[:1])
        return found

    def _cycle_from(self, start: str, group: set[str]) -> list[str]:
        """The shortest cycle from ``start`` back to it (breadth-first search inside its group)."""
        paths, seen = [[start]], {start}
        while paths:
            path = paths.pop(0)
            for w in sorted(self.imports(path[-1]) & group):
                if w == start:
                    return path + [start]
                if w not in seen:
                    seen.add(w)
                    paths.append(path + [w])
        raise AssertionError("a strongly connected group without a cycle")

    def levels(self) -> dict[str, int]:
        """0 for a module that imports none of the package's modules, else 1 + the highest level among those it
        imports (the modules of a cycle share one level)."""
        level: dict[str, int] = {}
        for group in self.components():
            outside = {w for v in group for w in self.imports(v)} - group
            for v in group:
                level[v] = 1 + max((level[w] for w in outside), default=-1)
        return level


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def read_graph(package: str | Path = PACKAGE) -> ImportGraph:
    """The :class:`ImportGraph` of the package in folder ``package``: every ``import`` and ``from ... import``
    of one of its modules by another, at module level or inside a function.  The parent packages that
    Python runs before a module are not counted (``lbie/__init__.py`` imports every module)."""
    root = Path(package)
    files = {_module_name(f, root): f for f in sorted(root.rglob("*.py")) if "__pycache__" not in f.parts}
    graph = ImportGraph(modules=sorted(files))
    for name, path in files.items():
        graph.edges[name], graph.lazy[name] = set(), set()
        here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]  # the module's package
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        in_function = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                in_function.update(id(n) for n in ast.walk(node) if n is not node)
        aliases = {}  # local name -> the package module it is bound to

        def add(target: str, node: ast.AST) -> None:
            if target != name:
                (graph.lazy if id(node) in in_function else graph.edges)[name].add(target)

        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name in files:
                        add(alias.name, node)
                        top = alias.name.split(".")[0]  # `import pkg.a` binds pkg, `import pkg.a as m` binds m
                        aliases[alias.asname or top] = alias.name if alias.asname else top
            elif isinstance(node, ast.ImportFrom):
                base = here[:len(here) - node.level + 1] if node.level else []
                module = ".".join(base + (node.module.split(".") if node.module else []))
                if module not in files:
                    continue  # another package
                for alias in node.names:
                    sub = f"{module}.{alias.name}"
                    if sub in files:  # from package import module
                        add(sub, node)
                        aliases[alias.asname or alias.name] = sub
                    else:
                        add(module, node)
                        if _is_private(alias.name):
                            graph.private.append((name, node.lineno, f"from {module} import {alias.name}"))
        for node in ast.walk(tree):  # module._name, through a name bound to one of the package's modules
            if isinstance(node, ast.Attribute):
                chain, value = [node.attr], node.value
                while isinstance(value, ast.Attribute):
                    chain.insert(0, value.attr)
                    value = value.value
                if not isinstance(value, ast.Name) or value.id not in aliases:
                    continue
                module = aliases[value.id]
                for attr in chain:
                    if f"{module}.{attr}" in files:
                        module = f"{module}.{attr}"
                    else:
                        if _is_private(attr) and attr == node.attr:  # (inner nodes of a chain are visited too)
                            graph.private.append((name, node.lineno, f"{module}.{attr}"))
                        break
    return graph


def layer_of(module: str, layers=LAYERS) -> int | None:
    """The index in ``layers`` of the most specific entry naming ``module`` or a subpackage around it."""
    best = None
    for k, (_, names) in enumerate(layers):
        for entry in names:
            inside = "." in entry and module.startswith(entry + ".")
            if (module == entry or inside) and (best is None or len(entry) > len(best[1])):
                best = (k, entry)
    return None if best is None else best[0]


def problems(graph: ImportGraph, layers=LAYERS) -> list[str]:
    """Cycles, imports of private names and, with ``layers``, modules in no layer and imports up the layers."""
    found = [f"cycle: {' -> '.join(c)}" for c in graph.cycles()]
    found += [f"private name: {module}:{line}: {how}" for module, line, how in sorted(graph.private)]
    if layers:
        for m in graph.modules:
            if layer_of(m, layers) is None:
                found.append(f"layer: {m} is in no layer of lbie.import_graph.LAYERS")
        for m in graph.modules:
            for t in sorted(graph.imports(m)):
                lm, lt = layer_of(m, layers), layer_of(t, layers)
                if lm is not None and lt is not None and lt > lm:
                    found.append(f"layer: {m} ({layers[lm][0]}) imports {t} ({layers[lt][0]}), a higher layer")
    return found


def check(package: str | Path = PACKAGE, layers=LAYERS) -> int:
    """Print the import graph of ``package`` (bottom layer first) and its problems; 1 if there are any."""
    graph = read_graph(package)
    found = problems(graph, layers)
    level = graph.levels()
    ordered = sorted(graph.modules, key=lambda m: ((layer_of(m, layers) or 0) if layers else 0, level[m], m))
    shown = None
    for m in ordered:
        k = layer_of(m, layers) if layers else None
        if k is not None and k != shown:
            print(f"# {layers[k][0]}")
            shown = k
        line = m + (f" -> {', '.join(sorted(graph.edges[m]))}" if graph.edges[m] else "")
        lazy = sorted(graph.lazy[m] - graph.edges[m])
        print(line + (f"; in functions: {', '.join(lazy)}" if lazy else ""))
    n = sum(len(graph.imports(m)) for m in graph.modules)
    print(f"{len(graph.modules)} modules, {n} imports between them")
    for p in found:
        print(p)
    print(f"{len(found)} problem(s)" if found else
          "no cycle, no import of another module's private name" + (", no import up the layers" if layers else ""))
    return int(bool(found))
