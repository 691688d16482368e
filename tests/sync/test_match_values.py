"""Records are looked up by values that hold an apostrophe, a double quote and a letter outside
ASCII, in both apps: in the CRM with Dataverse's In function (a JSON array of strings), in the
ERP with "(f eq 'a' or ...)" groups (OData literals, apostrophes doubled)."""

import pytest

from couplings.models import Coupling
from demo.models import CrmAccount, CrmTransactionCurrency, ErpCustomer
from sync.connectors import connector_for
from sync.models import SyncJob

pytestmark = pytest.mark.django_db
ODD = 'O\'BRIEN "Æ" 1'


def test_the_crm_connector_finds_a_record_by_such_a_value_with_the_in_function(demo_apps):
    account = CrmAccount.objects.create(name="O'Brien Cycles", account_number=ODD)
    crm = connector_for(demo_apps.connection, "destination")
    sent = []
    crm.client.event_hooks["request"] = [sent.append]

    (found,) = crm.find_many("accounts", "accountnumber", [ODD, "C00010"], select=["name"])

    assert (found.id, found.values["accountnumber"]) == (str(account.pk), ODD)
    (request,) = [r for r in sent if "/oauth2/" not in r.url.path]  # the sign-in left out
    assert request.url.params["$filter"] == (
        "Microsoft.Dynamics.CRM.In(PropertyName='accountnumber',"
        'PropertyValues=["O\'BRIEN \\"Æ\\" 1","C00010"])'
    )


def test_a_full_synchronization_couples_records_matched_by_such_a_value(demo_apps):
    customer = ErpCustomer.objects.create(
        number=ODD, display_name="O'Brien Cycles", email="shop@obrien.example", currency_code="EUR"
    )
    account = CrmAccount.objects.create(
        name="O'Brien Cycles",
        account_number=ODD,
        transaction_currency=CrmTransactionCurrency.objects.get(iso_currency_code="EUR"),
    )
    # And one only the CRM has, which the ERP's "or" group must find by its number too.
    prospect = CrmAccount.objects.create(name="Ærø Cykler", account_number="ÆRØ 'B' \"2\"")

    job = demo_apps.run("CUSTOMER", SyncJob.Kind.FULL)

    assert job.status == SyncJob.Status.SUCCEEDED, job.message
    coupling = Coupling.objects.get(mapping__name="CUSTOMER", source_record_id=str(customer.pk))
    assert coupling.destination_record_id == str(account.pk)  # coupled, not created again
    assert CrmAccount.objects.filter(account_number=ODD).count() == 1
    created = ErpCustomer.objects.get(number=prospect.account_number)
    assert Coupling.objects.filter(
        source_record_id=str(created.pk), destination_record_id=str(prospect.pk)
    ).exists()
    assert ErpCustomer.objects.filter(number=prospect.account_number).count() == 1
