"""The console pages of the synchronization: table mappings, jobs, couplings, and the
change-notification endpoint the apps call."""

import json

import pytest
from django.urls import reverse

from couplings.models import Coupling
from demo.models import CrmAccount, ErpCustomer
from errors.models import SyncError
from sync.models import SyncJob
from sync.services import create_job

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("uncoupled_not_retried")]


def sync_urls(job_id: int) -> list[str]:
    return [
        reverse("sync:mappings"),
        reverse("sync:jobs"),
        reverse("sync:job", args=[job_id]),
        reverse("sync:couplings"),
    ]


def test_sync_pages_are_for_staff_only(demo_apps, client, plain_user):
    job = demo_apps.run("CURRENCY", SyncJob.Kind.FULL)
    for url in sync_urls(job.pk):
        response = client.get(url)
        assert response.status_code == 302 and "/login/" in response["Location"], url
    client.force_login(plain_user)
    for url in sync_urls(job.pk):
        assert client.get(url).status_code == 403, url
    start = reverse("sync:mapping_start", args=[demo_apps.mapping("CUSTOMER").pk])
    assert client.post(start, {"kind": "full"}).status_code == 403
    assert not SyncJob.objects.exclude(pk=job.pk).exists()


def test_table_mappings_show_their_last_job_and_both_buttons(
    demo_apps, staff_client, django_assert_max_num_queries
):
    job = demo_apps.run("CUSTOMER", SyncJob.Kind.FULL)
    with django_assert_max_num_queries(10):
        page = staff_client.get(reverse("sync:mappings")).content.decode()
    for name in ("CURRENCY", "CUSTOMER", "CONTACT", "ITEM-PRODUCT"):
        assert name in page
    assert page.count("Synchronize Modified Records") == 4
    assert page.count("Run Full Synchronization") == 4
    assert f'href="{job.get_absolute_url()}"' in page
    assert ">11</a>" in page  # the CUSTOMER couplings


def test_starting_a_job_needs_a_kind_and_a_free_mapping(demo_apps, staff_client):
    mapping = demo_apps.mapping("CUSTOMER")
    start = reverse("sync:mapping_start", args=[mapping.pk])

    response = staff_client.post(start, {"kind": "everything"}, follow=True)
    assert "Choose Synchronize Modified Records or Run Full Synchronization" in (
        response.content.decode()
    )
    assert not SyncJob.objects.exists()

    waiting = create_job(mapping, kind=SyncJob.Kind.MODIFIED, trigger=SyncJob.Trigger.USER)
    response = staff_client.post(start, {"kind": "full"}, follow=True)
    assert f"A job for CUSTOMER is already queued (#{waiting.pk})" in response.content.decode()
    assert SyncJob.objects.count() == 1
    assert staff_client.get(start).status_code == 405  # GET changes nothing


def test_the_jobs_page_lists_counts_and_opens_failed_and_skipped(demo_apps, staff_client):
    demo_apps.run("CUSTOMER", SyncJob.Kind.FULL)
    account = CrmAccount.objects.get(account_number="C00030")
    account.telephone = "+45 3333 4444 ext. 5555 (reception)"
    account.save()
    demo_apps.run("CUSTOMER")
    failing = demo_apps.run("CUSTOMER")
    skipping = demo_apps.run("CUSTOMER")
    # Skipped: both records of the skipped coupling (read again within the watermark's
    # overlap), and the customer in SEK, never created, so not coupled.
    assert (failing.failed, skipping.skipped) == (1, 2 + 1)

    page = staff_client.get(reverse("sync:jobs")).content.decode()
    failed_link = f"{reverse('errors:list')}?job={failing.pk}"
    skipped_link = f"{reverse('sync:couplings')}?job={skipping.pk}&amp;result=skipped"
    assert f'href="{failed_link}"' in page
    assert f'href="{skipped_link}"' in page

    errors_page = staff_client.get(failed_link).content.decode()
    (error,) = SyncError.objects.filter(job=failing)
    assert error.message[:40] in errors_page
    others = SyncError.objects.exclude(job=failing)
    assert others.exists()
    for other in others:
        assert reverse("errors:detail", args=[other.pk]) not in errors_page
    assert f'value="{failing.pk}"' in errors_page  # the job filter stays visible

    couplings_page = staff_client.get(skipped_link.replace("&amp;", "&")).content.decode()
    coupling = Coupling.objects.get(is_skipped=True)
    assert coupling.destination_record_id[:20] in couplings_page
    assert "Skipped" in couplings_page
    assert couplings_page.count("<tr>") == 2  # the head and the one coupling


def test_the_jobs_page_filters_and_rejects_bad_filters(demo_apps, staff_client):
    currency = demo_apps.run("CURRENCY", SyncJob.Kind.FULL)
    customer = demo_apps.run("CUSTOMER", SyncJob.Kind.FULL)
    page = staff_client.get(reverse("sync:jobs"), {"mapping": currency.mapping_id})
    assert f"#{currency.pk}<" in page.content.decode()
    assert f"#{customer.pk}<" not in page.content.decode()
    assert staff_client.get(reverse("sync:jobs"), {"status": "exploded"}).status_code == 400


def test_a_job_page_shows_its_counts_and_answers_json_for_live_progress(demo_apps, staff_client):
    job = demo_apps.run("CUSTOMER", SyncJob.Kind.FULL)
    page = staff_client.get(job.get_absolute_url()).content.decode()
    assert "CUSTOMER" in page and "Full synchronization" in page
    state = staff_client.get(job.get_absolute_url(), {"format": "json"}).json()
    assert state["status"] == "succeeded" and state["finished"]
    assert (state["inserted"], state["failed"], state["records_read"]) == (10, 1, 23)


def test_couplings_link_both_records_and_their_errors(demo_apps, staff_client):
    demo_apps.run("CUSTOMER", SyncJob.Kind.FULL)
    customer = ErpCustomer.objects.get(number="C00030")
    coupling = Coupling.objects.get(source_record_id=str(customer.pk))
    page = staff_client.get(
        reverse("sync:couplings"), {"record": str(customer.pk), "result": "success"}
    ).content.decode()
    assert f"/demo/erp/customers/{customer.pk}/" in page
    assert f"/demo/crm/accounts/{coupling.destination_record_id}/" in page
    assert page.count("<tr>") == 2
    assert staff_client.get(reverse("sync:couplings"), {"mapping": "x"}).status_code == 400


def notify(client, connection, side="source", body=None, query="", **payload):
    data = body if body is not None else json.dumps(payload)
    return client.post(
        reverse("sync:notification", args=[connection.pk, side]) + query,
        data=data,
        content_type="application/json",
    )


def test_a_notification_must_carry_the_connection_client_state(demo_apps, client):
    connection = demo_apps.connection
    item = {"resource": "api/v2.0/companies(x)/customers", "changeType": "collection"}
    assert notify(client, connection, value=[{**item, "clientState": "guess"}]).status_code == 403
    assert notify(client, connection, value=[item]).status_code == 403
    assert notify(client, connection, body="not json").status_code == 400
    assert notify(client, connection, body="[1, 2]").status_code == 400
    assert notify(client, connection, side="elsewhere").status_code == 404
    huge = json.dumps({"value": [], "padding": "x" * (1024 * 1024)})
    assert notify(client, connection, body=huge).status_code == 413
    assert client.get(reverse("sync:notification", args=[connection.pk, "source"])).status_code == (
        405
    )
    assert not SyncJob.objects.exists()


def test_a_notification_for_a_table_nobody_maps_queues_nothing(demo_apps, client):
    connection = demo_apps.connection
    company = connection.source_base_url.rsplit("companies(", 1)[1].split(")")[0]
    response = notify(
        client,
        connection,
        value=[
            {
                "clientState": connection.notification_token(),
                "resource": f"api/v2.0/companies({company})/vendors",
                "changeType": "collection",
            }
        ],
    )
    assert response.status_code == 202
    assert response.json() == {"queued": []}


def test_a_job_with_failed_records_reads_completed_with_failures_everywhere(
    demo_apps, staff_client, admin_client
):
    with_failures = demo_apps.run("CUSTOMER", SyncJob.Kind.FULL)
    clean = demo_apps.run("CONTACT", SyncJob.Kind.FULL)
    assert (with_failures.status, with_failures.failed) == (SyncJob.Status.SUCCEEDED, 1)
    assert (clean.status, clean.failed) == (SyncJob.Status.SUCCEEDED, 0)
    completed = '<span class="status job completed_with_failures">Completed with 1 failure</span>'
    succeeded = '<span class="status job succeeded">Succeeded</span>'

    jobs = staff_client.get(reverse("sync:jobs")).content.decode()
    assert jobs.count(completed) == 1 and jobs.count(succeeded) == 1
    page = staff_client.get(with_failures.get_absolute_url()).content.decode()
    assert completed.replace('">', '" id="job-status">', 1) in page
    state = staff_client.get(with_failures.get_absolute_url(), {"format": "json"}).json()
    assert state["status"] == "succeeded"
    assert (state["outcome"], state["outcome_display"]) == (
        "completed_with_failures",
        "Completed with 1 failure",
    )
    assert "Succeeded" not in json.dumps(state)
    mappings = staff_client.get(reverse("sync:mappings")).content.decode()
    assert completed in mappings and succeeded in mappings
    health = staff_client.get(with_failures.mapping.get_absolute_url()).content.decode()
    assert health.count(completed) == 2 and succeeded not in health  # last job, recent jobs
    entry = SyncError.objects.get(job=with_failures)
    assert completed in staff_client.get(entry.get_absolute_url()).content.decode()
    admin_list = admin_client.get(reverse("admin:sync_syncjob_changelist")).content.decode()
    assert "Completed with 1 failure" in admin_list and "Succeeded" in admin_list

    # The filter by status keeps them apart as the page shows them.
    for status, shown in (("completed_with_failures", with_failures), ("succeeded", clean)):
        page = staff_client.get(reverse("sync:jobs"), {"status": status}).content.decode()
        assert f"#{shown.pk}<" in page
        other = clean if shown is with_failures else with_failures
        assert f"#{other.pk}<" not in page
