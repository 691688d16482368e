"""Root causes: entries blocked by the record they refer to, and the figures of the problems
that block others.

An entry is blocked by a record of another mapping (or a table outside any mapping) that a
lookup could not find or use: the engine names it (`blocked_by_mapping`, `_side`,
`_record`, `_entity`). When that record has an open entry of its own, `link` names the entry
and its problem. A problem is blocked by another when every open entry of it is; a problem
blocks the records of the open entries that name it, directly, and those of the entries
blocked by these, through them (`refresh`: kept when entries are recorded and whenever their
status changes, for the problems touched only, so the problems list reads stored figures)."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.db import connection
from django.db.models import Q

from .models import ErrorGroup, Status, SyncError

OPEN_OR_SNOOZED = (Status.OPEN, Status.SNOOZED)


def link(errors: Sequence[SyncError]) -> None:
    """Name, on each blocked entry, the newest open entry of the record it is blocked by and
    that entry's problem: one query for the batch, none when no entry is blocked."""
    blocked = [e for e in errors if e.blocked_by_mapping_id and e.blocked_by_record]
    if not blocked:
        return
    wanted = Q()
    for error in blocked:
        key = error.blocked_by_record or ""
        mapping = error.blocked_by_mapping_id
        # The referenced record may be the one its entry read or the one it wrote: ids of the
        # apps are compared without regard to case (the entries' record indexes are so).
        wanted |= Q(mapping_id=mapping, source_record_id__iexact=key)
        wanted |= Q(mapping_id=mapping, destination_record_id__iexact=key)
    found: dict[tuple[int, str], tuple[int, int | None]] = {}
    rows = (
        SyncError.objects.filter(wanted, status__in=OPEN_OR_SNOOZED)
        .order_by("-created_at", "-id")
        .values_list("pk", "group_id", "mapping_id", "source_record_id", "destination_record_id")
    )
    for pk, group_id, mapping_id, source_id, destination_id in rows:
        for key in (source_id, destination_id):
            if key:
                found.setdefault((mapping_id, key.upper()), (pk, group_id))
    for error in blocked:
        mapping_id = error.blocked_by_mapping_id or 0
        entry = found.get((mapping_id, (error.blocked_by_record or "").upper()))
        if entry is not None:
            error.blocked_by_entry_id, error.blocked_by_group_id = entry


def affected_by(entries) -> set[int]:
    """The problems whose root-cause figures a change of these entries' status moves: their
    own, when blocked, and those they are blocked by (one query)."""
    ids: set[int] = set()
    for group_id, blocker_id in (
        entries.filter(blocked_by_group__isnull=False)
        .order_by()
        .values_list("group_id", "blocked_by_group_id")
        .distinct()
    ):
        ids.update(i for i in (group_id, blocker_id) if i)
    return ids


def refresh(group_ids: Iterable[int | None]) -> None:
    """Count anew what these problems, and every problem above them, block; and whether each
    of these is blocked by one problem as a whole. Two statements over the blocked entries
    only (partial indexes), whatever the problems' size."""
    ids = sorted({pk for pk in group_ids if pk})
    if not ids:
        return
    entries = SyncError._meta.db_table
    groups = ErrorGroup._meta.db_table
    statuses = list(OPEN_OR_SNOOZED)
    with connection.cursor() as cursor:
        # Blocked as a whole: every open entry names the same problem (not itself).
        cursor.execute(
            f"""
            UPDATE {groups} g SET blocked_by_id = b.blocker
            FROM (
                SELECT g2.id,
                       (SELECT CASE WHEN COUNT(*) > 0
                                     AND COUNT(*) = COUNT(e.blocked_by_group_id)
                                     AND MIN(e.blocked_by_group_id) = MAX(e.blocked_by_group_id)
                                     AND MIN(e.blocked_by_group_id) <> g2.id
                                    THEN MIN(e.blocked_by_group_id) END
                        FROM {entries} e
                        WHERE e.group_id = g2.id AND e.status = ANY(%(statuses)s)) AS blocker
                FROM {groups} g2 WHERE g2.id = ANY(%(ids)s)
            ) b
            WHERE g.id = b.id AND g.blocked_by_id IS DISTINCT FROM b.blocker
            """,  # noqa: S608 - the table names are ours, the values parameters
            {"ids": ids, "statuses": statuses},
        )
        # The problems above them, then everything below each: the records of the open
        # entries blocked by it or by a problem it blocks. UNION keeps a loop finite.
        cursor.execute(
            f"""
            WITH RECURSIVE up(id) AS (
                SELECT unnest(%(ids)s::bigint[])
              UNION
                SELECT e.blocked_by_group_id FROM {entries} e JOIN up ON e.group_id = up.id
                WHERE e.blocked_by_group_id IS NOT NULL AND e.status = ANY(%(statuses)s)
            ),
            down(root, id) AS (
                SELECT id, id FROM up
              UNION
                SELECT down.root, e.group_id FROM {entries} e
                JOIN down ON e.blocked_by_group_id = down.id
                WHERE e.group_id IS NOT NULL AND e.status = ANY(%(statuses)s)
            ),
            figures AS (
                SELECT down.root,
                       COUNT(DISTINCT e.mapping_id || ':' || e.source_record_id) AS total,
                       COUNT(DISTINCT e.mapping_id || ':' || e.source_record_id)
                           FILTER (WHERE e.blocked_by_group_id = down.root) AS direct
                FROM down JOIN {entries} e ON e.blocked_by_group_id = down.id
                WHERE e.status = ANY(%(statuses)s) AND e.group_id <> down.root
                GROUP BY down.root
            )
            UPDATE {groups} g
            SET blocks_records = COALESCE(f.total, 0), blocks_directly = COALESCE(f.direct, 0)
            FROM up LEFT JOIN figures f ON f.root = up.id
            WHERE g.id = up.id
              AND (g.blocks_records, g.blocks_directly)
                  IS DISTINCT FROM (COALESCE(f.total, 0), COALESCE(f.direct, 0))
            """,  # noqa: S608 - the table names are ours, the values parameters
            {"ids": ids, "statuses": statuses},
        )


# How far up a chain of blocked problems is followed (a loop stops sooner).
MAX_DEPTH = 20


def root_of(group: ErrorGroup | None) -> ErrorGroup | None:
    """The problem at the top of the chain a blocked problem waits for (None when it is not
    blocked): the one to fix first."""
    if group is None or not group.blocked_by_id:
        return None
    seen = {group.pk}
    root = group
    for _ in range(MAX_DEPTH):
        if not root.blocked_by_id:
            break
        parent = ErrorGroup.objects.filter(pk=root.blocked_by_id).first()
        if parent is None or parent.pk in seen:
            break
        seen.add(parent.pk)
        root = parent
    return root if root.pk != group.pk else None


@dataclass(frozen=True)
class Blocker:
    """What an entry is blocked by, as its page says it: the open entry of the record it
    needed and that entry's problem, with the problem at the root of the chain; or, when the
    record has no open entry, the record itself."""

    entry: SyncError | None
    group: ErrorGroup | None
    root: ErrorGroup | None
    mapping_name: str
    entity: str
    record: str

    @property
    def record_label(self) -> str:
        under = f" under {self.mapping_name}" if self.mapping_name else ""
        return f"{self.entity or 'record'} {self.record}{under}".strip()


def blocker_of(error: SyncError) -> Blocker | None:
    """What the entry is blocked by (a few queries, for one entry's page); None when it is
    not blocked."""
    if not error.blocked_by_record:
        return None
    entry = (
        SyncError.objects.filter(pk=error.blocked_by_entry_id).first()
        if error.blocked_by_entry_id
        else None
    )
    group = (
        ErrorGroup.objects.filter(pk=error.blocked_by_group_id).first()
        if error.blocked_by_group_id
        else None
    )
    mapping = error.blocked_by_mapping
    return Blocker(
        entry=entry,
        group=group,
        root=root_of(group) or group,
        mapping_name=mapping.name if mapping is not None else "",
        entity=error.blocked_by_entity or "",
        record=error.blocked_by_record,
    )
