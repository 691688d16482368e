"""How much an open problem holds the synchronization back, as the overview counts it: the
problem's own stored severity (errors.models.severity_rank), the one the Problems page and the
API sort by, so that the pages never disagree."""

from errors.models import ErrorGroup, Severity

# The problem's fields severity_of reads: what a query for it loads.
SEVERITY_FIELDS = ("severity",)


def severity_of(problem: ErrorGroup) -> Severity:
    """Blocking (an open setup problem of whole jobs: the mapping stops there) or Records (its
    records fail); a problem set aside is not open and not counted."""
    return problem.severity_level
