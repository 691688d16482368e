"""Each entry says in plain words why it happened and how to fix it, with links to the place."""

from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from demo.models import CrmSystemUser, ErpCurrencyExchangeRate
from demo.security import role_named
from demo.seed import INTEGRATION_USER
from errors.models import Category, SyncError
from errors.remedies import remedy_for
from sync.models import SyncJob
from tests.demo_apps import without_nok_in_the_crm
from tests.factories import make_error, make_mapping

CRM, ERP = "Dynamics 365 Sales", "Business Central"


@pytest.mark.parametrize(
    "category, message, words",
    [
        (
            Category.AUTHENTICATION,
            "The user's password must be changed at next sign-in before it can be used.",
            "require a change at the next sign-in",
        ),
        (
            Category.AUTHENTICATION,
            "The user name or password is incorrect.",
            "refused the integration user's credentials",
        ),
        (
            Category.INTEGRATION_USER,
            "Dynamics 365 Sales: The integration user holds the System Administrator role.",
            "An administrator account is set as the integration user",
        ),
        (
            Category.INTEGRATION_USER,
            "The user integration@demo-crm.example is disabled.",
            "The integration user is disabled in Dynamics 365 Sales",
        ),
        (
            Category.CURRENCY,
            "Currency SEK does not exist in Dynamics 365 Sales (transactioncurrencies): add it, "
            "or change the record's currencyCode.",
            "Dynamics 365 Sales has no currency SEK",
        ),
        (
            Category.AUTHENTICATION,
            "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the "
            "request is the client secret value, not the client secret ID, for a secret added "
            "to app 'integration@demo-crm.example'.",
            "Microsoft Entra ID refused to sign the integration in to Dynamics 365 Sales",
        ),
        (Category.OTHER, "The job stopped: KeyError", "does not recognize"),
    ],
)
@pytest.mark.django_db
def test_setup_errors_name_their_cause_and_send_an_administrator_to_the_connection(
    category, message, words
):
    mapping = make_mapping()
    error = make_error(category=category, message=message, mapping=mapping, source_app=CRM)
    remedy = remedy_for(error)
    assert words in remedy.cause
    assert remedy.who == "for an administrator"
    assert remedy.steps
    assert ("Connection " + mapping.connection.name) in [label for label, _ in remedy.links] or (
        category == Category.CURRENCY
    )


@pytest.mark.parametrize(
    ("message", "step"),
    [
        ("AADSTS7000215: Invalid client secret provided.", "client secret's value (not its ID)"),
        ("AADSTS700016: Application with identifier 'x' was not found", "Check the client ID"),
        ("AADSTS90002: Tenant 'x' not found.", "Check the tenant"),
    ],
)
@pytest.mark.django_db
def test_a_refused_entra_sign_in_says_what_to_check(message, step):
    remedy = remedy_for(make_error(category=Category.AUTHENTICATION, message=message))
    assert remedy.cause.startswith("Microsoft Entra ID refused to sign the integration in")
    assert step in remedy.steps[0]


@pytest.mark.django_db
def test_a_record_changed_between_the_read_and_the_write_is_said_so():
    error = make_error(
        category=Category.CONFLICT,
        message="The accounts record 2 was not updated: it changed in Dynamics 365 Sales after "
        "it was read (The version of the existing record doesn't match the RowVersion property "
        "provided). Nothing was overwritten; the next synchronization compares both versions "
        "again.",
        source_app=ERP,
        destination_app=CRM,
    )
    remedy = remedy_for(error)
    assert remedy.cause.startswith("The record changed in Dynamics 365 Sales after the job read it")
    assert remedy.who == "for a Sync user"


@pytest.mark.django_db
def test_a_missing_exchange_rate_names_the_currency_and_the_app_that_lacks_it():
    error = make_error(
        category=Category.CURRENCY,
        message="Currency Exchange Rate does not exist. Identification fields and values: "
        "Currency Code='NOK'",
        source_app=CRM,
        source_record_id="a1",
        destination_app=ERP,
        destination_record_id="b2",
    )
    remedy = remedy_for(error)
    assert remedy.cause.startswith("Business Central has no exchange rate for NOK.")
    assert (
        remedy.steps[0] == "Open the currency NOK in Business Central and enter its exchange rate."
    )


@pytest.mark.django_db
def test_a_missing_exchange_rate_links_the_currency_where_the_rate_is_entered(
    demo_apps, staff_client
):
    # The ERP has no rate for NOK, so CURRENCY cannot create it in the CRM; the customers in
    # NOK cannot be created there either, for the CRM lacks NOK.
    without_nok_in_the_crm()
    user = CrmSystemUser.objects.get(domain_name=INTEGRATION_USER)
    user.roles.add(role_named("Integration Administrator", user.business_unit))
    demo_apps.run("CURRENCY", SyncJob.Kind.FULL)
    demo_apps.run("CUSTOMER", SyncJob.Kind.FULL)
    rate_entry = SyncError.objects.get(mapping__name="CURRENCY")
    assert rate_entry.message.startswith("Currency Exchange Rate does not exist")
    nok_entry = SyncError.objects.filter(message__startswith="Currency NOK does not exist")[0]

    rate_links = dict(remedy_for(rate_entry).links)
    nok_links = dict(remedy_for(nok_entry).links)
    assert remedy_for(rate_entry).cause.startswith("Business Central has no exchange rate for NOK.")

    # The ERP's own NOK page, where the rate is entered (no health check has run: it is
    # looked up in the ERP).
    nok_page = rate_links["Currency NOK in Business Central"]
    answer = demo_apps.get(nok_page)
    assert answer.status_code == 200 and "NOK" in answer.text and "exchange rate" in answer.text
    # The CRM lacks NOK: the customer's entry opens NOK as the ERP has it, and says so.
    assert nok_links["Currency NOK in Business Central"] == nok_page
    # The entry page shows it, with the setup health page where Check now is.
    page = staff_client.get(rate_entry.get_absolute_url()).content.decode()
    assert f'href="{nok_page}"' in page and "Currency NOK in Business Central" in page
    health = reverse("sync:connection_health", args=[demo_apps.connection.pk])
    assert f'href="{health}"' in page

    # Nothing to retry yet: the rate is still missing.
    assert remedy_for(rate_entry).next_step is None and 'id="next-step"' not in page

    # Once the rate is entered in the ERP, the entry offers to retry its problem's entries,
    # through the bulk action's confirmation with the exact count.
    ErpCurrencyExchangeRate.objects.create(
        currency_code="NOK",
        starting_date=timezone.localdate(),
        exchange_rate_amount=Decimal("11.6"),
        relational_exchange_rate_amount=Decimal("1"),
    )
    step = remedy_for(rate_entry).next_step
    assert step is not None
    assert step.said == "Business Central has an exchange rate for NOK now."
    assert step.label == "Retry the open entry of this problem"
    page = staff_client.get(rate_entry.get_absolute_url()).content.decode()
    assert 'id="next-step"' in page and "Retry the open entry of this problem" in page
    confirm = staff_client.post(
        reverse("errors:bulk"),
        {"action": step.action, "scope": "filter", "filter_query": step.filter_query},
    )
    assert confirm.status_code == 200
    assert '<strong id="bulk-count">1</strong> entry' in confirm.content.decode()


@pytest.mark.parametrize(
    "category, words, step",
    [
        (Category.COUPLED_RECORD_DELETED, "deleted in Dynamics 365 Sales", "Restore it"),
        (
            Category.CONFLICT,
            "changed in both Business Central and Dynamics 365 Sales",
            "update-conflict rule",
        ),
        (
            Category.VALIDATION,
            "Dynamics 365 Sales refused a value it was sent: Bad value.",
            "field mapping",
        ),
    ],
)
@pytest.mark.django_db
def test_coupled_record_errors_are_for_users_and_link_both_records(category, words, step):
    error = make_error(
        category=category,
        message="Bad value.",
        source_app=ERP,
        destination_app=CRM,
        source_record_id="1",
        source_url="https://erp.example.com/customers/1",
        destination_record_id="2",
        destination_url="javascript:alert(1)",
    )
    remedy = remedy_for(error)
    assert words in remedy.cause
    assert remedy.who == "for a Sync user"
    assert any(step in s for s in remedy.steps)
    urls = [url for _, url in remedy.links]
    assert "https://erp.example.com/customers/1" in urls
    assert not any(url.startswith("javascript") for url in urls)


@pytest.mark.django_db
def test_a_missing_privilege_links_the_integration_user_in_the_app(demo_apps, staff_client):
    job = demo_apps.run("ITEM-PRODUCT", SyncJob.Kind.FULL)
    error = SyncError.objects.get(job=job)
    page = staff_client.get(error.get_absolute_url()).content.decode()
    assert "Cause and fix" in page
    assert "do not grant prvCreateProduct on product" in page
    assert "for an administrator" in page
    user_link = next(url for label, url in remedy_for(error).links if "integration user" in label)
    assert f'href="{user_link}"' in page
    user_page = demo_apps.get(user_link, timeout=10)
    assert user_page.status_code == 200 and "Integration User" in user_page.text
    connection = reverse("admin:sync_connection_change", args=[demo_apps.connection.pk])
    assert f'href="{connection}"' in page


@pytest.mark.parametrize(
    "message, words, later",
    [
        (
            "429 Too Many Requests: Number of requests exceeded the limit",
            "throttled",
            "runs the schedule less often",
        ),
        ("Could not connect to Dynamics 365 Sales.", "could not be reached", "network"),
        ("The request to Dynamics 365 Sales timed out.", "did not answer in time", "timeout"),
        ("Dynamics 365 Sales answered with something that is not JSON.", "not its API", "root"),
    ],
)
@pytest.mark.django_db
def test_an_app_that_could_not_be_used_needs_nobody_at_once(message, words, later):
    mapping = make_mapping()
    error = make_error(
        category=Category.CONNECTION, message=message, mapping=mapping, source_app=CRM
    )
    remedy = remedy_for(error)
    assert words in remedy.cause
    assert remedy.who == "nobody needs to act at once"
    assert remedy.steps[0].startswith("Nothing to do at once: it closes by itself")
    assert remedy.steps[1].startswith("If it") and later in remedy.steps[1]
    assert ("Connection " + mapping.connection.name) in [label for label, _ in remedy.links]


@pytest.mark.django_db
def test_every_category_says_who_acts_the_same_way_on_every_page(staff_client):
    from errors.models import audience_of

    for category in Category:
        error = make_error(category=category, message=f"A {category} failure.")
        audience = audience_of(category)
        assert remedy_for(error).who == audience.who, category
        page = staff_client.get(error.get_absolute_url()).content.decode()
        assert f'<p class="muted" id="audience">{audience.sentence}</p>' in page, category
        assert f'Cause and fix <span class="muted small">· {audience.who}</span>' in page
        problems = staff_client.get(reverse("errors:groups"), {"category": category})
        assert f'<span class="muted small">{audience.label}</span>' in problems.content.decode()
    # What each says of the others' people: a setup error needs an administrator now, a
    # connection error nobody at once, a coupled-record error a Sync user.
    assert "needs an administrator" in audience_of(Category.PERMISSION).sentence
    assert "Nobody needs to act at once" in audience_of(Category.CONNECTION).sentence
    assert "closes by itself" in audience_of(Category.CONNECTION).sentence
    assert "a Sync user can fix it" in audience_of(Category.CONFLICT).sentence
    assert audience_of(Category.OTHER).label.startswith("not recognized")
