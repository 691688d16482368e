"""`column = ANY(array)`: many values as one parameter, the same rows as `__in`."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from couplings.models import Coupling
from sync.models import SyncJob
from syncconsole.arrays import any_of
from tests.factories import make_coupling, make_mapping

pytestmark = pytest.mark.django_db


def test_many_values_are_one_array_parameter_and_find_what_in_finds():
    mapping = make_mapping()
    couplings = [make_coupling(mapping, source_record_id=f"S{i}") for i in range(5)]
    wanted = ["S1", "S3", "nowhere"]
    with CaptureQueriesContext(connection) as queries:
        found = set(Coupling.objects.filter(any_of("source_record_id", wanted)))
    assert found == set(Coupling.objects.filter(source_record_id__in=wanted))
    assert found == {couplings[1], couplings[3]}
    (query,) = queries.captured_queries
    assert "= ANY(ARRAY['S1','S3','nowhere'])" in query["sql"]
    by_pk = Coupling.objects.filter(any_of("pk", [couplings[0].pk, couplings[4].pk]))
    assert set(by_pk) == {couplings[0], couplings[4]}
    assert not Coupling.objects.filter(any_of("pk", [])).exists()


def test_it_combines_with_other_conditions():
    make_coupling(make_mapping(), source_record_id="A")
    assert not Coupling.objects.filter(any_of("source_record_id", ["A"]), mapping_id=-1).exists()
    assert not SyncJob.objects.filter(any_of("pk", [1, 2, 3])).exists()
