"""How much an open problem holds the synchronization back: the one place that decides it."""

from enum import IntEnum

from errors.models import Category, ErrorGroup

# A problem that hits this many records is worth more than a few records' problems: usually one
# cause (a missing currency, a value the other app refuses) to fix once for all of them.
MANY_RECORDS = 50
# Setup problems that fail whole jobs: until an administrator fixes them, the mapping stops.
STOPPING = frozenset({Category.PERMISSION, Category.AUTHENTICATION, Category.INTEGRATION_USER})


class Severity(IntEnum):
    """Highest first when sorted in reverse."""

    TEMPORARY = 1
    SOME_RECORDS = 2
    MANY_RECORDS = 3
    STOPS_MAPPING = 4

    @property
    def label(self) -> str:
        return LABELS[self]


LABELS = {
    Severity.STOPS_MAPPING: "Stops the mapping",
    Severity.MANY_RECORDS: "Many records",
    Severity.SOME_RECORDS: "A few records",
    Severity.TEMPORARY: "Temporary",
}
# The problem's fields severity_of reads: what a query for it loads.
SEVERITY_FIELDS = ("category", "records")


def severity_of(problem: ErrorGroup) -> Severity:
    """The severity of an open problem. Problems do not store one: it is derived from the
    category (a setup problem that fails whole jobs stops the mapping; a connection problem
    closes by itself) and the records it hit. Should problems store a rank, this reads it
    instead, with SEVERITY_FIELDS naming its field."""
    if problem.category in STOPPING:
        return Severity.STOPS_MAPPING
    if problem.category == Category.CONNECTION:
        return Severity.TEMPORARY
    if problem.records >= MANY_RECORDS:
        return Severity.MANY_RECORDS
    return Severity.SOME_RECORDS
