"""Rules that fix a whole problem: a transformation of the value its entries' records failed
to write (sync.transformations), previewed on every open entry, then applied by retrying
them as one job, and either kept on the mapping (later records are fixed too) or used once.

One function for each change of a rule: applying it, switching it off, reverting it; the
problem page, the mapping page and the API call them, and each writes its audit event."""

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import Max, QuerySet
from django.utils import timezone

from audit import services as audit
from couplings.actions import read_direction
from errors.models import ErrorGroup, Status, SyncError
from sync.connectors import ConnectorError, connector_for
from sync.fields import FROM_DESTINATION, TO_DESTINATION, field_pairs, same_value
from sync.models import MappingRule, RuleVersion, SyncJob, TableMapping
from sync.transformations import KINDS, TRUNCATE, RuleInvalid, apply, cleaned, length_from_message

from .bulk import retry_entries

# The entries a preview computes, oldest first; the count of records covers them all.
PREVIEW_LIMIT = 500
# A record read to know what its entry would have sent: one short try, so the page stays quick.
READ_TIMEOUT = 3.0
DIRECTIONS = (TO_DESTINATION, FROM_DESTINATION)


class RuleRefused(Exception):
    """The rule cannot be made or changed as asked: a message, or messages by field."""

    def __init__(self, message: str, fields: dict[str, list[str]] | None = None):
        super().__init__(message)
        self.fields = fields or {}


@dataclass(frozen=True)
class RuleSpec:
    """A rule as asked for, checked against its problem's mapping."""

    direction: str
    field: str
    kind: str
    params: dict[str, Any]


@dataclass(frozen=True)
class PreviewRow:
    entry_id: int
    record_id: str
    coupled: bool
    before: Any
    after: Any
    known: bool  # the value before is known: kept with the entry, or read now
    note: str = ""

    @property
    def changes(self) -> bool:
        return self.known and not same_value(self.before, self.after)


@dataclass
class RulePreview:
    """The dry run: each open entry's value before and after, and how many records the job
    would write (every record of the open entries is retried)."""

    spec: RuleSpec
    rows: list[PreviewRow] = field(default_factory=list)
    entries: int = 0  # open entries in all
    records: int = 0  # records the job writes

    @property
    def changed(self) -> int:
        return sum(1 for row in self.rows if row.changes)

    @property
    def cut_short(self) -> bool:
        return self.entries > len(self.rows)


@dataclass
class Applied:
    rule: MappingRule
    version: RuleVersion
    job: SyncJob | None
    records: int
    refused: str = ""


def open_entries(problem: ErrorGroup) -> QuerySet[SyncError]:
    return SyncError.objects.filter(group=problem, status=Status.OPEN)


def written_fields(mapping: TableMapping, direction: str) -> list[str]:
    """The fields a mapping writes in a direction that a rule may transform: its values, not
    its lookups (whose value is a reference to a record)."""
    return [p.write for p in field_pairs(mapping.field_mappings, direction) if p.lookup is None]


def problem_direction(problem: ErrorGroup) -> str | None:
    """The direction most of the problem's open entries were written in."""
    directions = Counter(
        read_direction(entry)
        for entry in open_entries(problem).select_related("mapping__connection")[:PREVIEW_LIMIT]
    )
    directions.pop(None, None)
    return directions.most_common(1)[0][0] if directions else None


def rule_spec(
    problem: ErrorGroup,
    *,
    field: Any,
    kind: Any,
    params: Any = None,
    direction: Any = None,
) -> RuleSpec:
    """The rule asked for, checked: a field the problem's mapping writes in the direction of
    its entries, a known kind and its parameters (a cut without a length takes the length
    the app's message names). RuleRefused says what is wrong, by field."""
    mapping = problem.mapping
    if mapping is None:
        raise RuleRefused("A rule transforms what a mapping writes: this problem has no mapping.")
    direction = direction or problem_direction(problem)
    if direction not in DIRECTIONS:
        raise RuleRefused(
            "Choose the direction of the writes to change.",
            {"direction": [f"The direction must be one of {', '.join(DIRECTIONS)}."]},
        )
    if mapping.direction not in (TableMapping.Direction.BIDIRECTIONAL, direction):
        raise RuleRefused(
            f"{mapping.name} does not write in that direction.",
            {"direction": [f"{mapping.name} writes {mapping.get_direction_display().lower()}."]},
        )
    fields = written_fields(mapping, direction)
    if field not in fields:
        raise RuleRefused(
            "Choose a field the mapping writes.",
            {"field": [f"The field must be one of {', '.join(fields) or 'none'}."]},
        )
    params = {} if params is None else dict(params) if isinstance(params, dict) else params
    if kind == TRUNCATE and isinstance(params, dict) and params.get("length") in (None, ""):
        example = open_entries(problem).values_list("message", "detail").first() or ("", "")
        length = length_from_message(problem.title, *example)
        if length is None:
            raise RuleRefused(
                "Give the length to cut to.",
                {"params": ["The problem's message names no length: give the length."]},
            )
        params["length"] = length
    try:
        checked = cleaned(kind, params)
    except RuleInvalid as exc:
        key = "kind" if kind not in KINDS else "params"
        raise RuleRefused(str(exc), {key: exc.problems}) from exc
    return RuleSpec(direction=direction, field=str(field), kind=str(kind), params=checked)


def preview_rule(problem: ErrorGroup, spec: RuleSpec) -> RulePreview:
    """The dry run of a rule on the problem's open entries: what each record would send
    before the rule and after it (from the values the entry kept, else read now), and how
    many records the job that applies it would write. Nothing is written."""
    entries = open_entries(problem)
    preview = RulePreview(spec=spec, entries=entries.count(), records=_record_count(entries))
    shown = list(
        entries.select_related("mapping__connection").order_by("created_at", "id")[:PREVIEW_LIMIT]
    )
    reads = _read_now(problem.mapping, spec, [e for e in shown if _kept_value(e, spec) is None])
    for entry in shown:
        known, before, note = True, None, ""
        kept = _kept_value(entry, spec)
        if read_direction(entry) != spec.direction:
            known, note = False, "written in the other direction: the rule does not apply"
        elif kept is not None:
            before = kept[0]
        elif entry.source_record_id in reads:
            before = reads[entry.source_record_id]
        else:
            known, note = False, "not kept with the entry, and the record could not be read"
        after = apply(spec.kind, spec.params, before) if known else None
        preview.rows.append(
            PreviewRow(
                entry_id=entry.pk,
                record_id=entry.source_record_id,
                coupled=entry.coupling_id is not None,
                before=before,
                after=after,
                known=known,
                note=note,
            )
        )
    return preview


def _record_count(entries: QuerySet[SyncError]) -> int:
    records = set()
    for coupling_id, mapping_id, record_id in entries.values_list(
        "coupling_id", "mapping_id", "source_record_id"
    ):
        if coupling_id is not None:
            records.add(("coupling", coupling_id))
        elif mapping_id and record_id:
            records.add(("record", record_id))
    return len(records)


def _kept_value(entry: SyncError, spec: RuleSpec) -> tuple[Any] | None:
    """The value the entry's write sent to the field, as it kept it; None when it kept none."""
    kept = entry.sent_values or {}
    sent = kept.get("sent") if isinstance(kept, dict) else None
    if not isinstance(sent, dict) or kept.get("direction") != spec.direction:
        return None
    if spec.field not in sent:
        return None
    return (sent[spec.field],)


def _read_now(mapping, spec: RuleSpec, entries: list[SyncError]) -> dict[str, Any]:
    """What the records of entries that kept no values would send to the field now."""
    wanted = {e.source_record_id for e in entries if e.source_record_id}
    pair = next(
        (p for p in field_pairs(mapping.field_mappings, spec.direction) if p.write == spec.field),
        None,
    )
    if not wanted or pair is None:
        return {}
    forward = spec.direction == TO_DESTINATION
    side = "source" if forward else "destination"
    entity = mapping.source_entity if forward else mapping.destination_entity
    values: dict[str, Any] = {}
    try:
        with connector_for(
            mapping.connection, side, timeout=READ_TIMEOUT, max_retries=0, throttle_budget=0
        ) as connector:
            for record_id in sorted(wanted):
                record = connector.get(entity, record_id)
                if record is not None:
                    values[record_id] = pair.value(record.values)
    except ConnectorError:
        pass  # the rows say the value is not known
    return values


def apply_rule(problem: ErrorGroup, spec: RuleSpec, *, keep: bool, user) -> Applied:
    """Make the rule (or, kept, a new version of the mapping's kept rule of the same field
    and direction) and retry every record of the problem's open entries as one job that
    applies it. A rule used once transforms only that job's writes."""
    entries = open_entries(problem)
    records = _record_count(entries)
    if not records:
        raise RuleRefused("The problem has no open entry of a record to retry.")
    mapping = problem.mapping
    assert mapping is not None  # rule_spec checked it
    with transaction.atomic():
        rule = None
        if keep:
            rule = (
                MappingRule.objects.select_for_update()
                .filter(
                    mapping=mapping,
                    direction=spec.direction,
                    field=spec.field,
                    kept=True,
                    is_active=True,
                )
                .first()
            )
        if rule is None:
            rule = MappingRule.objects.create(
                mapping=mapping,
                direction=spec.direction,
                field=spec.field,
                kept=keep,
                origin_problem=problem,
                created_by=audit.person(user),
            )
        number = (rule.versions.aggregate(last=Max("number"))["last"] or 0) + 1
        version = RuleVersion.objects.create(
            rule=rule,
            number=number,
            kind=spec.kind,
            params=spec.params,
            note=f"From problem #{problem.pk}",
            made_by=audit.person(user),
        )
        rule.current = version
        rule.save(update_fields=["current"])
    retried = retry_entries(entries, user=user, rule_versions=[version])
    job = retried.jobs[0][0] if retried.jobs else None
    refused = " ".join(message for _, message, _ in retried.refused)
    if job is None and not keep:
        # Used once, it had its one job refused: it never applies.
        rule.is_active = False
        rule.save(update_fields=["is_active"])
    how = "kept on the mapping" if keep else "used once"
    audit.record(
        audit.Action.RULE_APPLIED,
        f"Rule {version.description} on {spec.field} of {mapping.name} ({how}) applied to "
        f"problem #{problem.pk}: "
        + (f"job #{job.pk} retries {records} record(s)" if job else f"no job: {refused}"),
        user=user,
        target=rule,
        object_type="rule",
        details={
            "rule": rule.pk,
            "version": version.number,
            "mapping": mapping.pk,
            "direction": spec.direction,
            "field": spec.field,
            "kind": spec.kind,
            "params": spec.params,
            "kept": keep,
            "problem": problem.pk,
            "job": job.pk if job else None,
            "records": records,
            "refused": refused,
        },
    )
    return Applied(rule=rule, version=version, job=job, records=records, refused=refused)


def switch_off(rule: MappingRule, user) -> MappingRule:
    """A kept rule no longer transforms the mapping's writes; its versions stay."""
    with transaction.atomic():
        rule = MappingRule.objects.select_for_update().select_related("mapping").get(pk=rule.pk)
        if not rule.kept:
            raise RuleRefused("A rule used once applied in its job only: there is nothing to stop.")
        if not rule.is_active:
            raise RuleRefused("The rule is switched off already.")
        rule.is_active = False
        rule.switched_off_at = timezone.now()
        rule.switched_off_by = audit.person(user)
        rule.save(update_fields=["is_active", "switched_off_at", "switched_off_by"])
        audit.record(
            audit.Action.RULE_SWITCHED_OFF,
            f"Rule #{rule.pk} on {rule.field} of {rule.mapping.name} switched off",
            user=user,
            target=rule,
            object_type="rule",
            details={"rule": rule.pk, "mapping": rule.mapping_id, "field": rule.field},
        )
    return rule


def revert(rule: MappingRule, user) -> RuleVersion:
    """Make the version before the current one current again, as a new version."""
    with transaction.atomic():
        rule = (
            MappingRule.objects.select_for_update(of=("self",))
            .select_related("mapping", "current")
            .get(pk=rule.pk)
        )
        current = rule.current
        if not rule.kept:
            raise RuleRefused("A rule used once applied in its job only: it has nothing to revert.")
        if current is None or current.number < 2:
            raise RuleRefused("The rule has no earlier version: switch it off instead.")
        previous = rule.versions.get(number=current.number - 1)
        version = RuleVersion.objects.create(
            rule=rule,
            number=(rule.versions.aggregate(last=Max("number"))["last"] or 0) + 1,
            kind=previous.kind,
            params=previous.params,
            note=f"Reverted to version {previous.number}",
            made_by=audit.person(user),
        )
        rule.current = version
        rule.save(update_fields=["current"])
        audit.record(
            audit.Action.RULE_REVERTED,
            f"Rule #{rule.pk} on {rule.field} of {rule.mapping.name} reverted to version "
            f"{previous.number} ({version.description}), now version {version.number}",
            user=user,
            target=rule,
            object_type="rule",
            details={
                "rule": rule.pk,
                "mapping": rule.mapping_id,
                "field": rule.field,
                "from_version": current.number,
                "to_version": previous.number,
                "version": version.number,
            },
        )
    return version
