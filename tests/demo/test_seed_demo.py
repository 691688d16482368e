"""seed_demo builds the demo apps and fills the console from real sync runs over HTTP."""

from datetime import timedelta
from io import StringIO

import httpx
import pytest
from django.conf import settings
from django.core.management import call_command
from django.db.models import Count, Max, Min, Q, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from audit.models import AuditEvent
from couplings.models import Coupling
from demo.models import (
    CrmAccount,
    CrmContact,
    CrmSdkMessageProcessingStep,
    CrmServiceEndpoint,
    ErpContact,
    ErpContactBusinessRelation,
    ErpCustomer,
    ErpSubscription,
)
from demo.seed import remove_demo
from errors.links import safe_link
from errors.models import Category, ErrorGroup, SyncError
from sync.models import (
    ChangeSubscription,
    Connection,
    LagProbe,
    LagSample,
    MappingHealthSnapshot,
    SyncJob,
    TableMapping,
)

pytestmark = pytest.mark.django_db(transaction=True)


def seed(live_server, *args) -> str:
    out = StringIO()
    call_command("seed_demo", "--base-url", live_server.url, *args, stdout=out)
    return out.getvalue()


def test_the_console_is_filled_from_real_sync_runs_once_and_reset_removes_it(live_server):
    assert "Demo data loaded from real sync runs" in seed(live_server, "--customers", "50")

    connection = Connection.objects.get()
    assert set(TableMapping.objects.values_list("name", flat=True)) == {
        "CURRENCY",
        "CUSTOMER",
        "CONTACT",
        "ITEM-PRODUCT",
    }
    # The customers asked for, and the one the lag probe changes.
    assert ErpCustomer.objects.count() == 51
    assert CrmAccount.objects.count() > 30  # created in the CRM by the first full sync
    # Through the lookups of the default mappings: the accounts have their customers'
    # currencies (the local currency where the customer has none), and the people their
    # companies' accounts: a person's company number is its company contact's, whose business
    # relation names the customer.
    in_lcy = 0
    for account in CrmAccount.objects.exclude(account_number="").select_related(
        "transaction_currency"
    ):
        customer = ErpCustomer.objects.get(number=account.account_number)
        in_lcy += customer.currency_code == ""
        assert account.transaction_currency.iso_currency_code == (
            customer.currency_code or settings.DEMO_ERP_LOCAL_CURRENCY
        )
    assert in_lcy > 5
    # The chain of what waits for the exchange rate of NOK, missing in the ERP: the currency
    # is not in the CRM, nor are the customers in it, nor their people; each has its open
    # entry, tried again by every scheduled run.
    nok = ErpCustomer.objects.filter(currency_code="NOK")
    waiting = ErpContact.objects.filter(
        type=ErpContact.Type.PERSON,
        company_number__in=ErpContactBusinessRelation.objects.filter(customer__in=nok).values(
            "contact__number"
        ),
    )
    assert nok.exists() and waiting.exists()
    assert not CrmAccount.objects.filter(account_number__in=nok.values("number")).exists()
    open_entries = SyncError.objects.filter(status="open")
    assert open_entries.filter(
        mapping__name="CURRENCY", message__startswith="Currency Exchange Rate does not exist"
    ).exists()
    assert set(
        open_entries.filter(
            mapping__name="CUSTOMER", message__startswith="Currency NOK does not exist"
        ).values_list("source_record_id", flat=True)
    ) == {str(pk) for pk in nok.values_list("pk", flat=True)}
    assert set(
        open_entries.filter(
            mapping__name="CONTACT", message__contains="is not coupled under CUSTOMER"
        ).values_list("source_record_id", flat=True)
    ) == {str(pk) for pk in waiting.values_list("pk", flat=True)}
    people = ErpContact.objects.filter(type=ErpContact.Type.PERSON).exclude(pk__in=waiting)
    assert CrmContact.objects.count() == people.count()
    with_company = CrmContact.objects.filter(parent_account__isnull=False).select_related(
        "parent_account"
    )
    assert with_company.count() > people.count() // 2
    for contact in with_company:
        person = people.get(email=contact.email)
        relation = ErpContactBusinessRelation.objects.get(contact__number=person.company_number)
        assert person.company_number != relation.customer.number
        assert contact.parent_account.account_number == relation.customer.number
    assert Coupling.objects.count() > 70
    assert Coupling.objects.filter(is_skipped=True).exists()

    jobs = SyncJob.objects.all()
    assert jobs.count() > 20
    assert not jobs.exclude(status__in=SyncJob.FINISHED).exists()
    assert jobs.filter(status=SyncJob.Status.FAILED).exists()
    assert jobs.filter(skipped__gt=0).exists()
    # The demo connection signs in with OAuth 2.0 client credentials, and a busy hour in the
    # CRM paused jobs that the jobs going on with them finished.
    assert connection.auth_method == Connection.AuthMethod.OAUTH2
    assert jobs.filter(throttled=True, status=SyncJob.Status.INTERRUPTED).exists()
    assert not jobs.filter(throttled=True, failed__gt=0).exists()
    # The jobs' Failed counts add up to the record entries they logged and the attempts
    # counted on them (a failed create tried again by a scheduled run is one more attempt of
    # its entry, which names the job of its latest attempt only).
    records = SyncError.objects.exclude(source_record_id="").exclude(job=None)
    assert sum(job.failed for job in jobs) == records.aggregate(n=Sum("attempts"))["n"]
    for job in jobs.annotate(records=Count("errors", filter=~Q(errors__source_record_id=""))):
        assert job.failed >= job.records, job
    # Each record a job read is counted once, whatever path it took.
    for job in jobs:
        counts = (job.inserted, job.modified, job.deleted, job.unchanged, job.skipped)
        assert sum(counts) + job.failed + job.retrying == job.records_read, job

    errors = SyncError.objects.all()
    # Every kind of failure, except the unrecognized and lag: the demo's lag probe finds its
    # markers in time.
    assert set(errors.values_list("category", flat=True)) >= set(Category.values) - {
        "other",
        "lag",
    }
    for phrase in (
        "is missing prvCreateProduct privilege",
        "password must be changed at next sign-in",
        "System Administrator",
        "is disabled",
        "does not exist in Dynamics 365 Sales",
        "Currency Exchange Rate does not exist",
        "coupled to a deleted record",
        "modified in both Business Central and Dynamics 365 Sales",
        "must not exceed 30 characters",
        "not JSON",
        "429 Too Many Requests",
        "skipped for further synchronization due to a repeatable failure",
    ):
        assert errors.filter(message__contains=phrase).exists(), phrase
    assert not errors.filter(detail__contains=connection.destination_secret).exists()

    # The log spans weeks, so the 7-day clean-up has something to take.
    week_ago = timezone.now() - timedelta(days=7)
    assert errors.filter(created_at__lt=week_ago).exists()
    assert errors.filter(created_at__gte=week_ago).exists()
    assert errors.filter(created_at__lt=timezone.now() - timedelta(days=25)).exists()
    assert not errors.filter(created_at__gt=timezone.now()).exists()

    # The problems agree with their entries.
    for group in ErrorGroup.objects.annotate(
        n=Count("errors"),
        first=Min("errors__created_at"),
        # The latest attempt counted on an entry is when it was last seen.
        last=Max(Coalesce("errors__last_attempt_at", "errors__created_at")),
    ):
        assert (group.count, group.first_seen, group.last_seen) == (
            group.n,
            group.first,
            group.last,
        )
    assert not errors.filter(group__isnull=True).exists()

    # Every link opens its record; a deleted record's link finds it gone.
    with httpx.Client(timeout=10) as client:
        for error in errors.exclude(source_url=""):
            for url in (error.source_url, error.destination_url):
                if not url:
                    continue
                assert safe_link(url) == url
                status = client.get(url).status_code
                gone = error.category == Category.COUPLED_RECORD_DELETED
                assert status == (404 if gone and url == error.destination_url else 200), url

    # The backlog trend has weeks of history. A missing privilege paused CURRENCY and
    # ITEM-PRODUCT until the role was given; the outages paused two mappings for a while.
    snapshots = MappingHealthSnapshot.objects.all()
    assert snapshots.values("day").distinct().count() >= 10
    assert not TableMapping.objects.filter(paused_at__isnull=False).exists()
    assert set(
        TableMapping.objects.filter(resumed_reason="The setup check passed again.").values_list(
            "name", flat=True
        )
    ) == {"CURRENCY", "ITEM-PRODUCT", "CONTACT", "CUSTOMER"}

    # What was resolved and changed meanwhile is dated on its day too: the overview's month
    # shows resolutions on many days, and the sign-in changed to the CRM administrator and
    # back on the day its setup errors came.
    resolved_on = errors.filter(status="resolved").dates("status_changed_at", "day")
    assert len(resolved_on) > 3
    sign_in = AuditEvent.objects.filter(action=AuditEvent.Action.CONNECTION_CHANGED)
    assert [e.details["fields"]["destination_username"]["to"] for e in sign_in] == [
        connection.destination_username,
        "admin@demo-crm.example",
    ]
    admin_day = timezone.localdate(sign_in.last().at)
    assert admin_day < timezone.localdate() - timedelta(days=2)
    assert errors.filter(
        message__contains="System Administrator", created_at__date=admin_day
    ).exists()

    # Changes in either app are announced to the console from now on: the ERP through
    # subscriptions made with its API (the console answered their handshakes), the CRM
    # through the webhook the console registered with its API, keyed with the connection's
    # secret, and its steps on Create, Update and Delete of each mapped table.
    subscribed = ChangeSubscription.objects.filter(status=ChangeSubscription.Status.ACTIVE)
    assert set(subscribed.filter(side="source").values_list("entity", flat=True)) == {
        "currencies", "customers", "items",
    }  # fmt: skip
    assert set(subscribed.filter(side="destination").values_list("entity", flat=True)) == {
        "transactioncurrencies", "accounts", "contacts", "products",
    }  # fmt: skip
    assert ErpSubscription.objects.count() == 3
    (webhook,) = CrmServiceEndpoint.objects.all()
    assert (webhook.contract, webhook.auth_type) == (8, 4)
    assert webhook.auth_value == Connection.objects.get().notification_token()
    assert CrmSdkMessageProcessingStep.objects.filter(service_endpoint=webhook).count() == 12

    # The lag probe of CUSTOMER changes its own customer, whose marker has arrived in the
    # CRM already: the demo shows a lag at once.
    probe = LagProbe.objects.get(mapping__name="CUSTOMER")
    lag_customer = ErpCustomer.objects.get(number="LAG-PROBE")
    assert probe.record_id == str(lag_customer.pk) and probe.marker_field == "displayName"
    assert (probe.interval_minutes, probe.limit_seconds) == (1, 300)
    sample = probe.samples.get()
    assert sample.state == LagSample.State.ARRIVED and sample.lag_seconds is not None
    assert CrmAccount.objects.get(account_number="LAG-PROBE").name == sample.marker
    assert lag_customer.display_name == sample.marker

    # Seeding again finds the demo there and changes nothing; --reset removes what it made.
    assert "already there" in seed(live_server)
    assert ErpCustomer.objects.count() == 51
    remove_demo()  # what --reset does before seeding again
    assert not Connection.objects.exists()
    assert not (SyncError.objects.exists() or SyncJob.objects.exists() or Coupling.objects.exists())
    assert not (ErpCustomer.objects.exists() or CrmAccount.objects.exists())
    assert not (CrmServiceEndpoint.objects.exists() or ErpSubscription.objects.exists())
