"""Coupling records by hand (Couple) or by match on chosen fields (Match-Based Coupling).

Each state change is one function: it reads the records over the apps' APIs, writes the
coupling, resolves the entries the coupling fixes, and can queue a job that synchronizes
the new couplings through the engine. Called alike from the console and Celery tasks."""

import logging
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit import services as audit
from errors.links import safe_link
from errors.services import resolve_coupled
from sync import engine
from sync import services as sync_services
from sync.connectors import ConnectorError, ODataConnector, RemoteRecord, connector_for
from sync.fields import FROM_DESTINATION, TO_DESTINATION, field_pairs, same_value
from sync.models import SyncJob, TableMapping
from syncconsole import queue, work
from syncconsole.queue import QueueUnavailable

from .actions import CouplingRefused, synchronize_couplings
from .models import Coupling, CouplingRun

logger = logging.getLogger(__name__)
SIDES = ("source", "destination")
# Candidates read per search: enough to show that a match is ambiguous.
MAX_CANDIDATES = 20
# A case-insensitive search reads the other table and compares in Python (the apps' `eq`
# may be case-sensitive); past this many records it gives up rather than read for ever.
MAX_RECORDS_COMPARED = 20000


# What came of one record.
MATCH = "match"  # one free record matches: it can be coupled
COUPLED = "coupled"
CREATED = "created"  # nothing matched: created on the other side and coupled
NO_CRITERIA = "no_criteria"
NO_MATCH = "no_match"
SEVERAL_MATCHES = "several_matches"
ALREADY_COUPLED = "already_coupled"
NOT_FOUND = "not_found"
FAILED = "failed"
OUTCOME_LABELS = {
    MATCH: "Match found",
    COUPLED: "Coupled",
    CREATED: "Created and coupled",
    NO_CRITERIA: "No criteria",
    NO_MATCH: "No match",
    SEVERAL_MATCHES: "Several matches",
    ALREADY_COUPLED: "Already coupled",
    NOT_FOUND: "Record not found",
    FAILED: "Failed",
}


@dataclass(frozen=True)
class Criterion:
    """Match a source field with a destination field; lower priorities are tried first and
    criteria of the same priority must all match."""

    source: str
    destination: str
    priority: int = 1
    case_sensitive: bool = True

    @property
    def label(self) -> str:
        case = "" if self.case_sensitive else " (any case)"
        return f"{self.source} = {self.destination}{case}"

    def field(self, side: str) -> str:
        return self.source if side == "source" else self.destination

    def matches(self, a: Any, b: Any) -> bool:
        if a in (None, "") or b in (None, ""):
            return False
        if not self.case_sensitive and isinstance(a, str) and isinstance(b, str):
            return a.casefold() == b.casefold()
        return same_value(a, b)


@dataclass
class Candidate:
    id: str
    url: str
    values: dict[str, Any]
    matched: list[str]
    coupled_to: str = ""


@dataclass
class MatchResult:
    side: str
    record_id: str
    outcome: str
    message: str
    record_url: str = ""
    candidates: list[Candidate] = field(default_factory=list)
    other_id: str = ""
    coupling_id: int | None = None

    @property
    def outcome_label(self) -> str:
        return OUTCOME_LABELS[self.outcome]

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "outcome_label": self.outcome_label}


def other_side(side: str) -> str:
    return "destination" if side == "source" else "source"


def criteria_choices(mapping: TableMapping) -> list[tuple[str, str]]:
    """The (source field, destination field) pairs of the mapping's enabled field mappings,
    in their order, that can be matched on (constants carry no value to compare)."""
    pairs: list[tuple[str, str]] = []
    for pair in field_pairs(mapping.field_mappings, TO_DESTINATION):
        if not pair.has_constant and not pair.resolved and (pair.read, pair.write) not in pairs:
            pairs.append((pair.read, pair.write))
    for pair in field_pairs(mapping.field_mappings, FROM_DESTINATION):
        if not pair.resolved and (pair.write, pair.read) not in pairs:
            pairs.append((pair.write, pair.read))
    return pairs


def criteria_from_dicts(rows: list[dict[str, Any]]) -> list[Criterion]:
    return [
        Criterion(r["source"], r["destination"], int(r["priority"]), bool(r["case_sensitive"]))
        for r in rows
    ]


class Apps:
    """Both apps of a mapping, with one connector each for a batch of records."""

    def __init__(self, mapping: TableMapping):
        self.mapping = mapping
        self.connectors: dict[str, ODataConnector] = {}

    def __getitem__(self, side: str) -> ODataConnector:
        if side not in self.connectors:
            self.connectors[side] = connector_for(self.mapping.connection, side)
        return self.connectors[side]

    def entity(self, side: str) -> str:
        return getattr(self.mapping, f"{side}_entity")

    def app(self, side: str) -> str:
        return getattr(self.mapping.connection, f"{side}_app")

    def get(self, side: str, record_id: str) -> RemoteRecord | None:
        return self[side].get(self.entity(side), record_id)

    def url(self, side: str, record_id: str) -> str:
        # The address is built from a connection's settings: a link only when it is http(s).
        return safe_link(self[side].record_url(self.entity(side), record_id)) or ""

    def close(self) -> None:
        for connector in self.connectors.values():
            connector.close()

    def __enter__(self) -> "Apps":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def _coupled_to(mapping: TableMapping, side: str, record_ids: list[str]) -> dict[str, str]:
    """For the records of `side` that are coupled under the mapping: the record they are
    coupled to."""
    return {
        mine: theirs
        for mine, theirs in Coupling.objects.filter(
            mapping=mapping, **{f"{side}_record_id__in": record_ids}
        ).values_list(f"{side}_record_id", f"{other_side(side)}_record_id")
    }


def _refuse_if_coupled(mapping: TableMapping, source_id: str, destination_id: str) -> None:
    for side, record_id in (("source", source_id), ("destination", destination_id)):
        taken = _coupled_to(mapping, side, [record_id])
        if taken:
            raise CouplingRefused(
                f"The {side} record {record_id} is already coupled to the "
                f"{other_side(side)} record {taken[record_id]} under {mapping.name}."
            )


def _create_coupling(
    mapping: TableMapping, source_id: str, destination_id: str, user, how: str
) -> Coupling:
    """Write the coupling and resolve the entries it fixes; refuses a record that is coupled
    already, naming the record it is coupled to."""
    _refuse_if_coupled(mapping, source_id, destination_id)
    try:
        with transaction.atomic():
            coupling = Coupling.objects.create(
                mapping=mapping, source_record_id=source_id, destination_record_id=destination_id
            )
            connection = mapping.connection
            resolve_coupled(
                mapping.pk,
                [(connection.source_app, source_id), (connection.destination_app, destination_id)],
                coupling.pk,
                user,
                f"Coupled {how} to record {destination_id} by {audit.name_of(user)}.",
            )
    except IntegrityError:
        # Coupled meanwhile by a sync job or another person.
        raise CouplingRefused(
            f"The source record {source_id} or the destination record {destination_id} was "
            f"coupled meanwhile under {mapping.name}."
        ) from None
    return coupling


def couple_manually(
    mapping: TableMapping,
    source_record_id: str,
    destination_record_id: str,
    user=None,
    *,
    synchronize_after: bool = False,
) -> tuple[Coupling, SyncJob | None]:
    """Couple two records a person chose, after checking that both exist in their apps and
    neither is coupled yet. With `synchronize_after`, also queue a job that synchronizes them
    (JobRefused or QueueUnavailable then say why it could not; the coupling stays)."""
    source_record_id, destination_record_id = (
        source_record_id.strip(),
        destination_record_id.strip(),
    )
    if not source_record_id or not destination_record_id:
        raise CouplingRefused("Both a source and a destination record id are needed.")
    _refuse_if_coupled(mapping, source_record_id, destination_record_id)
    with Apps(mapping) as apps:
        for side, record_id in (
            ("source", source_record_id),
            ("destination", destination_record_id),
        ):
            if apps.get(side, record_id) is None:
                raise CouplingRefused(
                    f"There is no {apps.entity(side)} record {record_id} in {apps.app(side)}."
                )
    coupling = _create_coupling(mapping, source_record_id, destination_record_id, user, "by hand")
    job = synchronize_couplings(mapping, [coupling.pk], user=user) if synchronize_after else None
    return coupling, job


def _search(
    apps: Apps, side: str, record: RemoteRecord, group: list[Criterion]
) -> list[RemoteRecord]:
    """The records on the other side that meet every criterion of the group."""
    other = other_side(side)
    condition = getattr(apps.mapping, f"{other}_filter")
    usable = [
        c
        for c in group
        if isinstance(record.values.get(c.field(side)), (str, int, float, Decimal, bool))
    ]
    if not usable:
        return []
    exact = {c.field(other): record.values[c.field(side)] for c in usable if c.case_sensitive}
    if exact:
        found = apps[other].find_where(
            apps.entity(other), exact, condition=condition, top=MAX_CANDIDATES
        )
    else:
        found = []
        read = 0
        for page in apps[other].list_changes(apps.entity(other), None, condition=condition):
            read += len(page)
            found.extend(page)
            if read > MAX_RECORDS_COMPARED:
                raise ConnectorError(
                    f"{apps.app(other)} holds more than {MAX_RECORDS_COMPARED} "
                    f"{apps.entity(other)} records: add a case-sensitive criterion to narrow "
                    "the search."
                )
    # The apps' own `eq` may ignore case where the criterion does not: compare every value.
    return [
        candidate
        for candidate in found
        if all(
            c.matches(record.values.get(c.field(side)), candidate.values.get(c.field(other)))
            for c in usable
        )
    ][:MAX_CANDIDATES]


def _not_found(result: MatchResult, apps: Apps) -> MatchResult:
    result.outcome = NOT_FOUND
    result.message = (
        f"There is no {apps.entity(result.side)} record {result.record_id} in "
        f"{apps.app(result.side)}."
    )
    return result


def find_match(
    mapping: TableMapping,
    side: str,
    record_id: str,
    criteria: list[Criterion],
    *,
    apps: Apps | None = None,
) -> MatchResult:
    """Read the record, look for its match on the other side by the criteria (by priority),
    and say what was found: each candidate with the criteria it meets and what it is coupled
    to, and whether the record can be coupled or why not. Writes nothing."""
    if side not in SIDES:
        raise ValueError(side)
    if apps is None:
        with Apps(mapping) as own:
            return find_match(mapping, side, record_id, criteria, apps=own)
    other = other_side(side)
    result = MatchResult(side, record_id, NO_MATCH, "", record_url=apps.url(side, record_id))
    record = apps.get(side, record_id)
    if record is None:
        return _not_found(result, apps)
    coupled = _coupled_to(mapping, side, [record_id])
    if coupled:
        result.outcome, result.other_id = ALREADY_COUPLED, coupled[record_id]
        result.message = (
            f"The record is already coupled to the {other} record {coupled[record_id]}."
        )
        return result
    if not criteria:
        result.outcome = NO_CRITERIA
        result.message = "No criteria: choose at least one pair of fields to match on."
        return result
    found: list[RemoteRecord] = []
    for priority in sorted({c.priority for c in criteria}):
        found = _search(apps, side, record, [c for c in criteria if c.priority == priority])
        if found:
            break
    taken = _coupled_to(mapping, other, [r.id for r in found])
    # Every mapped field of the candidates, so a person can tell them apart.
    fields = [pair[0 if other == "source" else 1] for pair in criteria_choices(mapping)]
    result.candidates = [
        Candidate(
            id=candidate.id,
            url=apps.url(other, candidate.id),
            values={name: candidate.values.get(name) for name in fields},
            matched=[
                c.label
                for c in criteria
                if c.matches(record.values.get(c.field(side)), candidate.values.get(c.field(other)))
            ],
            coupled_to=taken.get(candidate.id, ""),
        )
        for candidate in found
    ]
    labels = ", ".join(c.label for c in sorted(criteria, key=lambda c: c.priority))
    if not found:
        if not any(record.values.get(c.field(side)) not in (None, "") for c in criteria):
            result.message = "No match: the record has no value in any of the chosen fields."
        else:
            result.message = (
                f"No match: no {apps.entity(other)} record in {apps.app(other)} "
                f"matches on {labels}."
            )
    elif len(found) > 1:
        result.outcome = SEVERAL_MATCHES
        result.message = (
            f"Several matches: {len(found)}{'+' if len(found) >= MAX_CANDIDATES else ''} "
            f"{apps.entity(other)} records match; choose one and couple it by hand, or add "
            "criteria."
        )
    elif taken:
        result.outcome, result.other_id = ALREADY_COUPLED, found[0].id
        result.message = (
            f"Already coupled: the matching {other} record {found[0].id} is coupled to the "
            f"{side} record {taken[found[0].id]}."
        )
    else:
        result.outcome, result.other_id = MATCH, found[0].id
        result.message = (
            f"One match: the {other} record {found[0].id} matches on "
            f"{', '.join(result.candidates[0].matched)}."
        )
    return result


def _couple_one(
    run: CouplingRun, apps: Apps, record_id: str, criteria: list[Criterion], user
) -> MatchResult:
    mapping, side = run.mapping, run.side
    try:
        result = find_match(mapping, side, record_id, criteria, apps=apps)
        if result.outcome == NO_MATCH and run.create_if_no_match:
            record = apps.get(side, record_id)
            if record is None:  # deleted since it was read to look for its match
                return _not_found(result, apps)
            direction = TO_DESTINATION if side == "source" else FROM_DESTINATION
            created = engine.create_counterpart(
                mapping, record, direction, apps["source"], apps["destination"]
            )
            result.outcome, result.other_id = CREATED, created.id
            result.message = (
                f"No match, so a new {apps.entity(other_side(side))} record {created.id} was "
                f"created in {apps.app(other_side(side))} and coupled."
            )
        elif result.outcome == MATCH:
            result.outcome = COUPLED
            result.message = f"Coupled to the {other_side(side)} record {result.other_id}."
        else:
            return result
        ids = {side: record_id, other_side(side): result.other_id}
        how = "by match" if result.outcome == COUPLED else "to a new record"
        coupling = _create_coupling(mapping, ids["source"], ids["destination"], user, how)
        result.coupling_id = coupling.pk
    except CouplingRefused as refused:
        result.outcome, result.message = ALREADY_COUPLED, str(refused)
    except ConnectorError as error:
        result = MatchResult(side, record_id, FAILED, f"{error.message}", record_url="")
    return result


def couple_by_match(
    mapping: TableMapping,
    side: str,
    record_ids: list[str],
    criteria: list[Criterion],
    *,
    create_if_no_match: bool = False,
    synchronize_after: bool = False,
    user=None,
    run_in_background: bool | None = None,
) -> CouplingRun:
    """Couple each record to its single unambiguous match (creating one when nothing matches
    and `create_if_no_match` is set); the returned run holds one outcome per record.

    Up to COUPLE_BY_MATCH_ASYNC_THRESHOLD records run at once; more run in a Celery worker
    and the run shows its progress. Raises sync.QueueUnavailable when the worker
    cannot be reached (the run then says so)."""
    if side not in SIDES:
        raise ValueError(side)
    run = CouplingRun.objects.create(
        mapping=mapping,
        side=side,
        record_ids=list(dict.fromkeys(record_ids)),
        criteria=[asdict(c) for c in criteria],
        create_if_no_match=create_if_no_match,
        synchronize_after=synchronize_after,
        requested_by=user if user is not None and user.is_authenticated else None,
    )
    if run_in_background is None:
        run_in_background = len(run.record_ids) > settings.COUPLE_BY_MATCH_ASYNC_THRESHOLD
    if not run_in_background:
        return run_couple_by_match(run.pk)

    try:
        queue.send("couplings.couple_by_match", run.pk)
    except QueueUnavailable as exc:
        _finish(
            run, CouplingRun.State.FAILED, "The task queue is unavailable; nothing was coupled."
        )
        raise QueueUnavailable(run.message) from exc
    return run


def _finish(run: CouplingRun, state: str, message: str) -> None:
    run.state, run.message, run.finished_at = state, message[:2000], timezone.now()
    run.save(update_fields=["state", "message", "finished_at", "results", "sync_job"])


def run_couple_by_match(run_id: int) -> CouplingRun:
    """Do a coupling run's work. Running it again goes on from the first record without an
    outcome; a finished run is left as it is, and one another worker runs is left to it."""
    with work.worked_on(CouplingRun, run_id) as mine:
        if not mine:
            return CouplingRun.objects.get(pk=run_id)
        return _run_couple_by_match(run_id)


def resume_stalled_runs() -> int:
    """Coupling runs left running by a worker that died: queued again to go on from where
    they stopped, or failed once they were resumed WORK_RESUMES times. Returns how many."""
    running = CouplingRun.objects.filter(state=CouplingRun.State.RUNNING)
    return work.resume_stalled(running, "couplings.couple_by_match", _fail_stalled)


def _fail_stalled(run) -> None:
    _finish(
        run,
        CouplingRun.State.FAILED,
        f"{summary(run.results)} Stopped: {work.stopped_message(run.resumes, 'run')}",
    )


def _run_couple_by_match(run_id: int) -> CouplingRun:
    run = CouplingRun.objects.select_related("mapping__connection", "requested_by").get(pk=run_id)
    if run.is_finished:
        return run
    run.state = CouplingRun.State.RUNNING
    run.started_at = run.started_at or timezone.now()
    run.heartbeat_at = timezone.now()
    run.save(update_fields=["state", "started_at", "heartbeat_at"])
    criteria = criteria_from_dicts(run.criteria)
    user = run.requested_by
    try:
        with Apps(run.mapping) as apps:
            for record_id in run.record_ids[len(run.results) :]:
                result = _couple_one(run, apps, record_id, criteria, user)
                run.results.append(result.as_dict())
                run.heartbeat_at = timezone.now()
                run.save(update_fields=["results", "heartbeat_at"])
    except Exception as exc:  # a bug must not leave the run "running" for ever
        logger.exception("Coupling run %s failed", run.pk)
        _finish(run, CouplingRun.State.FAILED, f"The run stopped: {exc}")
        return run
    coupled = [r["coupling_id"] for r in run.results if r["coupling_id"]]
    message = summary(run.results)
    if run.synchronize_after and coupled:
        try:
            run.sync_job = synchronize_couplings(run.mapping, coupled, user=user)
            message += f" Synchronizing them as job #{run.sync_job.pk}."
        except (sync_services.JobRefused, QueueUnavailable) as exc:
            message += f" They could not be synchronized now: {exc}"
    _finish(run, CouplingRun.State.DONE, message)
    return run


def summary(results: list[dict[str, Any]]) -> str:
    counts: dict[str, int] = {}
    for result in results:
        counts[result["outcome"]] = counts.get(result["outcome"], 0) + 1
    coupled = counts.get(COUPLED, 0) + counts.get(CREATED, 0)
    rest = ", ".join(
        f"{OUTCOME_LABELS[outcome].lower()}: {n}"
        for outcome, n in counts.items()
        if outcome not in (COUPLED, CREATED)
    )
    return f"{coupled} of {len(results)} records coupled" + (f" ({rest})." if rest else ".")
