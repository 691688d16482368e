"""The demo CRM answers as the Dataverse Web API documents it: optimistic concurrency with
entity tags, and its service protection limits.

Microsoft's documentation:
- "Perform conditional operations using the Web API",
  https://learn.microsoft.com/power-apps/developer/data-platform/webapi/perform-conditional-operations-using-web-api
  (a weak @odata.etag on every record; If-Match on PATCH and DELETE; 412 Precondition Failed
  with "The version of the existing record doesn't match the RowVersion property provided.";
  If-Match: * prevents the create of an upsert, 404 for a missing record);
- "Service protection API limits",
  https://learn.microsoft.com/power-apps/developer/data-platform/api-limits (429 Too Many
  Requests, a Retry-After in seconds, and the codes 0x80072322, 0x80072321 and 0x80072326
  with their messages).

The fault switch that makes the demo CRM throttle goes beyond the documentation: it is the
demo's way of producing the limit on demand."""

import re
import uuid

import pytest

from demo.models import CrmAccount, DemoFault

pytestmark = pytest.mark.django_db
WEAK_VERSION = re.compile(r'W/"\d+"')
CHANGED = "The version of the existing record doesn't match the RowVersion property provided."


def account(demo_apps) -> CrmAccount:
    return CrmAccount.objects.get()


def test_every_record_read_carries_its_version(demo_apps):
    record = account(demo_apps)
    with demo_apps.crm() as crm:
        listed = crm.get("accounts", params={"$select": "name"}).json()["value"]
        one = crm.get(f"accounts({record.pk})")
    assert all(WEAK_VERSION.fullmatch(row["@odata.etag"]) for row in listed)
    assert one.json()["@odata.etag"] == one.headers["ETag"] == listed[0]["@odata.etag"]


def test_an_update_with_the_current_version_is_made_and_moves_the_version_on(demo_apps):
    record = account(demo_apps)
    with demo_apps.crm() as crm:
        version = crm.get(f"accounts({record.pk})").headers["ETag"]
        answer = crm.patch(
            f"accounts({record.pk})",
            json={"address1_city": "Bergen"},
            headers={"If-Match": version, "Prefer": "return=representation"},
        )
    assert answer.status_code == 200
    assert answer.json()["address1_city"] == "Bergen"
    assert answer.headers["ETag"] != version
    assert answer.json()["@odata.etag"] == answer.headers["ETag"]


@pytest.mark.parametrize("method", ["PATCH", "DELETE"])
def test_a_write_with_a_version_that_is_not_the_current_one_is_refused_with_412(demo_apps, method):
    record = account(demo_apps)
    with demo_apps.crm() as crm:
        version = crm.get(f"accounts({record.pk})").headers["ETag"]
        record.city = "Changed meanwhile"
        record.save()
        answer = crm.request(
            method,
            f"accounts({record.pk})",
            json={"address1_city": "Bergen"} if method == "PATCH" else None,
            headers={"If-Match": version},
        )
    assert answer.status_code == 412
    assert answer.json() == {"error": {"code": "", "message": CHANGED}}
    record.refresh_from_db()
    assert record.city == "Changed meanwhile"


def test_if_match_any_updates_only_an_existing_record(demo_apps):
    missing = uuid.uuid4()
    with demo_apps.crm() as crm:
        refused = crm.patch(f"accounts({missing})", json={"name": "x"}, headers={"If-Match": "*"})
        upserted = crm.patch(f"accounts({missing})", json={"name": "Upserted"})
    assert refused.status_code == 404
    assert "Does Not Exist" in refused.json()["error"]["message"]
    # Without If-Match, PATCH is an upsert.
    assert upserted.status_code == 204
    assert CrmAccount.objects.get(pk=missing).name == "Upserted"


@pytest.mark.parametrize(
    ("mode", "code", "message"),
    [
        (
            DemoFault.Mode.THROTTLE,
            "0x80072322",
            "Number of requests exceeded the limit of 6000 over time window of 300 seconds.",
        ),
        (
            DemoFault.Mode.THROTTLE_EXECUTION_TIME,
            "0x80072321",
            "Combined execution time of incoming requests exceeded limit of 1,200,000 "
            "milliseconds over time window of 300 seconds. Decrease number of concurrent "
            "requests or reduce the duration of requests and try again later.",
        ),
        (
            DemoFault.Mode.THROTTLE_CONCURRENCY,
            "0x80072326",
            "Number of concurrent requests exceeded the limit of 52.",
        ),
    ],
)
def test_a_service_protection_limit_is_a_429_with_its_code_and_retry_after(
    demo_apps, mode, code, message
):
    demo_apps.fault("crm", mode, remaining=1, retry_after=37)
    with demo_apps.crm() as crm:
        throttled = crm.get("accounts")
        after = crm.get("accounts")
    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "37"
    assert throttled.json() == {"error": {"code": code, "message": message}}
    assert after.status_code == 200
