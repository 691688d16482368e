"""Reading a demo table page by page over real HTTP while its records change: the pages
follow (modified time, id), so no record is lost and none is read twice in the same
version; a record changed after it was read comes again with its change."""

from collections import Counter

import pytest
from django.utils import timezone

from demo.models import CrmAccount, ErpCustomer
from sync.connectors import connector_for

pytestmark = pytest.mark.django_db


def test_no_record_is_lost_or_repeated_while_records_change(demo_apps):
    pages = connector_for(demo_apps.connection, "source").list_changes(
        "customers", None, page_size=5
    )
    seen = list(next(pages))
    already_read = ErpCustomer.objects.get(pk=seen[0].id)
    not_yet_read = (
        ErpCustomer.objects.exclude(pk__in=[r.id for r in seen]).order_by("last_modified").first()
    )
    for customer in (already_read, not_yet_read):
        customer.city = "Aalborg"
        customer.save()
    added = ErpCustomer.objects.create(number="C99999", display_name="Added while paging")
    for page in pages:
        seen += page

    times = Counter(str(r.id) for r in seen)
    assert len({(r.id, r.modified_at) for r in seen}) == len(seen)  # no version twice
    assert set(times) == {str(pk) for pk in ErpCustomer.objects.values_list("pk", flat=True)}
    assert times[str(already_read.pk)] == 2  # read again, with its change
    assert times[str(not_yet_read.pk)] == 1 and times[str(added.pk)] == 1
    others = set(times) - {str(already_read.pk), str(not_yet_read.pk), str(added.pk)}
    assert all(times[pk] == 1 for pk in others)
    latest = [r for r in seen if r.id == str(already_read.pk)][-1]
    assert latest.values["city"] == "Aalborg"


def test_records_modified_at_the_same_moment_are_each_read_once(demo_apps):
    ErpCustomer.objects.update(last_modified=timezone.now())
    pages = list(
        connector_for(demo_apps.connection, "source").list_changes("customers", None, page_size=5)
    )
    ids = [r.id for page in pages for r in page]
    assert [len(page) for page in pages] == [5, 5, 2]
    assert sorted(ids) == sorted(str(pk) for pk in ErpCustomer.objects.values_list("pk", flat=True))


def api_calls(requests: list) -> list:
    """The requests to the app's API, without the sign-in's."""
    return [r for r in requests if "/oauth2/" not in r.url.path]


def test_many_records_are_read_by_id_in_one_request(demo_apps):
    erp = connector_for(demo_apps.connection, "source")
    sent = []
    erp.client.event_hooks["request"] = [sent.append]
    wanted = [str(pk) for pk in ErpCustomer.objects.values_list("pk", flat=True)[:10]]
    found = erp.get_many("customers", [*wanted, "00000000-0000-4000-8000-000000000001"])
    assert sorted(found) == sorted(wanted)
    assert len(api_calls(sent)) == 1
    numbers = list(ErpCustomer.objects.values_list("number", flat=True)[:3])
    assert sorted(r.values["number"] for r in erp.find_many("customers", "number", numbers)) == (
        sorted(numbers)
    )


def test_the_crm_answers_dataverse_s_in_function(demo_apps):
    crm = demo_apps.crm()
    CrmAccount.objects.bulk_create(
        CrmAccount(name=f"Account {n}", account_number=f"A{n:03d}") for n in range(3)
    )
    CrmAccount.objects.create(name="O'Brien", account_number="O'1")
    values = '"A000","A002","O\'1","nothing"'
    answer = crm.get(
        "accounts",
        params={
            "$filter": f"Microsoft.Dynamics.CRM.In(PropertyName='accountnumber',"
            f"PropertyValues=[{values}])",
            "$select": "accountnumber",
        },
    )
    assert answer.status_code == 200
    rows = answer.json()["value"]
    assert sorted(row["accountnumber"] for row in rows) == ["A000", "A002", "O'1"]
    assert set(rows[0]) == {"@odata.etag", "accountid", "modifiedon", "accountnumber"}

    by_id = crm.get(
        "accounts",
        params={
            "$filter": "Microsoft.Dynamics.CRM.In(PropertyName='accountid',PropertyValues="
            f'["{rows[0]["accountid"]}"])'
        },
    )
    assert [row["accountid"] for row in by_id.json()["value"]] == [rows[0]["accountid"]]
    for broken, code in (
        ("Microsoft.Dynamics.CRM.In(PropertyName='accountnumber',PropertyValues=[A000])",
         "0x80060888"),
        ("Microsoft.Dynamics.CRM.In(PropertyName='nosuchfield',PropertyValues=[\"A000\"])", "0x0"),
        ("Microsoft.Dynamics.CRM.In(PropertyName='accountid',PropertyValues=[\"not-an-id\"])",
         "0x80060888"),
    ):  # fmt: skip
        refused = crm.get("accounts", params={"$filter": broken})
        assert refused.status_code == 400, broken
        assert refused.json()["error"]["code"] == code


def test_the_crm_connector_looks_records_up_with_the_in_function(demo_apps):
    crm = connector_for(demo_apps.connection, "destination")
    sent = []
    crm.client.event_hooks["request"] = [sent.append]
    CrmAccount.objects.bulk_create(
        CrmAccount(name=f"Account {n}", account_number=f"A{n:04d}") for n in range(300)
    )
    numbers = [f"A{n:04d}" for n in range(300)] + ["missing"]

    found = crm.find_many("accounts", "accountnumber", numbers, select=["name"])

    assert sorted(r.values["accountnumber"] for r in found) == numbers[:300]
    assert all(set(r.values) == {"accountnumber", "name"} for r in found)
    # An "or" group takes about 80 numbers within the length of a request line; In, 190.
    assert len(api_calls(sent)) == 2
    assert all("Microsoft.Dynamics.CRM.In" in r.url.params["$filter"] for r in api_calls(sent))
    ids = [r.id for r in found[:5]]
    assert sorted(crm.get_many("accounts", ids, select=["name"])) == sorted(ids)
