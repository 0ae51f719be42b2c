"""Fail on an import circle between the modules of a package: each module of the suite imports one way round.

    python scripts/import_cycles.py            (run by `python3 dev.py lint`)

import-linter's contracts (pyproject.toml) keep the services apart and the shared library free of them; this
finds circles inside each, module by module (grimp's graph without imports only for type checking; Tarjan's strongly
connected components).
"""

from __future__ import annotations

import sys

import grimp

PACKAGES = ["burgermelding_shared", "report_intake", "verification", "dispatch_bridge", "meldkamer_sim"]


def circles(graph: grimp.ImportGraph, package: str) -> list[list[str]]:
    modules = sorted(m for m in graph.modules if m.startswith(package) and ".migrations" not in m)
    imports = {m: sorted(i for i in graph.find_modules_directly_imported_by(m) if i in modules) for m in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:  # Tarjan, recursive: a package has a few hundred modules at most
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in imports[module]:
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in modules:
        if module not in index:
            visit(module)
    return found


def main() -> int:
    failed = False
    for package in PACKAGES:
        graph = grimp.build_graph(package, cache_dir=None, exclude_type_checking_imports=True)
        for circle in circles(graph, package):
            failed = True
            print(f"import circle in {package}: {' <-> '.join(circle)}")
    if not failed:
        print(f"no import circles in {', '.join(PACKAGES)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
