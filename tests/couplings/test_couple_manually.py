"""Couple by hand: both records are read from the apps over HTTP first, and a record that
is coupled already is refused with the record it is coupled to."""

import uuid

import pytest

from couplings import services
from couplings.models import Coupling
from demo.models import CrmAccount, ErpCustomer

pytestmark = pytest.mark.django_db


def records(number: str = "C00030") -> tuple[str, str]:
    customer = ErpCustomer.objects.get(number=number)
    account = CrmAccount.objects.create(name="Somebody else's name", account_number="X-1")
    return str(customer.pk), str(account.pk)


def test_two_existing_records_are_coupled(demo_apps, staff_user):
    customer_id, account_id = records()
    coupling, job = services.couple_manually(
        demo_apps.mapping("CUSTOMER"), customer_id, account_id, staff_user
    )
    assert job is None
    assert (coupling.source_record_id, coupling.destination_record_id) == (customer_id, account_id)
    assert Coupling.objects.filter(mapping__name="CUSTOMER").count() == 1


def test_a_record_missing_in_its_app_is_refused(demo_apps, staff_user):
    customer_id, _ = records()
    missing = str(uuid.uuid4())
    with pytest.raises(services.CouplingRefused) as refused:
        services.couple_manually(demo_apps.mapping("CUSTOMER"), customer_id, missing, staff_user)
    assert str(refused.value) == f"There is no accounts record {missing} in Dynamics 365 Sales."
    assert not Coupling.objects.exists()


def test_a_record_coupled_already_is_refused_naming_its_coupling(demo_apps, staff_user):
    mapping = demo_apps.mapping("CUSTOMER")
    customer_id, account_id = records()
    services.couple_manually(mapping, customer_id, account_id, staff_user)
    other_customer = str(ErpCustomer.objects.get(number="C00040").pk)
    with pytest.raises(services.CouplingRefused) as refused:
        services.couple_manually(mapping, other_customer, account_id, staff_user)
    assert str(refused.value) == (
        f"The destination record {account_id} is already coupled to the source record "
        f"{customer_id} under CUSTOMER."
    )
    assert Coupling.objects.count() == 1
