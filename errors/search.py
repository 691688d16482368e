"""Searching the entries: a word of the message, or a whole record id on either side.

The message is not indexed on every entry: a trigram index there cost about a third of an
entry's insert. Entries of one problem share its message but for what differs from record to
record (the ids, times and values that grouping leaves out), and the problem keeps the message
as people read it as its title, in a trigram index of its own. So the text is looked up among
the problems' titles (a few thousand rows), and the entries of those problems are read by
their problem index and kept when their own message holds the text, so a match is always a
message that holds it. Text that is only in the parts that differ from entry to entry (a
number, a date, a quoted value) is found where it names the record: its id, matched whole.

The entries' own message is matched with ILIKE on the column itself, not Django's
UPPER(message) LIKE: the planner reads the column's statistics for it, while it has none for
UPPER(message) and guessed a handful of rows for a word found in a tenth of the entries, then
sorted and counted a million of them for a page's total."""

from django.db.models import F, Q, QuerySet
from django.db.models.lookups import IContains

from .models import ErrorGroup


def problems_mentioning(text: str) -> list[int]:
    """The problems whose title holds the text (any case): served by their trigram index."""
    return list(
        ErrorGroup.objects.filter(title__icontains=text).order_by().values_list("pk", flat=True)
    )


class ContainsAnyCase(IContains):
    """`column ILIKE '%text%'`, the text's own % and _ escaped as icontains escapes them."""

    lookup_name = "ilike_contains"

    def as_sql(self, compiler, connection):
        lhs_sql, params = self.process_lhs(compiler, connection)
        rhs_sql, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs_sql} ILIKE {rhs_sql}", [*params, *rhs_params]


def matching(text: str) -> Q:
    """The entries whose message holds the text (found through their problems' titles), or
    whose source or destination record id is the text."""
    by_message = Q(group_id__in=problems_mentioning(text)) & Q(ContainsAnyCase(F("message"), text))
    return by_message | Q(source_record_id__iexact=text) | Q(destination_record_id__iexact=text)


def search(queryset: QuerySet, text: str) -> QuerySet:
    text = text.strip()
    if not text:
        return queryset
    return queryset.filter(matching(text))
