"""The sync engine against the demo ERP and CRM over real HTTP: what each job does to the
records, the couplings and the job's counts, and the entries it logs."""

from datetime import timedelta

import pytest

from couplings.models import Coupling
from demo.models import CrmAccount, CrmProduct, ErpCustomer, ErpItem
from errors.grouping import record_errors
from errors.models import Category, SyncError
from sync import engine
from sync.models import SyncJob, TableMapping

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("uncoupled_not_retried")]
FULL = SyncJob.Kind.FULL
Rule = TableMapping.UpdateConflictResolution
Deletion = TableMapping.DeletionConflictResolution


def customer(number: str) -> ErpCustomer:
    return ErpCustomer.objects.get(number=number)


def account_of(erp_customer: ErpCustomer) -> CrmAccount:
    coupling = Coupling.objects.get(source_record_id=str(erp_customer.pk))
    return CrmAccount.objects.get(pk=coupling.destination_record_id)


def edit(record, **changes) -> None:
    for name, value in changes.items():
        setattr(record, name, value)
    record.save()


def counts(job: SyncJob) -> dict:
    return {
        name: getattr(job, name)
        for name in ("inserted", "modified", "deleted", "unchanged", "skipped", "failed")
    }


def test_full_sync_creates_couples_by_match_and_logs_what_fails(demo_apps):
    pre_existing = CrmAccount.objects.get()  # the seed puts one customer in the CRM already
    job = demo_apps.run("CUSTOMER", FULL)

    assert job.status == SyncJob.Status.SUCCEEDED
    # 12 customers: one coupled to its existing account, one in SEK (missing in the CRM),
    # ten created; then the 11 accounts read back are already in step.
    assert counts(job) == {
        "inserted": 10,
        "modified": 0,
        "deleted": 0,
        "unchanged": 12,
        "skipped": 0,
        "failed": 1,
    }
    assert job.records_read == 12 + 11
    assert CrmAccount.objects.count() == 11
    assert Coupling.objects.filter(mapping__name="CUSTOMER").count() == 11
    assert account_of(customer(pre_existing.account_number)) == pre_existing
    created, source = account_of(customer("C00030")), customer("C00030")
    assert (created.name, created.city, created.telephone) == (
        source.display_name,
        source.city,
        source.phone_number,
    )

    error = SyncError.objects.get(job=job)
    sek = customer("C00010")
    assert error.category == Category.CURRENCY
    assert error.message == (
        "Currency SEK does not exist in Dynamics 365 Sales (transactioncurrencies): add it, or "
        "synchronize CURRENCY first."
    )
    assert (error.source_app, error.source_entity) == ("Business Central", "customers")
    assert error.source_record_id == str(sek.pk)
    assert error.source_url == f"{demo_apps.base_url}/demo/erp/customers/{sek.pk}/"
    assert demo_apps.opens(error.source_url)
    assert error.destination_url == ""  # nothing was created on the other side
    # Looked up before anything was sent.
    assert "transactioncurrencies whose isocurrencycode is 'SEK'" in error.detail


def test_a_second_run_and_a_run_after_a_crash_write_nothing_twice(demo_apps):
    demo_apps.run("CUSTOMER", FULL)
    # A worker died after creating this account and before coupling it.
    orphan = customer("C00040")
    Coupling.objects.filter(source_record_id=str(orphan.pk)).delete()
    again = demo_apps.run("CUSTOMER", FULL)

    assert again.inserted == 0 and again.failed == 1
    assert CrmAccount.objects.count() == 11
    assert CrmAccount.objects.filter(account_number="C00040").count() == 1
    assert Coupling.objects.filter(source_record_id=str(orphan.pk)).count() == 1


def test_modified_records_travel_both_ways(demo_apps):
    demo_apps.run("CUSTOMER", FULL)
    in_erp = customer("C00030")
    edit(in_erp, city="Aalborg")
    in_crm = account_of(customer("C00050"))
    demo_apps.crm().patch(f"accounts({in_crm.pk})", json={"telephone1": "+45 1111 2222"})

    job = demo_apps.run("CUSTOMER")

    assert (job.modified, job.failed, job.inserted) == (2, 0, 0)
    assert account_of(in_erp).city == "Aalborg"
    assert customer("C00050").phone_number == "+45 1111 2222"
    coupling = Coupling.objects.get(source_record_id=str(in_erp.pk))
    assert coupling.last_result_to_destination == Coupling.Result.SUCCESS
    assert coupling.last_job_to_destination == job


@pytest.fixture
def no_overlap(monkeypatch):
    """Runs read strictly after the watermark (no re-reading of the last seconds), so a test
    sees what a run a while after the previous one does."""
    monkeypatch.setattr(engine, "WATERMARK_OVERLAP", timedelta(0))


def test_a_modified_run_reads_only_what_changed_since_the_last_one(demo_apps, no_overlap):
    demo_apps.run("CUSTOMER", FULL)
    mapping = demo_apps.mapping("CUSTOMER")
    assert mapping.source_synced_until is not None
    edit(customer("C00060"), city="Odense")
    job = demo_apps.run("CUSTOMER")
    assert job.records_read == 1 + 1  # the ERP change, then the account it wrote
    assert job.modified == 1
    assert demo_apps.run("CUSTOMER").records_read == 0


def test_a_failed_record_is_tried_again_at_each_run_until_it_is_fixed(demo_apps, no_overlap):
    demo_apps.run("CUSTOMER", FULL)
    account = account_of(customer("C00030"))
    edit(account, telephone="+45 3333 4444 ext. 5555 (reception)")
    assert demo_apps.run("CUSTOMER").failed == 1
    # Nobody touched it since: the next run tries it again all the same.
    account.telephone = "+45 3333 4444"
    CrmAccount.objects.filter(pk=account.pk).update(telephone=account.telephone)
    fixed = demo_apps.run("CUSTOMER")
    assert (fixed.records_read, fixed.modified, fixed.failed) == (1, 1, 0)
    assert customer("C00030").phone_number == "+45 3333 4444"
    coupling = Coupling.objects.get(destination_record_id=str(account.pk))
    assert coupling.last_result_from_destination == Coupling.Result.SUCCESS
    # Not tried again: only the ERP customer it wrote is read back, and is in step.
    after = demo_apps.run("CUSTOMER")
    assert (after.records_read, after.unchanged, after.failed) == (1, 1, 0)


def test_the_same_failure_in_two_runs_skips_the_record_even_unchanged(demo_apps, no_overlap):
    demo_apps.run("CUSTOMER", FULL)
    account = account_of(customer("C00030"))
    edit(account, telephone="+45 3333 4444 ext. 5555 (reception)")
    runs = [demo_apps.run("CUSTOMER") for _ in range(3)]
    assert [(r.failed, r.skipped) for r in runs] == [(1, 0), (1, 0), (0, 0)]
    assert Coupling.objects.get(destination_record_id=str(account.pk)).is_skipped


def test_only_coupled_records_unless_the_mapping_says_otherwise(demo_apps):
    demo_apps.run("CUSTOMER", FULL)
    ErpCustomer.objects.create(number="C90000", display_name="Newcomer ApS", currency_code="EUR")
    assert demo_apps.run("CUSTOMER").inserted == 0
    assert not CrmAccount.objects.filter(account_number="C90000").exists()

    TableMapping.objects.filter(name="CUSTOMER").update(sync_only_coupled_records=False)
    assert demo_apps.run("CUSTOMER").inserted == 1
    assert CrmAccount.objects.filter(account_number="C90000", name="Newcomer ApS").exists()


def test_the_mapping_filter_narrows_what_is_read(demo_apps):
    TableMapping.objects.filter(name="CUSTOMER").update(source_filter="city eq 'Oslo'")
    job = demo_apps.run("CUSTOMER", FULL)
    # Two customers live in Oslo; one of them is in the CRM already.
    assert ErpCustomer.objects.filter(city="Oslo").count() == 2
    assert job.inserted == 1
    assert list(CrmAccount.objects.values_list("city", flat=True)) == ["Oslo", "Oslo"]


def test_a_field_cleared_on_failure_lets_the_record_through(demo_apps):
    demo_apps.run("CUSTOMER", FULL)
    mapping = demo_apps.mapping("CUSTOMER")
    for spec in mapping.field_mappings:
        if spec["source"] == "phoneNumber":
            spec["clear_on_failure"] = True
    mapping.save()
    account = account_of(customer("C00030"))
    edit(account, telephone="+45 3333 4444 ext. 5555 (reception)", city="Vejle")

    job = demo_apps.run("CUSTOMER")

    assert (job.modified, job.failed) == (1, 0)
    assert (customer("C00030").city, customer("C00030").phone_number) == ("Vejle", "")


def test_a_validation_failure_twice_in_a_row_skips_the_record(demo_apps):
    demo_apps.run("CUSTOMER", FULL)
    erp_customer = customer("C00030")
    account = account_of(erp_customer)
    edit(account, telephone="+45 3333 4444 ext. 5555 (reception)")

    first = demo_apps.run("CUSTOMER")
    second = demo_apps.run("CUSTOMER")
    third = demo_apps.run("CUSTOMER")

    assert (first.failed, second.failed, third.failed) == (1, 1, 0)
    # Read again within the watermark's overlap: both records of the skipped coupling, and
    # the customer in SEK, which was never created and so is not coupled.
    assert third.skipped == 2 + 1
    assert "1 record is not coupled and was skipped" in third.message
    coupling = Coupling.objects.get(source_record_id=str(erp_customer.pk))
    assert coupling.is_skipped and coupling.failure_count == 2
    assert coupling.last_result_from_destination == Coupling.Result.SKIPPED
    assert coupling.last_job_from_destination == third
    errors = list(SyncError.objects.filter(coupling=coupling).order_by("pk"))
    assert [e.category for e in errors] == [Category.VALIDATION] * 2
    assert errors[0].message == "Phone No. must not exceed 30 characters."
    assert errors[1].message.endswith(
        "skipped for further synchronization due to a repeatable failure."
    )
    # The entry links the record that was read (CRM) and the one it failed to update (ERP).
    assert errors[0].source_app == "Dynamics 365 Sales"
    assert errors[0].source_url.endswith(f"/demo/crm/accounts/{account.pk}/")
    assert errors[0].destination_url.endswith(f"/demo/erp/customers/{erp_customer.pk}/")
    assert demo_apps.opens(errors[0].source_url) and demo_apps.opens(errors[0].destination_url)
    assert customer("C00030").phone_number != account.telephone


def test_a_record_that_syncs_again_is_no_longer_counted_towards_skipping(demo_apps):
    demo_apps.run("CUSTOMER", FULL)
    account = account_of(customer("C00030"))
    edit(account, telephone="+45 3333 4444 ext. 5555 (reception)")
    demo_apps.run("CUSTOMER")
    edit(account, telephone="+45 3333 4444")
    assert demo_apps.run("CUSTOMER").modified == 1
    coupling = Coupling.objects.get(destination_record_id=str(account.pk))
    assert (coupling.failure_count, coupling.is_skipped) == (0, False)


@pytest.mark.parametrize(
    "rule, erp_city, crm_city, failed",
    [
        (Rule.NONE, "Malmö", "Bergen", 1),
        (Rule.SEND_UPDATE, "Malmö", "Malmö", 0),
        (Rule.GET_UPDATE, "Bergen", "Bergen", 0),
    ],
)
def test_a_record_changed_on_both_sides_follows_the_conflict_rule(
    demo_apps, rule, erp_city, crm_city, failed
):
    TableMapping.objects.filter(name="CUSTOMER").update(update_conflict_resolution=rule)
    demo_apps.run("CUSTOMER", FULL)
    erp_customer = customer("C00030")
    account = account_of(erp_customer)
    demo_apps.crm().patch(f"accounts({account.pk})", json={"address1_city": "Bergen"})
    edit(erp_customer, city="Malmö")

    job = demo_apps.run("CUSTOMER")

    assert job.failed == failed
    assert (customer("C00030").city, CrmAccount.objects.get(pk=account.pk).city) == (
        erp_city,
        crm_city,
    )
    if failed:
        error = SyncError.objects.get(job=job)
        assert error.category == Category.CONFLICT
        assert "modified in both Business Central and Dynamics 365 Sales" in error.message
        assert error.source_record_id == str(erp_customer.pk)
        assert error.destination_record_id == str(account.pk)
        assert demo_apps.opens(error.source_url) and demo_apps.opens(error.destination_url)
    else:
        assert job.modified == 1


@pytest.mark.parametrize(
    "rule", [Deletion.NONE, Deletion.REMOVE_COUPLING, Deletion.RESTORE_RECORDS]
)
def test_a_coupled_record_deleted_in_one_app_follows_the_deletion_rule(demo_apps, rule):
    TableMapping.objects.filter(name="CUSTOMER").update(deletion_conflict_resolution=rule)
    demo_apps.run("CUSTOMER", FULL)
    erp_customer = customer("C00030")
    account_of(erp_customer).delete()
    edit(erp_customer, city="Aarhus")

    job = demo_apps.run("CUSTOMER")

    coupling = Coupling.objects.filter(source_record_id=str(erp_customer.pk)).first()
    if rule == Deletion.NONE:
        assert job.failed == 1
        error = SyncError.objects.get(job=job)
        assert error.category == Category.COUPLED_RECORD_DELETED
        assert error.message == (
            "The customers record C00030 cannot be updated because it is coupled to a deleted "
            "record."
        )
        assert error.coupling == coupling
        assert demo_apps.opens(error.source_url)
        assert demo_apps.get(error.destination_url).status_code == 404  # the record is gone
    elif rule == Deletion.REMOVE_COUPLING:
        assert (job.deleted, job.failed) == (1, 0)
        assert coupling is None
    else:
        assert (job.inserted, job.failed) == (1, 0)
        restored = CrmAccount.objects.get(pk=coupling.destination_record_id)
        assert (restored.account_number, restored.city) == ("C00030", "Aarhus")


def test_a_missing_privilege_fails_the_job_with_one_entry(demo_apps):
    job = demo_apps.run("ITEM-PRODUCT", FULL)
    assert job.status == SyncJob.Status.FAILED
    error = SyncError.objects.get(job=job)
    assert error.category == Category.PERMISSION
    assert "type=8" in error.message and "is missing prvCreateProduct privilege" in error.message
    assert (error.source_app, error.source_entity) == ("Dynamics 365 Sales", "products")
    assert job.message == error.message
    assert not CrmProduct.objects.exists() and ErpItem.objects.count() == 20


def test_a_password_that_must_be_changed_fails_the_job_once(demo_apps):
    from demo.models import CrmSystemUser

    CrmSystemUser.objects.filter(domain_name=demo_apps.connection.destination_username).update(
        password_change_required=True
    )
    job = demo_apps.run("CUSTOMER", FULL)
    assert job.status == SyncJob.Status.FAILED
    error = SyncError.objects.get(job=job)
    assert error.category == Category.AUTHENTICATION
    assert "password must be changed at next sign-in" in error.message
    assert demo_apps.connection.destination_secret not in error.detail
    assert not CrmAccount.objects.filter(account_number="C00030").exists()


def test_a_disabled_integration_user_is_an_integration_user_error(demo_apps):
    from demo.models import CrmSystemUser

    CrmSystemUser.objects.filter(domain_name=demo_apps.connection.destination_username).update(
        is_disabled=True
    )
    job = demo_apps.run("CUSTOMER", FULL)
    error = SyncError.objects.get(job=job)
    assert (job.status, error.category) == (SyncJob.Status.FAILED, Category.INTEGRATION_USER)
    assert "is disabled" in error.message


def test_an_administrator_as_integration_user_is_refused_before_anything_is_written(demo_apps):
    demo_apps.connection.destination_username = "admin@demo-crm.example"
    demo_apps.connection.destination_secret = "demo-admin"
    demo_apps.connection.save()
    job = demo_apps.run("CUSTOMER", FULL)
    error = SyncError.objects.get(job=job)
    assert (job.status, error.category) == (SyncJob.Status.FAILED, Category.INTEGRATION_USER)
    assert "System Administrator" in error.message
    assert job.records_read == 0 and CrmAccount.objects.count() == 1


@pytest.mark.parametrize(
    "mode, words",
    [
        ("server_error", "An unexpected error occurred"),
        ("garbage", "not JSON"),
    ],
)
def test_an_app_that_keeps_failing_is_one_connection_error(demo_apps, mode, words, settings):
    settings.SYNC_RETRY_BACKOFF_SECONDS = 0  # each run tries the record again
    demo_apps.run("CUSTOMER", FULL)
    demo_apps.fault("crm", mode, entity="accounts")
    edit(customer("C00030"), city="Aalborg")
    # It may be a passing outage: the record waits for a later run and the job is tried
    # again; nothing lands in triage yet.
    passing = [demo_apps.run("CUSTOMER") for _ in range(2)]
    assert not SyncError.objects.filter(job__in=passing).exists()
    assert [(j.status, j.failed, j.retrying) for j in passing] == [
        (SyncJob.Status.FAILED, 0, 1)
    ] * 2
    assert "tried again in" in passing[0].message
    job = demo_apps.run("CUSTOMER")
    # The record that could not be written, then the job that could not read the accounts.
    record_error, job_error = SyncError.objects.filter(job=job).order_by("pk")
    assert job.status == SyncJob.Status.FAILED
    assert {record_error.category, job_error.category} == {Category.CONNECTION}
    assert record_error.source_record_id == str(customer("C00030").pk)
    assert job_error.source_record_id == "" and job_error.source_entity == "accounts"
    assert words in job_error.message
    assert "It failed in 3 runs in a row." in record_error.message
    coupling = record_error.coupling
    assert (coupling.failure_count, coupling.is_skipped) == (0, False)
    assert coupling.transient_failure_count == 3


@pytest.mark.parametrize("mode", ["unavailable", "server_error"])
def test_a_short_outage_is_ridden_out_by_the_retries(demo_apps, mode):
    demo_apps.run("CUSTOMER", FULL)
    demo_apps.fault("crm", mode, remaining=2, entity="accounts", retry_after=None)
    edit(customer("C00030"), city="Aalborg")
    job = demo_apps.run("CUSTOMER")
    assert (job.status, job.modified, job.failed) == (SyncJob.Status.SUCCEEDED, 1, 0)
    assert not SyncError.objects.filter(job=job).exists()


def test_an_unreachable_app_is_one_connection_error(demo_apps, unused_port):
    demo_apps.connection.destination_base_url = f"http://127.0.0.1:{unused_port}/api/"
    demo_apps.connection.save()
    first = demo_apps.run("CUSTOMER", FULL)
    assert first.status == SyncJob.Status.FAILED and "tried again in" in first.message
    demo_apps.run("CUSTOMER", FULL)
    assert not SyncError.objects.exists()  # it may come back by itself
    job = demo_apps.run("CUSTOMER", FULL)
    error = SyncError.objects.get()
    assert error.job == job
    assert (job.status, error.category) == (SyncJob.Status.FAILED, Category.CONNECTION)
    assert error.message == "Could not connect to Dynamics 365 Sales."


def test_a_disabled_connection_runs_no_job(demo_apps):
    demo_apps.connection.is_enabled = False
    demo_apps.connection.disabled_reason = "Paused for the upgrade."
    demo_apps.connection.save()
    job = demo_apps.run("CUSTOMER", FULL)
    assert job.status == SyncJob.Status.FAILED
    assert "disabled. Paused for the upgrade." in job.message
    assert CrmAccount.objects.count() == 1


def test_a_finished_job_run_again_changes_nothing(demo_apps):
    job = demo_apps.run("CUSTOMER", FULL)
    again = engine.run_job(job.pk)
    assert (again.pk, again.status, again.inserted) == (job.pk, job.status, job.inserted)
    assert CrmAccount.objects.count() == 11


def test_an_entry_resolves_itself_when_its_record_synchronizes(demo_apps, no_overlap):
    demo_apps.run("CUSTOMER", FULL)
    erp_customer = customer("C00030")
    account = account_of(erp_customer)
    edit(account, telephone="+45 3333 4444 ext. 5555 (reception)")
    failing = demo_apps.run("CUSTOMER")
    entry = SyncError.objects.get(job=failing)
    # An unrelated failure of the same coupling in the other direction stays open.
    [other] = record_errors(
        [
            SyncError(
                created_at=entry.created_at,
                job=failing,
                mapping=entry.mapping,
                coupling=entry.coupling,
                category=Category.CONFLICT,
                source_app="Business Central",
                message="Other direction.",
            )
        ]
    )
    CrmAccount.objects.filter(pk=account.pk).update(telephone="+45 3333 4444")

    fixed = demo_apps.run("CUSTOMER")

    entry.refresh_from_db()
    assert entry.status == "resolved"
    assert entry.status_changed_by is None
    assert entry.status_note == f"Resolved by itself: the record synchronized in job #{fixed.pk}."
    other.refresh_from_db()
    assert other.status == "open"
