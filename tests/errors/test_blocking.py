"""What blocks what: an entry names the open entry of the record it needed and its problem;
a problem blocked as a whole names the problem it waits for; a root cause counts the records
it blocks, directly and through others, as entries come and change status."""

from datetime import timedelta

import pytest
from django.urls import reverse

from errors.grouping import record_attempts
from errors.models import Category, ErrorGroup, Severity, Status, SyncError, SyncErrorCleanup
from errors.remedies import remedy_for
from errors.services import request_cleanup, set_status
from tests.api.conftest import token_client
from tests.factories import make_error, make_mapping, new_error

pytestmark = pytest.mark.django_db


def blocked_by(entry: SyncError, **fields) -> SyncError:
    """An entry of another mapping that failed for want of `entry`'s record."""
    return make_error(
        category=Category.VALIDATION,
        blocked_by_mapping=entry.mapping,
        blocked_by_side="source",
        blocked_by_entity=entry.source_entity,
        blocked_by_record=entry.source_record_id,
        **fields,
    )


def problem(entry: SyncError) -> ErrorGroup:
    return ErrorGroup.objects.get(pk=entry.group_id)


@pytest.fixture
def chain():
    """A currency missing, two customers blocked by it, a contact blocked by one customer."""
    currencies, customers, contacts = make_mapping(), make_mapping(), make_mapping()
    currency = make_error(mapping=currencies, message="The currency XYZ has no exchange rate.")
    first = blocked_by(currency, mapping=customers, message="Currency XYZ is not synchronized.")
    second = blocked_by(currency, mapping=customers, message="Currency XYZ is not synchronized.")
    contact = blocked_by(first, mapping=contacts, message="Company C1 is not coupled.")
    return currency, first, second, contact


def test_entries_name_the_entry_and_problem_they_are_blocked_by(chain):
    currency, first, _, contact = chain
    assert (first.blocked_by_entry_id, first.blocked_by_group_id) == (
        currency.pk,
        currency.group_id,
    )
    assert (contact.blocked_by_entry_id, contact.blocked_by_group_id) == (first.pk, first.group_id)


def test_a_record_whose_reference_has_no_entry_is_blocked_by_nothing_known():
    entry = make_error(
        blocked_by_mapping=make_mapping(), blocked_by_side="source", blocked_by_record="NOPE"
    )
    assert (entry.blocked_by_entry_id, entry.blocked_by_group_id) == (None, None)
    assert problem(entry).blocked_by_id is None


def test_root_causes_count_what_they_block_directly_and_through_others(chain):
    currency, first, _, contact = chain
    root, customers = problem(currency), problem(first)
    assert (root.blocks_records, root.blocks_directly) == (3, 2)
    assert (customers.blocks_records, customers.blocks_directly) == (1, 1)
    assert problem(contact).blocks_records == 0
    assert (customers.blocked_by_id, problem(contact).blocked_by_id) == (root.pk, customers.pk)
    assert root.severity_level == Severity.ROOT_CAUSE
    assert root.severity_reason == "blocks 3 records (2 directly)"
    assert customers.severity_reason == "blocks 1 record"
    ranked = list(ErrorGroup.objects.order_by("-severity", "-id").values_list("pk", flat=True))
    assert ranked == [root.pk, customers.pk, problem(contact).pk]


def test_figures_follow_the_status_of_the_blocked_entries(chain, staff_user):
    currency, first, second, contact = chain
    set_status(SyncError.objects.filter(pk=contact.pk), Status.RESOLVED, staff_user)
    assert (problem(currency).blocks_records, problem(first).blocks_records) == (2, 0)
    set_status(SyncError.objects.filter(pk=second.pk), Status.IGNORED, staff_user)
    assert (problem(currency).blocks_records, problem(currency).blocks_directly) == (1, 1)
    set_status(SyncError.objects.filter(pk=second.pk), Status.OPEN, staff_user)
    assert problem(currency).blocks_records == 2


def test_a_problem_with_an_entry_not_blocked_is_not_blocked_as_a_whole(chain):
    currency, first, _, _ = chain
    assert problem(first).blocked_by_id == problem(currency).pk
    make_error(
        mapping=first.mapping,
        category=Category.VALIDATION,
        message="Currency XYZ is not synchronized.",
    )
    assert problem(first).blocked_by_id is None


def test_a_loop_of_blocks_stays_finite():
    one, two = make_mapping(), make_mapping()
    a = make_error(mapping=one, message="A fails.")
    b = blocked_by(a, mapping=two, message="B fails.")
    blocked_by(b, mapping=one, message="A fails.")
    assert problem(a).blocks_records >= 1  # counted once, whatever the loop


def test_the_pages_say_it(chain, staff_client):
    currency, first, _, contact = chain
    page = staff_client.get(reverse("errors:detail", args=[contact.pk])).content.decode()
    assert f'href="/errors/{first.pk}/">entry #{first.pk}</a>' in page
    assert f"problem #{problem(currency).pk}" in page
    assert "Currency XYZ is not synchronized." in page
    assert f"Root cause: problem #{problem(currency).pk}" in page
    groups = staff_client.get(reverse("errors:groups")).content.decode()
    assert "blocks 3 records (2 directly)" in groups
    assert f'blocked by <a href="/errors/?group={problem(currency).pk}">' in groups
    own = staff_client.get(reverse("errors:list") + f"?group={first.group_id}").content.decode()
    assert 'id="root-cause"' in own
    assert f"problem #{problem(currency).pk}</a>" in own
    assert "it blocks 1 record." in own


def test_the_api_says_it(chain, staff_user):
    currency, first, _, contact = chain
    api_client = token_client(staff_user)
    entry = api_client.get(f"/api/v1/errors/{contact.pk}/").json()
    assert (entry["blocked_by_entry"], entry["blocked_by_problem"]) == (first.pk, first.group_id)
    assert (entry["blocked_by_record"], entry["blocked_by_side"]) == (
        first.source_record_id,
        "source",
    )
    problems = api_client.get("/api/v1/problems/").json()["results"]
    assert [p["id"] for p in problems][0] == currency.group_id
    assert (problems[0]["severity"], problems[0]["blocks_records"]) == ("root_cause", 3)
    assert problems[0]["blocks_directly"] == 2
    assert {p["id"]: p["blocked_by"] for p in problems}[contact.group_id] == first.group_id


def test_a_clean_up_counts_what_is_left(chain):
    currency, first, _, contact = chain
    blocked_by(first, mapping=contact.mapping, message=contact.message, age=timedelta(days=30))
    assert (problem(currency).blocks_records, problem(first).blocks_records) == (4, 2)
    assert request_cleanup(days=7, trigger=SyncErrorCleanup.Trigger.COMMAND).deleted_count == 1
    assert (problem(currency).blocks_records, problem(first).blocks_records) == (3, 1)


def test_an_attempt_counted_on_an_entry_names_the_entry_its_record_got_since():
    """A customer failed for want of a currency that had no entry of its own; the currency's
    own entry came later (its exchange rate missing): the customer's next attempt, counted on
    its entry, names it, and the currency's problem becomes the root cause."""
    currencies, customers = make_mapping(), make_mapping()

    def attempt() -> SyncError:
        return new_error(
            mapping=customers,
            category=Category.CURRENCY,
            message="Currency NOK does not exist in Dynamics 365 Sales.",
            source_record_id="C00150",
            blocked_by_mapping=currencies,
            blocked_by_side="source",
            blocked_by_entity="currencies",
            blocked_by_record="NOK-ID",
        )

    (customer,) = record_attempts([attempt()])
    assert (customer.blocked_by_entry_id, problem(customer).blocked_by_id) == (None, None)
    currency = make_error(
        mapping=currencies,
        source_entity="currencies",
        source_record_id="NOK-ID",
        message="Currency Exchange Rate does not exist. Currency Code='NOK'",
    )
    record_attempts([attempt()])
    customer.refresh_from_db()
    assert customer.attempts == 2
    assert (customer.blocked_by_entry_id, customer.blocked_by_group_id) == (
        currency.pk,
        currency.group_id,
    )
    assert problem(customer).blocked_by_id == currency.group_id
    assert (problem(currency).blocks_records, problem(currency).severity_level) == (
        1,
        Severity.ROOT_CAUSE,
    )


def test_the_root_cause_s_title_is_a_sentence_of_the_cause_however_the_app_ended_it():
    currency = make_error(
        mapping=make_mapping(), message="Currency Exchange Rate does not exist. Currency Code='NOK'"
    )
    customer = blocked_by(currency, mapping=make_mapping(), message="Currency NOK is missing.")
    cause = remedy_for(customer).cause
    assert f"problem #{currency.group_id}, Currency Exchange Rate does not exist." in cause
    assert "Currency Code='NOK'. This record fails only because" in cause
