"""Every console page fits a phone (390 px) and a desktop (1440 px, 1280 px) without
scrolling sideways, and axe-core finds nothing serious or critical on it, for an administrator
and for a Sync user, with demo data from real sync runs."""

import pytest
from django.urls import reverse

from couplings.models import Coupling
from demo.models import CrmAccount, ErpCustomer
from errors.models import Category, ErrorGroup, Status, SyncError
from errors.services import set_status
from sync import probes
from sync.models import SyncJob
from syncconsole.permissions import SYNC_ADMINISTRATORS, SYNC_USERS
from tests.browser.axe import Finding, axe_violations, overflow
from tests.conftest import PASSWORD, user_in_role

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE, DESKTOP, LAPTOP = 390, 1440, 1280
LONG_MESSAGE = (
    "The value of field 'address1_line1' is too long: "
    "Unter-den-Linden-Strasse-12-Hinterhaus-Aufgang-C-Dachgeschoss-links-bei-Mustermann-"
    "und-Partner-GmbH-Abteilung-Debitorenbuchhaltung is 129 characters, at most 100 are allowed."
)


def seed(demo_apps) -> dict:
    """Real runs of the demo apps: couplings, a conflict, a deleted coupled record, a phone
    number the ERP refuses (its entry has Edit and retry), a setup error (SEK is not in the
    CRM), couplings skipped after failing twice, a resolved entry and a message with no space
    to break it at."""
    demo_apps.run("CUSTOMER", SyncJob.Kind.FULL)
    customers = ErpCustomer.objects.order_by("number")
    conflicted, deleted = customers.filter(number__in=["C00030", "C00040"])
    coupling = Coupling.objects.get(source_record_id=str(conflicted.pk))
    demo_apps.crm().patch(
        f"accounts({coupling.destination_record_id})", json={"address1_city": "Bergen"}
    )
    conflicted.city = "Malmö"
    conflicted.save()
    gone = Coupling.objects.get(source_record_id=str(deleted.pk))
    CrmAccount.objects.filter(pk=gone.destination_record_id).delete()
    deleted.city = "Aarhus"
    deleted.save()
    too_long = Coupling.objects.get(source_record_id=str(customers.get(number="C00050").pk))
    demo_apps.crm().patch(
        f"accounts({too_long.destination_record_id})",
        json={"telephone1": "+45 3333 4444 ext. 5555 (reception)"},
    )
    job = demo_apps.run("CUSTOMER")
    demo_apps.run("CUSTOMER", SyncJob.Kind.FULL)
    demo_apps.run("CONTACT", SyncJob.Kind.FULL)
    # A lag probe with a marker that arrived: its chart on the mapping's page, its lag on the
    # overview.
    probe = probes.save_probe(
        job.mapping,
        direction="to_destination",
        record_id=str(customers.get(number="C00050").pk),
        marker_field="displayName",
        interval_minutes=1,
        limit_seconds=300,
        marker_length=100,
    )
    probes.run_probe(probe.pk)
    demo_apps.run("CUSTOMER")
    probes.run_probe(probe.pk)
    conflict = SyncError.objects.filter(job=job, category=Category.CONFLICT).get()
    removed = SyncError.objects.filter(job=job, category=Category.COUPLED_RECORD_DELETED).get()
    # A long message without spaces to break it at, as the apps write them.
    SyncError.objects.filter(pk=removed.pk, created_at=removed.created_at).update(
        message=LONG_MESSAGE
    )
    set_status(SyncError.objects.filter(pk=conflict.pk), Status.RESOLVED, None, note="Settled")
    setup = SyncError.objects.filter(category__in=["currency", "permission"]).first()
    refused = SyncError.objects.get(job=job, coupling=too_long)
    return {
        "conflict": conflict,
        "removed": removed,
        "refused": refused,
        "setup": setup,
        "job": job,
    }


def pages_of(role: str, data: dict) -> list[str]:
    conflict, removed, job = data["conflict"], data["removed"], data["job"]
    group = ErrorGroup.objects.get(pk=removed.group_id)
    mapping = job.mapping
    pages = [
        reverse("home"),
        reverse("errors:groups"),
        reverse("errors:list"),
        reverse("errors:list") + f"?group={group.pk}",
        reverse("errors:list") + "?created_after=yesterday",
        conflict.get_absolute_url(),
        removed.get_absolute_url(),
        data["refused"].get_absolute_url(),
        reverse("sync:jobs"),
        job.get_absolute_url(),
        reverse("sync:mappings"),
        reverse("sync:mapping_health", args=[mapping.pk]),
        reverse("sync:couplings"),
        reverse("sync:skipped"),
        reverse("errors:cleanup_confirm", args=["older_than"]) + "?days=7",
        reverse("couplings:couple") + f"?mapping={mapping.pk}",
        reverse("profile"),
    ]
    if role == SYNC_ADMINISTRATORS:
        pages += [
            data["setup"].get_absolute_url(),
            reverse("sync:connections"),
            reverse("sync:connection_health", args=[mapping.connection_id]),
            reverse("errors:alerts"),
            reverse("audit:events"),
            reverse("errors:cleanup_confirm", args=["all"]),
            reverse("errors:ownership_rules"),
            reverse("errors:group_rule", args=[group.pk]),
        ]
    return pages


def sign_in(page, base: str, username: str) -> None:
    page.goto(f"{base}{reverse('login')}")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("main h1")


def check(page, url: str, findings: list[Finding]) -> None:
    for width in (DESKTOP, LAPTOP, PHONE):
        page.set_viewport_size({"width": width, "height": 900})
        wide = overflow(page)
        if wide:
            findings.append(Finding(url, width, f"scrolls sideways {wide}"))
        if width != LAPTOP:
            for violation in axe_violations(page):
                findings.append(Finding(url, width, f"axe {violation}"))


def bulk_confirmation(page, base: str, findings: list[Finding]) -> None:
    """The confirmation of a bulk action on all matching entries."""
    page.set_viewport_size({"width": DESKTOP, "height": 900})
    page.goto(f"{base}{reverse('errors:list')}?status=open")
    page.select_option("#bulk-action", "ignore")
    page.click("#bulk-all")
    page.wait_for_selector("#bulk-confirm")
    check(page, "bulk confirmation", findings)


@pytest.mark.parametrize("role", [SYNC_ADMINISTRATORS, SYNC_USERS])
def test_every_page_fits_every_screen_and_passes_axe(browser, demo_apps, role):
    data = seed(demo_apps)
    user_in_role("person", role, is_staff=role == SYNC_ADMINISTRATORS)
    base = demo_apps.base_url
    context = browser.new_context(viewport={"width": DESKTOP, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15000)
    findings: list[Finding] = []
    try:
        sign_in(page, base, "person")
        for url in pages_of(role, data):
            page.set_viewport_size({"width": DESKTOP, "height": 900})
            page.goto(f"{base}{url}")
            check(page, url, findings)
        bulk_confirmation(page, base, findings)
    finally:
        context.close()
    assert not findings, "\n".join(str(f) for f in findings)
