"""Going back to the demo app's migration before one, and forward again: for the tests that
show that demo data made before a change keeps working after `migrate`."""

from django.db import connection
from django.db.migrations.executor import MigrationExecutor


def around(suffix: str) -> tuple[list, list]:
    """The demo migration just before the one whose name ends with `suffix`, and that one."""
    graph = MigrationExecutor(connection).loader.graph
    (node,) = [n for n in graph.nodes if n[0] == "demo" and n[1].endswith(suffix)]
    before = [parent for parent in graph.node_map[node].parents if parent.key[0] == "demo"]
    return [before[0].key], [node]


def latest() -> list:
    return MigrationExecutor(connection).loader.graph.leaf_nodes("demo")


def migrate(targets):
    """Migrate the demo app to `targets` (the others stay at their latest); the apps as they
    were then."""
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    others = [node for node in executor.loader.graph.leaf_nodes() if node[0] != "demo"]
    return executor.loader.project_state([*others, *targets]).apps
