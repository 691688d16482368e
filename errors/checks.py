"""The errors app's system checks, registered when the app is ready."""

from django.core.checks import Error, Tags, register
from django.db import DatabaseError, connections

from .sql import TIME_ZONE_HINT, time_zone_mismatch


@register(Tags.database)
def entry_days_in_time_zone(app_configs, databases=None, **kwargs):
    """The entries' day partitions and the problems' day figures are in the zone that
    errors_entry_day fixes in the database (TIME_ZONE when it was installed): with another
    TIME_ZONE, new days would be cut elsewhere than the partitions and figures already there.
    A database check: `migrate` runs it before migrating (so at every start of `make run` and
    of the web container), as does `manage.py check --database default`."""
    problems = []
    for alias in databases or ():
        try:
            with connections[alias].cursor() as cursor:
                problem = time_zone_mismatch(cursor)
        except DatabaseError:
            continue  # not reachable or not migrated: nothing to compare yet
        if problem:
            problems.append(Error(problem, hint=TIME_ZONE_HINT, id="syncconsole.E005"))
    return problems
