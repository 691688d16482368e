"""`column = ANY(array)`: one filter over many values that costs the same whatever their number.

Django's `__in` prepares each value on its own and sends one parameter per value; for the
thousand ids of a sync page that is a few milliseconds of Python per query. PostgreSQL's
`= ANY(%s)` takes the list as one array parameter, adapted by psycopg2 in C."""

from collections.abc import Iterable
from typing import Any

from django.db.models import F, Lookup


class AnyOf(Lookup):
    """`field = ANY(values)`, used as a filter expression: `.filter(AnyOf(F("pk"), ids))`.

    The values are sent as they are (strings for text columns, integers for ids), so they
    must already be of the column's type."""

    lookup_name = "any_of"
    prepare_rhs = False

    def get_prep_lookup(self) -> list[Any]:
        return list(self.rhs)

    def as_sql(self, compiler, connection):
        lhs_sql, lhs_params = self.process_lhs(compiler, connection)
        return f"{lhs_sql} = ANY(%s)", (*lhs_params, self.rhs)


def any_of(field_name: str, values: Iterable[Any]) -> AnyOf:
    """The filter `field_name = ANY(values)`."""
    return AnyOf(F(field_name), list(values))
