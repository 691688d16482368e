"""Every console URL with its path filled in from the hostile world: the walk the escaping,
method and CSRF tests share. A console URL missing here fails test_every_console_url_is_walked."""

from urllib.parse import urlencode

from django.urls import reverse

from tests.test_roles import OUTSIDE, OUTSIDE_NAMESPACES, named_urls

from .conftest import HOSTILE, HostileWorld

# The object each console URL's pk names.
PATH_OBJECTS = {
    "errors:group_set_status": "group",
    "errors:group_assignment": "group",
    "errors:group_comment": "group",
    "errors:group_evidence": "group",
    "errors:group_policy": "group",
    "errors:group_rule": "group",
    "errors:ownership_rule_delete": "rule",
    "errors:detail": "error",
    "errors:set_status": "error",
    "errors:fix": "error",
    "errors:edit": "error",
    "errors:evidence": "error",
    "errors:cleanup": "cleanup",
    "errors:bulk_progress": "bulk",
    "errors:alert_change": "subscription",
    "errors:alert_delete": "subscription",
    "sync:mapping_start": "mapping",
    "sync:connection_health": "connection",
    "sync:mapping_health": "mapping",
    "sync:mapping_resume": "mapping",
    "sync:mapping_lag_probe": "mapping",
    "sync:rule_switch_off": "mapping_rule",
    "sync:rule_revert": "mapping_rule",
    "sync:job": "job",
    "couplings:run": "run",
}
# Every filter or parameter a page reads from its query string, all hostile at once: what a
# page echoes back (its filter form, its messages) must be escaped too.
QUERY_KEYS = ["q", "category", "status", "connection", "mapping", "job", "coupling", "group",
              "integration", "created_after", "created_before", "trigger", "result", "skipped",
              "record", "other", "side", "error", "days", "before", "after", "assigned",
              "assignee", "sort"]  # fmt: skip
HOSTILE_QUERY = urlencode({key: HOSTILE for key in QUERY_KEYS})


def console_url_names() -> dict:
    return {
        name: pattern
        for name, pattern in named_urls()
        if name not in OUTSIDE and name.split(":")[0] not in OUTSIDE_NAMESPACES
    }


def console_urls(world: HostileWorld) -> list[tuple[str, str]]:
    """(name, path) of every console URL, its pk the hostile object's; a clean-up confirmation
    for both actions."""
    urls = []
    for name, pattern in console_url_names().items():
        converters = pattern.pattern.converters
        if "action" in converters:
            urls += [(name, reverse(name, args=[action])) for action in ("older_than", "all")]
        elif converters:
            urls.append((name, reverse(name, args=[getattr(world, PATH_OBJECTS[name]).pk])))
        else:
            urls.append((name, reverse(name)))
    return urls


def page_variants(world: HostileWorld) -> list[tuple[str, str]]:
    """Each console URL as it is, with every query parameter hostile, and with the ones
    that pick what is shown pointing at the hostile objects."""
    picks = urlencode({
        "group": world.group.pk, "mapping": world.mapping.pk, "job": world.job.pk,
        "coupling": world.coupling.pk, "record": HOSTILE, "other": HOSTILE, "side": "source",
        "error": world.uncoupled.pk,
    })  # fmt: skip
    variants = []
    for name, url in console_urls(world):
        variants += [(name, url), (name, f"{url}?{HOSTILE_QUERY}"), (name, f"{url}?{picks}"),
                     (name, f"{url}?format=json")]  # fmt: skip
    variants += [("errors:detail", entry.get_absolute_url()) for entry in world.entries]
    return variants
