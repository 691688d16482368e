"""The demo ERP answers as the Business Central API v2.0 documents it: entity tags and the
If-Match they require on updates and deletes, and its API limits.

Microsoft's documentation:
- "Update customers",
  https://learn.microsoft.com/dynamics365/business-central/dev-itpro/api-reference/v2.0/api/dynamics_customer_update,
  and "Delete customers",
  https://learn.microsoft.com/dynamics365/business-central/dev-itpro/api-reference/v2.0/api/dynamics_customer_delete
  (If-Match is required; a record whose tag no longer matches is not changed);
- "Error Codes",
  https://learn.microsoft.com/dynamics365/business-central/dev-itpro/api-reference/v2.0/dynamics-error-codes
  (BadRequest_InvalidToken, "Could not validate the client concurrency token required by the
  service. ..."; Request_EntityChanged, "Another user has already changed the record.");
  the status of Request_EntityChanged is not documented: the demo answers 412 Precondition
  Failed, as the OData protocol requires when If-Match does not match;
- "Working with API limits in Dynamics 365 Business Central",
  https://learn.microsoft.com/dynamics365/business-central/dev-itpro/api-reference/v2.0/dynamics-rate-limits
  (429 Too Many Requests; 504 Gateway Timeout after 10 minutes), and "Operational Limits for
  Business Central Online",
  https://learn.microsoft.com/dynamics365/business-central/dev-itpro/administration/operational-limits-online
  (408 Request Timeout after the operation timeout). The code and words of the 429's body
  (Application_TooManyRequests) are what the service answers; they are not documented.

The fault switch that makes the demo ERP throttle goes beyond the documentation."""

import base64
import re

import pytest
from django.conf import settings

from demo.entities import api_root
from demo.models import DemoFault, ErpCustomer

pytestmark = pytest.mark.django_db
TOKEN_REQUIRED = (
    "Could not validate the client concurrency token required by the service. Please provide a "
    "valid token in the client request."
)


def erp(demo_apps):
    return demo_apps.client(
        base_url=api_root("erp", demo_apps.base_url),
        auth=(settings.DEMO_ERP_USER, settings.DEMO_ERP_PASSWORD),
    )


def customer() -> ErpCustomer:
    return ErpCustomer.objects.order_by("number").first()


def test_every_record_read_carries_its_version(demo_apps):
    record = customer()
    with erp(demo_apps) as client:
        listed = client.get("customers", params={"$select": "number"}).json()["value"]
        one = client.get(f"customers({record.pk})")
    tags = [row["@odata.etag"] for row in listed]
    assert all(re.fullmatch(r'W/"Jz[A-Za-z0-9+/=]+"', tag) for tag in tags)
    assert base64.b64decode(tags[0][3:-1]).startswith(b"'")
    assert one.json()["@odata.etag"] == one.headers["ETag"]


@pytest.mark.parametrize("method", ["PATCH", "DELETE"])
def test_an_update_or_delete_without_if_match_is_refused(demo_apps, method):
    record = customer()
    with erp(demo_apps) as client:
        answer = client.request(
            method,
            f"customers({record.pk})",
            json={"city": "Aarhus"} if method == "PATCH" else None,
        )
    assert answer.status_code == 400
    assert answer.json() == {
        "error": {"code": "BadRequest_InvalidToken", "message": TOKEN_REQUIRED}
    }
    assert ErpCustomer.objects.filter(pk=record.pk, city=record.city).exists()


def test_an_update_with_the_current_version_is_made_and_answers_the_new_one(demo_apps):
    record = customer()
    with erp(demo_apps) as client:
        version = client.get(f"customers({record.pk})").headers["ETag"]
        answer = client.patch(
            f"customers({record.pk})", json={"city": "Aarhus"}, headers={"If-Match": version}
        )
        overwritten = client.patch(
            f"customers({record.pk})", json={"city": "Odense"}, headers={"If-Match": "*"}
        )
    assert answer.status_code == 200
    assert answer.json()["city"] == "Aarhus"
    assert answer.headers["ETag"] != version
    assert overwritten.status_code == 200
    assert ErpCustomer.objects.get(pk=record.pk).city == "Odense"


@pytest.mark.parametrize("method", ["PATCH", "DELETE"])
def test_a_write_with_a_version_that_is_not_the_current_one_changes_nothing(demo_apps, method):
    record = customer()
    with erp(demo_apps) as client:
        version = client.get(f"customers({record.pk})").headers["ETag"]
        record.city = "Changed meanwhile"
        record.save()
        answer = client.request(
            method,
            f"customers({record.pk})",
            json={"city": "Aarhus"} if method == "PATCH" else None,
            headers={"If-Match": version},
        )
    assert answer.status_code == 412
    assert answer.json() == {
        "error": {
            "code": "Request_EntityChanged",
            "message": "Another user has already changed the record.",
        }
    }
    assert ErpCustomer.objects.get(pk=record.pk).city == "Changed meanwhile"


@pytest.mark.parametrize("retry_after", [30, None])
def test_too_many_requests_is_a_429_with_or_without_retry_after(demo_apps, retry_after):
    demo_apps.fault("erp", DemoFault.Mode.THROTTLE, remaining=1, retry_after=retry_after)
    with erp(demo_apps) as client:
        throttled = client.get("customers")
        after = client.get("customers")
    assert throttled.status_code == 429
    assert throttled.headers.get("Retry-After") == (str(retry_after) if retry_after else None)
    assert throttled.json()["error"]["code"] == "Application_TooManyRequests"
    assert after.status_code == 200


@pytest.mark.parametrize(
    ("mode", "status"),
    [(DemoFault.Mode.TIMEOUT, 504), (DemoFault.Mode.REQUEST_TIMEOUT, 408)],
)
def test_a_request_over_its_time_limit_is_a_504_or_a_408(demo_apps, mode, status):
    demo_apps.fault("erp", mode, remaining=1, delay=0)
    with erp(demo_apps) as client:
        assert client.get("customers").status_code == status
        assert client.get("customers").status_code == 200
