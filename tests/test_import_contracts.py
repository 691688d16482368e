"""The import contract that `make lint` runs to keep the apps' modules free of cycles."""

import grimp

from tools.import_contracts import AcyclicContract


def check(imports: list[tuple[str, str]], **options):
    graph = grimp.ImportGraph()
    for importer, imported in imports:
        graph.add_import(importer=importer, imported=imported)
    contract = AcyclicContract("acyclic", session_options={}, contract_options=options)
    return contract.check(graph, verbose=False)


def test_a_graph_without_cycles_keeps_it():
    assert check([("a.views", "a.services"), ("a.services", "a.models")]).kept


def test_a_cycle_through_other_packages_breaks_it_and_is_shown_as_a_loop():
    result = check(
        [
            ("errors.grouping", "errors.status"),
            ("errors.status", "sync.services"),
            ("sync.services", "sync.engine"),
            ("sync.engine", "errors.grouping"),
            ("sync.engine", "sync.models"),
        ]
    )
    assert not result.kept
    ((modules, loop),) = result.metadata["cycles"]
    assert modules == ["errors.grouping", "errors.status", "sync.engine", "sync.services"]
    assert loop == [
        "errors.grouping",
        "errors.status",
        "sync.services",
        "sync.engine",
        "errors.grouping",
    ]


def test_a_module_that_imports_itself_breaks_it():
    assert not check([("a.b", "a.b")]).kept


def test_ignored_modules_are_left_out():
    imports = [("a.migrations.0001", "a.models"), ("a.models", "a.migrations.0001")]
    assert not check(imports).kept
    assert check(imports, ignore_modules=["*.migrations.*"]).kept
