"""The demo CRM's bulk operation messages (CreateMultiple, UpdateMultiple): what it creates
and updates, and the requests it refuses as malformed or not allowed. How a refused request
is answered, and which tables take the messages, is in test_conformance_dataverse_bulk.py."""

import pytest

from demo.models import CrmAccount

pytestmark = pytest.mark.django_db
ACCOUNT = "Microsoft.Dynamics.CRM.account"
NOWHERE = "transactioncurrencies(00000000-0000-4000-8000-000000000009)"


def account(name: str, **values) -> dict:
    return {"@odata.type": ACCOUNT, "name": name, **values}


def post(demo_apps, action: str, targets) -> "httpx.Response":  # noqa: F821
    with demo_apps.crm() as crm:
        return crm.post(f"accounts/Microsoft.Dynamics.CRM.{action}", json={"Targets": targets})


def test_create_multiple_creates_every_target_and_answers_their_ids(demo_apps):
    before = CrmAccount.objects.count()
    answer = post(
        demo_apps,
        "CreateMultiple",
        [account("Alpha", accountnumber="A1"), account("Beta", address1_city="Oslo")],
    )
    assert answer.status_code == 200
    ids = answer.json()["Ids"]
    created = {str(a.pk): a for a in CrmAccount.objects.filter(pk__in=ids)}
    assert [created[i].name for i in ids] == ["Alpha", "Beta"]
    assert created[ids[1]].city == "Oslo"
    assert CrmAccount.objects.count() == before + 2


def test_update_multiple_updates_every_target(demo_apps):
    first = CrmAccount.objects.create(name="First")
    second = CrmAccount.objects.create(name="Second")
    answer = post(
        demo_apps,
        "UpdateMultiple",
        [
            {"@odata.type": ACCOUNT, "accountid": str(first.pk), "address1_city": "Bergen"},
            {"@odata.type": ACCOUNT, "accountid": str(second.pk), "name": "Renamed"},
        ],
    )
    assert answer.status_code == 204
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.city, second.name) == ("Bergen", "Renamed")


@pytest.mark.parametrize(
    "body, words",
    [
        ({"Targets": []}, "non-empty list"),
        ({"Targets": "accounts"}, "non-empty list"),
        ({"Targets": [1, 2]}, "JSON object"),
        ({"Targets": [{"name": "No type"}]}, "@odata.type"),
        ({"Targets": [account("x")] * 1001}, "At most 1000"),
    ],
)
def test_a_malformed_request_is_refused(demo_apps, body, words):
    with demo_apps.crm() as crm:
        answer = crm.post("accounts/Microsoft.Dynamics.CRM.CreateMultiple", json=body)
    assert answer.status_code == 400
    assert words in answer.json()["error"]["message"]


def test_the_privileges_of_create_and_write_apply(demo_apps):
    from demo.models import CrmSystemUser
    from demo.security import role_named
    from demo.seed import INTEGRATION_USER

    user = CrmSystemUser.objects.get(domain_name=INTEGRATION_USER)
    # The Salesperson role may write accounts, not create them.
    user.roles.set([role_named("Salesperson", user.business_unit)])
    connector_side = demo_apps.connection.side_config("destination")
    with demo_apps.client(
        base_url=connector_side.base_url, auth=(INTEGRATION_USER, connector_side.secret)
    ) as crm:
        refused = crm.post(
            "accounts/Microsoft.Dynamics.CRM.CreateMultiple", json={"Targets": [account("x")]}
        )
    assert refused.status_code == 403
    assert "prvCreateAccount" in refused.json()["error"]["message"]
