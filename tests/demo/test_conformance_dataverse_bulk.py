"""The demo CRM behaves as the Dataverse Web API documents it: its bulk operation messages
on standard tables, the tables that do not take them, and how a client learns which do.
Each test names the Microsoft page it follows."""

import uuid

import pytest

from demo.models import CrmAccount, CrmTransactionCurrency

pytestmark = pytest.mark.django_db
ACCOUNT = "Microsoft.Dynamics.CRM.account"
CURRENCY = "Microsoft.Dynamics.CRM.transactioncurrency"
NOWHERE = uuid.UUID(int=9)
UNKNOWN_CURRENCY = {"transactioncurrencyid@odata.bind": f"/transactioncurrencies({NOWHERE})"}


def account(name: str, **values) -> dict:
    return {"@odata.type": ACCOUNT, "name": name, **values}


def post(demo_apps, entity: str, action: str, targets: list[dict]):
    with demo_apps.crm() as crm:
        return crm.post(f"{entity}/Microsoft.Dynamics.CRM.{action}", json={"Targets": targets})


# Use bulk operation messages, "On Error behavior with standard tables" ("Any error that
# occurs in a bulk operation with a standard table causes the entire operation to roll back")
# https://learn.microsoft.com/power-apps/developer/data-platform/bulk-operations
# The per-record details (BulkApiErrorDetails) are for elastic tables only; the demo has none.
def test_a_refused_create_multiple_writes_nothing_and_answers_the_first_error_only(demo_apps):
    before = CrmAccount.objects.count()
    answer = post(
        demo_apps,
        "accounts",
        "CreateMultiple",
        [
            account("Fine"),
            account("Unknown currency", **UNKNOWN_CURRENCY),
            account("Fine too"),
            account("", accountnumber="A2"),
        ],
    )
    assert answer.status_code == 404
    # The error of the second target, as a Create of it alone answers it; nothing else.
    assert answer.json() == {
        "error": {
            "code": "0x80040217",
            "message": f"transactioncurrency With Id = {NOWHERE} Does Not Exist",
        }
    }
    with demo_apps.crm() as crm:
        alone = crm.post("accounts", json={"name": "Unknown currency", **UNKNOWN_CURRENCY})
    assert alone.status_code == 404
    assert alone.json() == answer.json()
    assert CrmAccount.objects.count() == before


# Use bulk operation messages, "On Error behavior with standard tables", and
# "Troubleshooting common errors" ("Contact With Ids = <guid> Do Not Exist": updating records
# that do not exist)
# https://learn.microsoft.com/power-apps/developer/data-platform/bulk-operations
def test_a_refused_update_multiple_writes_nothing_and_names_the_missing_records(demo_apps):
    existing = CrmAccount.objects.create(name="Existing", city="Oslo")
    modified = existing.modified_on
    missing = str(uuid.UUID(int=7))
    answer = post(
        demo_apps,
        "accounts",
        "UpdateMultiple",
        [
            {"@odata.type": ACCOUNT, "accountid": str(existing.pk), "address1_city": "Bergen"},
            {"@odata.type": ACCOUNT, "accountid": missing, "name": "Nobody"},
        ],
    )
    assert answer.status_code == 404
    assert answer.json() == {
        "error": {"code": "0x80040217", "message": f"Account With Ids = {missing} Do Not Exist"}
    }
    existing.refresh_from_db()
    assert (existing.city, existing.modified_on) == ("Oslo", modified)


def test_a_refused_update_multiple_answers_the_first_refused_value(demo_apps):
    first = CrmAccount.objects.create(name="First")
    second = CrmAccount.objects.create(name="Second")
    answer = post(
        demo_apps,
        "accounts",
        "UpdateMultiple",
        [
            {"@odata.type": ACCOUNT, "accountid": str(first.pk), "name": ""},
            {"@odata.type": ACCOUNT, "accountid": str(second.pk), **UNKNOWN_CURRENCY},
        ],
    )
    assert answer.status_code == 400
    assert answer.json()["error"] == {"code": "0x80044331", "message": "A name is required."}
    assert set(CrmAccount.objects.values_list("name", flat=True)) >= {"First", "Second"}


# Use bulk operation messages, "Availability with standard tables" ("You can use the
# CreateMultiple and UpdateMultiple bulk operation messages with custom standard tables and
# many common standard tables, but not all")
# https://learn.microsoft.com/power-apps/developer/data-platform/bulk-operations
# Currency (TransactionCurrency) table/entity reference: its messages are Associate, Create,
# Delete, Disassociate, Retrieve, RetrieveExchangeRate, RetrieveMultiple, SetState, Update
# and Upsert, without CreateMultiple or UpdateMultiple
# https://learn.microsoft.com/power-apps/developer/data-platform/reference/entities/transactioncurrency
# Web service error codes (0x80040800, SdkEntityDoesNotSupportMessage: "The '{0}' method does
# not support entities of type '{1}'")
# https://learn.microsoft.com/power-apps/developer/data-platform/reference/web-service-error-codes
@pytest.mark.parametrize("action", ["CreateMultiple", "UpdateMultiple"])
def test_a_table_without_the_bulk_messages_answers_that_it_does_not_support_them(demo_apps, action):
    before = CrmTransactionCurrency.objects.count()
    target = {
        "@odata.type": CURRENCY,
        "isocurrencycode": "CHF",
        "currencyname": "Swiss franc",
        "exchangerate": 0.95,
    }
    answer = post(demo_apps, "transactioncurrencies", action, [target])
    assert answer.status_code == 400
    assert answer.json() == {
        "error": {
            "code": "0x80040800",
            "message": f"The '{action}' method does not support entities of type "
            "'transactioncurrency'. MessageProcessorCache returned MessageProcessor.Empty.",
        }
    }
    assert CrmTransactionCurrency.objects.count() == before
    # One request a record is how such a table is written.
    with demo_apps.crm() as crm:
        created = crm.post(
            "transactioncurrencies", json={k: v for k, v in target.items() if k[0] != "@"}
        )
    assert created.status_code == 204
    assert CrmTransactionCurrency.objects.count() == before + 1


# Use bulk operation messages, "Availability with standard tables" (the Web API request that
# tests whether a table supports a message: GET sdkmessagefilters with parameter aliases)
# https://learn.microsoft.com/power-apps/developer/data-platform/bulk-operations
@pytest.mark.parametrize(
    "table, message, takes",
    [
        ("account", "CreateMultiple", True),
        ("contact", "UpdateMultiple", True),
        ("transactioncurrency", "CreateMultiple", False),
        ("transactioncurrency", "UpdateMultiple", False),
        ("transactioncurrency", "Create", True),
    ],
)
def test_sdkmessagefilters_says_whether_a_table_takes_a_message(demo_apps, table, message, takes):
    with demo_apps.crm() as crm:
        aliases = crm.get(
            "sdkmessagefilters",
            params={
                "$select": "sdkmessagefilterid",
                "$filter": "sdkmessageid/name eq @message and primaryobjecttypecode eq @table",
                "@message": f"'{message}'",
                "@table": f"'{table}'",
            },
        )
        literals = crm.get(
            "sdkmessagefilters",
            params={
                "$filter": f"sdkmessageid/name eq '{message}' and "
                f"primaryobjecttypecode eq '{table}'"
            },
        )
    assert aliases.status_code == literals.status_code == 200
    body = aliases.json()
    assert body["@odata.context"].endswith("$metadata#sdkmessagefilters(sdkmessagefilterid)")
    assert len(body["value"]) == (1 if takes else 0)
    assert [row["sdkmessagefilterid"] for row in body["value"]] == [
        row["sdkmessagefilterid"] for row in literals.json()["value"]
    ]
    for row in body["value"]:
        assert set(row) == {"@odata.etag", "sdkmessagefilterid"}
        uuid.UUID(row["sdkmessagefilterid"])


def test_sdkmessagefilters_refuses_a_filter_it_does_not_know(demo_apps):
    with demo_apps.crm() as crm:
        answer = crm.get("sdkmessagefilters", params={"$filter": "name eq 'x'"})
        missing_alias = crm.get(
            "sdkmessagefilters", params={"$filter": "sdkmessageid/name eq @message"}
        )
    assert answer.status_code == missing_alias.status_code == 400
    assert "not supported" in answer.json()["error"]["message"]
    assert "@message" in missing_alias.json()["error"]["message"]
