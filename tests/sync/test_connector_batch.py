"""The connector's `batch`: many operations in Business Central's JSON $batch requests against
the demo ERP, an outcome per operation, atomicity groups kept whole."""

import pytest

from demo.models import ErpCustomer
from sync.connectors import ConnectorError, connector_for
from sync.connectors import batch as batch_module
from sync.connectors.batch import Operation

pytestmark = pytest.mark.django_db


def customer(number: str, **more) -> dict:
    return {"number": number, "displayName": f"Batch {number}", **more}


def test_each_operation_has_its_outcome(demo_apps):
    existing = ErpCustomer.objects.order_by("number").first()
    operations = [
        Operation("POST", "customers", customer("B1001")),
        Operation("PATCH", f"customers({existing.pk})", {"city": "Bergen"}, {"If-Match": "*"}),
        Operation("POST", "customers", customer("B1002", email="@@")),
        Operation("GET", "customers(6a2c9ab2-0000-4000-8000-000000000000)"),
    ]
    with connector_for(demo_apps.connection, "source") as erp:
        created, patched, refused, missing = erp.batch(operations)
    assert (created.status, created.body["number"], created.ok) == (201, "B1001", True)
    assert patched.status == 200 and patched.body["city"] == "Bergen"
    assert (refused.ok, refused.status, refused.error.code) == (False, 400, "BadRequest")
    assert "not valid" in refused.error.message and not refused.error.transient
    assert missing.error.is_not_found
    existing.refresh_from_db()
    assert existing.city == "Bergen"
    assert ErpCustomer.objects.filter(number="B1001").exists()


def test_more_operations_than_a_request_takes_are_sent_in_several(demo_apps, monkeypatch):
    monkeypatch.setattr(batch_module, "MAX_OPERATIONS", 3)
    operations = [Operation("POST", "customers", customer(f"B2{i:03d}")) for i in range(7)]
    grouped = [*operations[:2], *[Operation("GET", "items", atomicity_group="g")] * 2]
    assert batch_module._chunks(operations) == [[0, 1, 2], [3, 4, 5], [6]]
    assert batch_module._chunks(grouped) == [[0, 1], [2, 3]]
    with connector_for(demo_apps.connection, "source") as erp:
        outcomes = erp.batch(operations)
    assert [o.status for o in outcomes] == [201] * 7
    assert ErpCustomer.objects.filter(number__startswith="B2").count() == 7


def test_an_atomicity_group_is_never_split_and_fails_whole(demo_apps, monkeypatch):
    monkeypatch.setattr(batch_module, "MAX_OPERATIONS", 3)
    operations = [
        Operation("POST", "customers", customer("B3001")),
        Operation("POST", "customers", customer("B3002"), atomicity_group="g"),
        Operation("POST", "customers", customer("B3003", email="@@"), atomicity_group="g"),
        Operation("POST", "customers", customer("B3004"), atomicity_group="g"),
    ]
    with connector_for(demo_apps.connection, "source") as erp:
        outcomes = erp.batch(operations)
        with pytest.raises(ConnectorError, match="atomicity group of 4"):
            erp.batch([Operation("GET", "customers", atomicity_group="big")] * 4)
    assert [o.status for o in outcomes] == [201, 424, 400, 424]
    assert list(
        ErpCustomer.objects.filter(number__startswith="B3").values_list("number", flat=True)
    ) == ["B3001"]
