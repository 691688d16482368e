"""A world whose every text came from a hostile system, and how to read a page for what
such text must never become: markup, a script, a javascript: link."""

import re
from dataclasses import dataclass, field
from datetime import timedelta
from html.parser import HTMLParser

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone

from couplings.models import Coupling, CouplingRun
from errors.models import (
    AlertSubscription,
    BulkAction,
    Category,
    ErrorGroup,
    OwnershipRule,
    ProblemComment,
    SyncError,
    SyncErrorCleanup,
)
from sync.models import (
    Connection,
    ConnectionCheck,
    MappingRule,
    RuleVersion,
    SyncJob,
    TableMapping,
)
from syncconsole.permissions import SYNC_ADMINISTRATORS
from tests.conftest import user_in_role
from tests.factories import make_error

SCRIPT = "<script>alert(1)</script>"
IMAGE = '"><img src=x onerror=alert(1)>'
TEMPLATE = "{{ 7*7 }}{% now 'Y' %}"
# Right-to-left override, zero-width space, byte-order mark, an astral letter, a no-break
# space and a titlecase digraph: text that looks like something else, never NUL.
ODD = "\u202e\u200b\ufeff\U0001d54f\u00a0\u01c5"
HOSTILE = SCRIPT + IMAGE + TEMPLATE + ODD
# For columns of 50 characters.
SHORT = IMAGE + "{{ 7*7 }}" + ODD
JAVASCRIPT_URL = " JaVaScRiPt:alert(document.domain)//https://example.com/"
DATA_URL = "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg=="


def fit(text: str, length: int) -> str:
    return text if len(text) <= length else SHORT[:length]


@dataclass
class HostileWorld:
    connection: Connection
    mapping: TableMapping
    job: SyncJob
    coupling: Coupling
    skipped: Coupling
    error: SyncError
    uncoupled: SyncError
    integration_error: SyncError
    group: ErrorGroup
    cleanup: SyncErrorCleanup
    bulk: BulkAction
    run: CouplingRun
    check: ConnectionCheck
    rule: OwnershipRule | None = None
    mapping_rule: MappingRule | None = None
    subscription: AlertSubscription | None = None
    # One entry of every category, so that every kind of "Cause and fix" is drawn.
    entries: list[SyncError] = field(default_factory=list)


def hostile_sent_values() -> dict:
    values = {HOSTILE: HOSTILE, "name": HOSTILE, "website": JAVASCRIPT_URL}
    return {"kind": "update", "direction": "to_destination", "sent": values, "read": values,
            "held": values, "truncated": [HOSTILE]}  # fmt: skip


def make_hostile_world(unused_port: int) -> HostileWorld:
    """Every text field of every kind of object the console shows holds markup, a template,
    odd unicode, and every link a javascript: or data: address. The apps' addresses point
    at a port nothing listens on, so pages that read the records fail fast."""
    base = f"http://127.0.0.1:{unused_port}/"
    record_url = JAVASCRIPT_URL.strip() + "{entity}/{id}"
    connection = Connection.objects.create(
        name=HOSTILE, source_app=HOSTILE, destination_app=HOSTILE,
        source_base_url=base + "erp/", destination_base_url=base + "crm/",
        source_authority=base + "identity", destination_authority=base + "identity",
        integration_user=HOSTILE, source_username=HOSTILE, destination_username=HOSTILE,
        source_settings={"record_url": record_url, "max_retries": 0, "timeout": 1},
        destination_settings={"record_url": record_url, "max_retries": 0, "timeout": 1},
        disabled_reason=HOSTILE,
    )  # fmt: skip
    mapping = TableMapping.objects.create(
        connection=connection, name=SHORT, source_entity=HOSTILE, destination_entity=HOSTILE,
        field_mappings=[{"source": "name", "destination": "name"}],
        source_filter=HOSTILE, destination_filter=HOSTILE, source_match_field=HOSTILE,
        destination_match_field=HOSTILE, paused_at=timezone.now(), paused_reason=HOSTILE,
        resumed_reason=HOSTILE,
    )  # fmt: skip
    now = timezone.now()
    job = SyncJob.objects.create(
        mapping=mapping, started_at=now, finished_at=now, status=SyncJob.Status.FAILED,
        message=HOSTILE, record_ids={"source": [HOSTILE]},
    )  # fmt: skip
    coupling = Coupling.objects.create(
        mapping=mapping, source_record_id=HOSTILE, destination_record_id=HOSTILE + "2",
        last_error_message=HOSTILE, last_failed_job=job,
    )  # fmt: skip
    skipped = Coupling.objects.create(
        mapping=mapping, source_record_id=HOSTILE + "3", destination_record_id=HOSTILE + "4",
        is_skipped=True, failure_count=3, last_error_message=HOSTILE, last_failed_job=job,
    )  # fmt: skip
    texts = {
        "message": HOSTILE, "detail": HOSTILE + "\n" + JAVASCRIPT_URL,
        "source_app": HOSTILE, "source_entity": HOSTILE, "source_record_id": HOSTILE,
        "source_url": JAVASCRIPT_URL, "destination_app": HOSTILE,
        "destination_entity": HOSTILE, "destination_record_id": HOSTILE,
        "destination_url": DATA_URL, "status_note": HOSTILE,
    }  # fmt: skip
    error = make_error(
        category=Category.CONFLICT, mapping=mapping, job=job, coupling=coupling,
        sent_values=hostile_sent_values(), **texts,
    )  # fmt: skip
    uncoupled = make_error(
        category=Category.NOT_COUPLED, mapping=mapping, job=job,
        **{**texts, "message": "Not coupled: " + HOSTILE},
    )  # fmt: skip
    integration_error = make_error(
        category=Category.OTHER, integration=HOSTILE, **{**texts, "message": "Sent: " + HOSTILE}
    )
    entries = [
        make_error(
            category=category, mapping=mapping, job=job,
            coupling=coupling if category == Category.COUPLED_RECORD_DELETED else None,
            **{**texts, "message": f"{category}: {HOSTILE}"},
        )
        for category in Category
    ]  # fmt: skip
    group = ErrorGroup.objects.get(pk=error.group_id)
    ErrorGroup.objects.filter(pk__in=[error.group_id, uncoupled.group_id]).update(
        status_note=HOSTILE
    )
    TableMapping.objects.filter(pk=mapping.pk).update(paused_error_id=error.pk)
    cleanup = SyncErrorCleanup.objects.create(
        action=SyncErrorCleanup.Action.OLDER_THAN, days=7, cutoff=now - timedelta(days=7),
        trigger=SyncErrorCleanup.Trigger.CONSOLE, state=SyncErrorCleanup.State.FAILED,
        error_message=HOSTILE,
    )  # fmt: skip
    bulk = BulkAction.objects.create(
        action=BulkAction.Action.RESOLVE, scope=BulkAction.Scope.FILTER,
        filter_query="q=" + HOSTILE, note=HOSTILE, state=BulkAction.State.DONE,
        outcome=HOSTILE, job_ids=[job.pk],
    )  # fmt: skip
    candidate = {"id": HOSTILE, "url": JAVASCRIPT_URL, "matched": [HOSTILE],
                 "coupled_to": HOSTILE, "values": {HOSTILE: HOSTILE}}  # fmt: skip
    run = CouplingRun.objects.create(
        mapping=mapping, side="source", record_ids=[HOSTILE], state=CouplingRun.State.DONE,
        criteria=[{"source": HOSTILE, "destination": HOSTILE, "priority": 1,
                   "case_sensitive": False}],
        results=[{"side": "source", "record_id": HOSTILE, "outcome": "no_match",
                  "outcome_label": HOSTILE, "message": HOSTILE, "record_url": JAVASCRIPT_URL,
                  "candidates": [candidate], "other_id": HOSTILE, "coupling_id": None}],
        message=HOSTILE,
    )  # fmt: skip
    finding = {"code": HOSTILE, "severity": "error", "app": HOSTILE, "entity": HOSTILE,
               "message": HOSTILE, "remedy": HOSTILE, "link": JAVASCRIPT_URL}  # fmt: skip
    check = ConnectionCheck.objects.create(
        connection=connection, checked_at=now, findings=[finding, {**finding, "severity": "ok"}]
    )
    # An owner whose name and a discussion whose text came from the hostile world too.
    owner = user_in_role(HOSTILE, SYNC_ADMINISTRATORS)
    ErrorGroup.objects.filter(pk__in=[error.group_id, uncoupled.group_id]).update(
        assigned_user=owner, assigned_at=now
    )
    group.refresh_from_db()
    ProblemComment.objects.create(group=group, author=owner, author_name=HOSTILE, text=HOSTILE)
    rule = OwnershipRule.objects.create(mapping=mapping, category=Category.CONFLICT, user=owner)
    OwnershipRule.objects.create(
        connection=connection, group=Group.objects.get(name=SYNC_ADMINISTRATORS)
    )
    # A rule of the mapping whose field and parameters came from the hostile world.
    mapping_rule = MappingRule.objects.create(
        mapping=mapping, direction="to_destination", field=HOSTILE, origin_problem=group
    )
    for number, params in enumerate([{"value": HOSTILE}, {"find": HOSTILE, "replace": HOSTILE}]):
        mapping_rule.current = RuleVersion.objects.create(
            rule=mapping_rule, number=number + 1, kind="set" if number == 0 else "replace",
            params=params, note=HOSTILE, made_by=owner,
        )  # fmt: skip
    mapping_rule.save()
    return HostileWorld(
        connection=connection, mapping=mapping, job=job, coupling=coupling, skipped=skipped,
        error=error, uncoupled=uncoupled, integration_error=integration_error, group=group,
        cleanup=cleanup, bulk=bulk, run=run, check=check, rule=rule, entries=entries,
        mapping_rule=mapping_rule,
    )  # fmt: skip


@pytest.fixture
def hostile(db, unused_port, staff_user) -> HostileWorld:
    world = make_hostile_world(unused_port)
    world.subscription = AlertSubscription.objects.create(user=staff_user, mapping=world.mapping)
    return world


# What a browser would run: an event handler or a script holding the payload, a link or a
# source with a javascript:, data: or vbscript: address.
URL_ATTRIBUTES = {"href", "src", "action", "formaction", "xlink:href", "poster", "data"}
RUNNABLE_SCHEME = re.compile(r"^(javascript|data|vbscript):", re.IGNORECASE)
INVISIBLE = re.compile(r"[\x00-\x20\u00a0\u200b\u202e\ufeff]+")


class ThreatFinder(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.threats: list[str] = []
        self.in_script = False

    def handle_starttag(self, tag, attrs):
        if tag == "script":
            self.in_script = True
        if tag in ("img", "svg", "iframe", "object", "embed") and any(
            name.startswith("on") for name, _ in attrs
        ):
            self.threats.append(f"<{tag}> with an event handler: {attrs}")
        for name, value in attrs:
            value = value or ""
            if name.startswith("on") and "alert" in value:
                self.threats.append(f"event handler {name}={value!r} on <{tag}>")
            if name in URL_ATTRIBUTES and RUNNABLE_SCHEME.match(INVISIBLE.sub("", value)):
                self.threats.append(f"<{tag} {name}={value!r}>")

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag == "script":
            self.in_script = False

    def handle_endtag(self, tag):
        if tag == "script":
            self.in_script = False

    def handle_data(self, data):
        if self.in_script and "alert(" in data:
            self.threats.append(f"script holding the payload: {data[:200]!r}")


def threats_in(html: str) -> list[str]:
    """What of the payloads a browser would run in this page."""
    threats = [f"raw {raw!r}" for raw in (SCRIPT, "<img src=x onerror") if raw in html]
    finder = ThreatFinder()
    finder.feed(html)
    finder.close()
    return threats + finder.threats


def escaped_payload_shown(html: str) -> bool:
    """The page shows hostile text, escaped (so the page was really tested against it)."""
    return "&lt;script&gt;alert(1)&lt;/script&gt;" in html or "&lt;img src=x onerror" in html


def assert_harmless(html: str, where: str) -> None:
    threats = threats_in(html)
    assert not threats, f"{where}: {threats}"
