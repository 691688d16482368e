"""Coupling by match against the demo apps over HTTP: one match couples, and each way it
can fail says why (no criteria, no match, several matches, already coupled)."""

import pytest

from couplings import services
from couplings.models import Coupling, CouplingRun
from couplings.services import Criterion
from demo.models import CrmAccount, ErpCustomer

pytestmark = pytest.mark.django_db

BY_NUMBER = [Criterion("number", "accountnumber")]
BY_NAME_ANY_CASE = [Criterion("displayName", "name", case_sensitive=False)]


def customer_id(number: str) -> str:
    return str(ErpCustomer.objects.get(number=number).pk)


def match(demo_apps, number: str, criteria, **options) -> dict:
    run = services.couple_by_match(
        demo_apps.mapping("CUSTOMER"), "source", [customer_id(number)], criteria, **options
    )
    assert run.state == CouplingRun.State.DONE, run.message
    return run.results[0]


def test_the_criteria_are_the_mapping_field_pairs(demo_apps):
    pairs = services.criteria_choices(demo_apps.mapping("CUSTOMER"))
    assert pairs[:3] == [
        ("displayName", "name"),
        ("number", "accountnumber"),
        ("email", "emailaddress1"),
    ]


def test_a_single_match_is_coupled(demo_apps):
    # The CRM has an account for C00020 already (the demo's own data).
    account = CrmAccount.objects.get(account_number="C00020")
    result = match(demo_apps, "C00020", BY_NUMBER)
    assert (result["outcome"], result["other_id"]) == ("coupled", str(account.pk))
    assert result["candidates"][0]["matched"] == ["number = accountnumber"]
    coupling = Coupling.objects.get(pk=result["coupling_id"])
    assert coupling.source_record_id == customer_id("C00020")


def test_case_insensitive_matching_finds_what_eq_does_not(demo_apps):
    account = CrmAccount.objects.create(name="ADATUM GMBH", account_number="")
    preview = services.find_match(
        demo_apps.mapping("CUSTOMER"),
        "source",
        customer_id("C00030"),
        [Criterion("displayName", "name")],
    )
    assert preview.outcome == "no_match"
    result = match(demo_apps, "C00030", BY_NAME_ANY_CASE)
    assert (result["outcome"], result["other_id"]) == ("coupled", str(account.pk))
    assert result["candidates"][0]["matched"] == ["displayName = name (any case)"]


def test_a_value_with_quotes_and_the_word_and_is_matched_safely(demo_apps):
    ErpCustomer.objects.filter(number="C00030").update(display_name="O'Brien and Sons")
    account = CrmAccount.objects.create(name="O'Brien and Sons")
    result = match(demo_apps, "C00030", [Criterion("displayName", "name")])
    assert (result["outcome"], result["other_id"]) == ("coupled", str(account.pk))


def test_no_criteria(demo_apps):
    result = match(demo_apps, "C00020", [])
    assert result["outcome"] == "no_criteria"
    assert result["message"] == "No criteria: choose at least one pair of fields to match on."
    assert not Coupling.objects.exists()


def test_no_match(demo_apps):
    result = match(demo_apps, "C00030", BY_NUMBER)
    assert result["outcome"] == "no_match"
    assert result["message"] == (
        "No match: no accounts record in Dynamics 365 Sales matches on number = accountnumber."
    )
    assert not Coupling.objects.exists()


def test_no_match_creates_the_record_in_the_other_app_and_couples_it(demo_apps):
    result = match(demo_apps, "C00030", BY_NUMBER, create_if_no_match=True)
    assert result["outcome"] == "created"
    created = CrmAccount.objects.get(pk=result["other_id"])
    customer = ErpCustomer.objects.get(number="C00030")
    # Written by the mapping's field mappings.
    assert (created.account_number, created.name, created.city) == (
        "C00030",
        customer.display_name,
        customer.city,
    )
    assert Coupling.objects.get(pk=result["coupling_id"]).destination_record_id == str(created.pk)


def test_several_matches_are_listed_and_nothing_is_coupled(demo_apps):
    first = CrmAccount.objects.create(name="Adatum GmbH", account_number="C00030")
    second = CrmAccount.objects.create(name="Adatum", account_number="C00030")
    result = match(demo_apps, "C00030", BY_NUMBER)
    assert result["outcome"] == "several_matches"
    assert {c["id"] for c in result["candidates"]} == {str(first.pk), str(second.pk)}
    assert not Coupling.objects.exists()


def test_priority_decides_before_a_lower_priority_is_tried(demo_apps):
    CrmAccount.objects.create(name="Adatum GmbH", account_number="")
    CrmAccount.objects.create(name="Adatum GmbH", account_number="")
    wanted = CrmAccount.objects.create(name="Adatum (old)", account_number="C00030")
    criteria = [
        Criterion("number", "accountnumber", priority=1),
        Criterion("displayName", "name", priority=2),
    ]
    result = match(demo_apps, "C00030", criteria)
    assert (result["outcome"], result["other_id"]) == ("coupled", str(wanted.pk))


def test_a_match_coupled_to_another_record_is_not_taken(demo_apps, staff_user):
    mapping = demo_apps.mapping("CUSTOMER")
    account = CrmAccount.objects.create(name="Adatum", account_number="C00030")
    services.couple_manually(mapping, customer_id("C00040"), str(account.pk), staff_user)
    result = match(demo_apps, "C00030", BY_NUMBER)
    assert result["outcome"] == "already_coupled"
    assert result["message"] == (
        f"Already coupled: the matching destination record {account.pk} is coupled to the "
        f"source record {customer_id('C00040')}."
    )
    assert result["candidates"][0]["coupled_to"] == customer_id("C00040")
    assert Coupling.objects.count() == 1


def test_a_record_coupled_already_says_to_which(demo_apps):
    first = match(demo_apps, "C00020", BY_NUMBER)
    again = match(demo_apps, "C00020", BY_NUMBER)
    assert again["outcome"] == "already_coupled"
    assert again["message"] == (
        f"The record is already coupled to the destination record {first['other_id']}."
    )


def test_records_can_be_matched_from_the_destination_side(demo_apps):
    account = CrmAccount.objects.get(account_number="C00020")
    preview = services.find_match(
        demo_apps.mapping("CUSTOMER"), "destination", str(account.pk), BY_NUMBER
    )
    assert (preview.outcome, preview.other_id) == ("match", customer_id("C00020"))
    assert not Coupling.objects.exists()  # a preview writes nothing


def test_a_record_deleted_before_its_counterpart_is_created_is_not_found(demo_apps, monkeypatch):
    # Someone deletes the customer in the ERP between the search for its match and the
    # creation of its counterpart: that record is not found, and the run goes on.
    find_match = services.find_match

    def then_deleted(*args, **kwargs):
        result = find_match(*args, **kwargs)
        ErpCustomer.objects.filter(number="C00030").delete()
        return result

    monkeypatch.setattr(services, "find_match", then_deleted)
    result = match(demo_apps, "C00030", BY_NUMBER, create_if_no_match=True)
    assert result["outcome"] == "not_found"
    assert not CrmAccount.objects.filter(account_number="C00030").exists()
    assert not Coupling.objects.exists()
