"""An import-linter contract that no module imports itself back through others.

import-linter's own contracts check directions (layers, forbidden imports) and cycles among
the siblings of one package; this one looks at the whole graph of the root packages, imports
inside functions included, and lists every cycle of modules it finds."""

import fnmatch
from collections.abc import Iterator
from typing import cast

import grimp
from importlinter.application import output
from importlinter.domain import fields
from importlinter.domain.contract import Contract, ContractCheck


class AcyclicContract(Contract):
    """Kept when the import graph of the root packages has no cycle.

    Options: `ignore_modules`, patterns of module names (`*` stands for any part of a name,
    as in `*.migrations.*`) left out of the graph, such as generated migrations."""

    type_name = "acyclic"

    ignore_modules = fields.ListField(subfield=fields.StringField(), required=False)

    def check(self, graph: grimp.ImportGraph, verbose: bool) -> ContractCheck:
        ignored = [str(name) for name in cast(list[str], self.ignore_modules or [])]
        modules = sorted(m for m in graph.modules if not _matches(m, ignored))
        edges = {
            m: sorted(i for i in graph.find_modules_directly_imported_by(m) if i in set(modules))
            for m in modules
        }
        cycles = [sorted(c) for c in _strongly_connected(modules, edges) if len(c) > 1]
        cycles += [[m] for m in modules if m in edges[m]]
        return ContractCheck(
            kept=not cycles,
            metadata={"cycles": [(c, _one_loop(c, edges)) for c in cycles]},
        )

    def render_broken_contract(self, check: ContractCheck) -> None:
        for modules, loop in check.metadata["cycles"]:
            output.print_error(f"{len(modules)} modules import each other in a cycle:")
            output.print(" -> ".join(loop))
            output.new_line()


def _matches(module: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(module, pattern) for pattern in patterns)


def _strongly_connected(nodes: list[str], edges: dict[str, list[str]]) -> Iterator[set[str]]:
    """Tarjan's algorithm, without recursion (the graph has hundreds of modules)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    counter = 0
    for root in nodes:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, child = work.pop()
            if child == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            children = edges[node]
            if child < len(children):
                work.append((node, child + 1))
                nxt = children[child]
                if nxt not in index:
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                yield component
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])


def _one_loop(component: list[str], edges: dict[str, list[str]]) -> list[str]:
    """A path from the first module of the cycle back to itself, to show where to cut."""
    members = set(component)
    start = component[0]
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for nxt in edges[node]:
            if nxt == start:
                return [*paths[node], start]
            if nxt in members and nxt not in paths:
                paths[nxt] = [*paths[node], nxt]
                queue.append(nxt)
    return [start]
