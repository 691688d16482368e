"""The setup health check of a connection against the demo ERP and CRM over real HTTP: each
finding comes from a real change to the demo apps' data."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.urls import reverse

from couplings.models import Coupling
from demo.models import (
    CrmSystemUser,
    CrmTransactionCurrency,
    DemoFault,
    ErpCurrency,
    ErpCurrencyExchangeRate,
)
from demo.security import create_role, role_named
from demo.seed import ADMIN_USER, INTEGRATION_PASSWORD, INTEGRATION_USER
from errors.models import Category, SyncError
from errors.remedies import remedy_for
from sync import engine
from sync.health import check_connection, run_check
from sync.models import ConnectionCheck, SyncJob, TableMapping
from sync.services import create_job

pytestmark = pytest.mark.django_db
CRM, ERP = "Dynamics 365 Sales", "Business Central"


def integration_user() -> CrmSystemUser:
    return CrmSystemUser.objects.get(domain_name=INTEGRATION_USER)


def change_user(**changes) -> None:
    CrmSystemUser.objects.filter(domain_name=INTEGRATION_USER).update(**changes)


def set_roles(*names: str, user: CrmSystemUser | None = None) -> None:
    """The user's own roles, those of its business unit with these names."""
    user = user or integration_user()
    user.roles.set([role_named(name, user.business_unit) for name in names])


def make_healthy() -> None:
    """What an administrator does to the seeded demo: the full integration role, a rate for
    NOK in the ERP, SEK in the CRM."""
    set_roles("Integration Administrator")
    ErpCurrencyExchangeRate.objects.create(
        currency_code="NOK", starting_date=date(2024, 1, 1), exchange_rate_amount=Decimal("11.6")
    )
    CrmTransactionCurrency.objects.create(
        iso_currency_code="SEK", currency_name="Swedish krona", exchange_rate=Decimal("11.5")
    )


def by_code(findings) -> dict:
    found: dict = {}
    for finding in findings:
        found.setdefault(finding.code, []).append(finding)
    return found


def test_a_healthy_connection_is_all_ok(demo_apps):
    make_healthy()
    findings = check_connection(demo_apps.connection)
    assert {f.severity for f in findings} == {"ok"}, [f for f in findings if f.severity != "ok"]
    oks = {(f.code, f.app) for f in findings}
    for side_check in ("reachable", "sign_in"):
        assert (side_check, ERP) in oks and (side_check, CRM) in oks
    for crm_check in ("roles", "admin_user", "integration_role", "privileges", "local_currency"):
        assert (crm_check, CRM) in oks, crm_check
    assert ("currencies", "") in oks


def test_a_password_that_must_be_changed_is_its_own_finding(demo_apps):
    change_user(password_change_required=True)
    finding = by_code(check_connection(demo_apps.connection))["password_change_required"][0]
    assert (finding.severity, finding.side, finding.app) == ("error", "destination", CRM)
    assert "must be changed at next sign-in" in finding.message
    assert "Sign in to Dynamics 365 Sales once as the integration user and change the password" in (
        finding.remedy
    )
    assert INTEGRATION_PASSWORD not in finding.message + finding.remedy


def test_a_disabled_user_is_its_own_finding(demo_apps):
    change_user(is_disabled=True)
    found = by_code(check_connection(demo_apps.connection))
    finding = found["user_disabled"][0]
    assert finding.severity == "error" and "is disabled" in finding.message
    assert "enable the integration user" in finding.remedy
    assert "password_change_required" not in found and "privileges" not in found


def test_a_user_without_roles_an_administrator_and_one_without_an_integration_role(demo_apps):
    set_roles()
    found = by_code(check_connection(demo_apps.connection))
    assert found["no_roles"][0].severity == "error"
    assert "Integration Administrator or Integration User role" in found["no_roles"][0].remedy

    set_roles("Salesperson")
    found = by_code(check_connection(demo_apps.connection))
    assert found["no_integration_role"][0].severity == "error"
    assert found["admin_user"][0].severity == "ok"

    set_roles("System Administrator")
    found = by_code(check_connection(demo_apps.connection))
    assert found["admin_user"][0].severity == "error"
    assert "without the System Administrator role" in found["admin_user"][0].remedy


def test_one_finding_per_privilege_a_mapping_needs_and_the_user_lacks(demo_apps):
    # The seeded Integration User role may not write products or currencies nor delete.
    missing = by_code(check_connection(demo_apps.connection))["missing_privilege"]
    errors = {(f.mapping, f.entity, f.privilege) for f in missing if f.severity == "error"}
    assert errors == {
        ("CURRENCY", "transactioncurrencies", "prvCreateTransactionCurrency"),
        ("CURRENCY", "transactioncurrencies", "prvWriteTransactionCurrency"),
        ("ITEM-PRODUCT", "products", "prvCreateProduct"),
        ("ITEM-PRODUCT", "products", "prvWriteProduct"),
    }
    write = next(f for f in missing if f.privilege == "prvWriteProduct")
    assert "mapping ITEM-PRODUCT needs it to update products" in write.message
    assert "assign the integration user a security role that holds prvWriteProduct" in (
        write.remedy
    )
    # Without delete only "Delete the remaining record" fails: a warning per mapping.
    deletes = {f.privilege for f in missing if f.severity == "warning"}
    assert deletes == {
        "prvDeleteTransactionCurrency",
        "prvDeleteAccount",
        "prvDeleteContact",
        "prvDeleteProduct",
    }


def test_a_mapping_that_only_reads_a_side_needs_no_write_there(demo_apps):
    TableMapping.objects.filter(name="ITEM-PRODUCT").update(direction="from_destination")
    missing = by_code(check_connection(demo_apps.connection))["missing_privilege"]
    products = {f.privilege for f in missing if f.entity == "products"}
    assert products == {"prvDeleteProduct"}


def test_a_disabled_mapping_needs_nothing(demo_apps):
    demo_apps.connection.mappings.filter(name__in=["ITEM-PRODUCT", "CURRENCY"]).update(
        is_enabled=False
    )
    found = by_code(check_connection(demo_apps.connection))
    assert not [f for f in found["missing_privilege"] if f.severity == "error"]
    assert found["privileges"][0].severity == "ok"


def test_a_currency_without_exchange_rate_or_missing_on_one_side_is_a_warning(demo_apps):
    findings = by_code(check_connection(demo_apps.connection))
    (rate,) = findings["exchange_rate_missing"]
    nok = ErpCurrency.objects.get(code="NOK")
    assert (rate.severity, rate.side, rate.app, rate.entity) == ("warning", "source", ERP, "NOK")
    assert rate.message == "Business Central has no exchange rate for NOK."
    assert rate.link == f"{demo_apps.base_url}/demo/erp/currencies/{nok.pk}/"
    assert demo_apps.get(rate.link, timeout=10).status_code == 200
    assert "enter its exchange rate" in rate.remedy and "other records are unaffected" in (
        rate.remedy
    )

    (missing,) = findings["currency_missing"]
    assert (missing.severity, missing.side, missing.app, missing.entity) == (
        "warning",
        "destination",
        CRM,
        "SEK",
    )
    assert "add the currency SEK" in missing.remedy

    CrmTransactionCurrency.objects.filter(iso_currency_code="DKK").update(exchange_rate=None)
    rates = by_code(check_connection(demo_apps.connection))["exchange_rate_missing"]
    assert {(f.app, f.entity) for f in rates} == {(ERP, "NOK"), (CRM, "DKK")}


def test_the_local_currency_must_exist_in_the_crm(demo_apps):
    assert by_code(check_connection(demo_apps.connection))["local_currency"][0].severity == "ok"
    CrmTransactionCurrency.objects.filter(iso_currency_code="EUR").delete()
    (finding,) = by_code(check_connection(demo_apps.connection))["local_currency_missing"]
    assert (finding.severity, finding.side, finding.entity) == ("error", "destination", "EUR")
    assert finding.message == (
        "The local currency code EUR of Business Central does not match any ISO currency code "
        "in the currency table of Dynamics 365 Sales."
    )
    assert "add a currency whose ISO currency code is EUR" in finding.remedy
    assert not finding.blocks_jobs


def test_a_local_currency_code_that_is_not_an_iso_code_is_fixed_in_the_erp(demo_apps, settings):
    settings.DEMO_ERP_LOCAL_CURRENCY = "EURO"
    (finding,) = by_code(check_connection(demo_apps.connection))["local_currency_missing"]
    assert (finding.severity, finding.side, finding.app, finding.entity) == (
        "error",
        "source",
        ERP,
        "EURO",
    )
    assert "to an ISO 4217 code" in finding.remedy


def test_the_rate_in_force_is_the_latest_not_after_today(demo_apps):
    """Business Central keeps a currency's rates apart, each from a starting date: a rate
    that starts tomorrow is not one yet, and a zero rate is none."""
    make_healthy()
    ErpCurrencyExchangeRate.objects.filter(currency_code="NOK").update(
        starting_date=date.today() + timedelta(days=1)
    )
    (rate,) = by_code(check_connection(demo_apps.connection))["exchange_rate_missing"]
    assert (rate.app, rate.entity) == (ERP, "NOK")
    ErpCurrencyExchangeRate.objects.create(
        currency_code="NOK", starting_date=date(2023, 6, 1), exchange_rate_amount=Decimal("0")
    )
    assert by_code(check_connection(demo_apps.connection))["exchange_rate_missing"]
    ErpCurrencyExchangeRate.objects.create(
        currency_code="NOK", starting_date=date(2024, 6, 1), exchange_rate_amount=Decimal("11.7")
    )
    assert "exchange_rate_missing" not in by_code(check_connection(demo_apps.connection))


def test_the_local_currency_setting_is_used_where_the_erp_does_not_say(demo_apps):
    demo_apps.connection.source_settings.update(
        {"local_currency_entity": "nosuchsetup", "local_currency": "DKK"}
    )
    demo_apps.connection.save()
    CrmTransactionCurrency.objects.filter(iso_currency_code="DKK").delete()
    (finding,) = by_code(check_connection(demo_apps.connection))["local_currency_missing"]
    assert finding.entity == "DKK"


def test_an_unreachable_app_and_one_that_answers_too_late(demo_apps, unused_port):
    demo_apps.connection.destination_settings.update({"timeout": 0.3, "max_retries": 0})
    demo_apps.connection.save()
    DemoFault.objects.create(app="crm", mode=DemoFault.Mode.TIMEOUT, delay_seconds=1)
    (timeout,) = by_code(check_connection(demo_apps.connection))["timeout"]
    assert (timeout.severity, timeout.app) == ("error", CRM)
    DemoFault.objects.all().delete()

    demo_apps.connection.source_base_url = f"http://127.0.0.1:{unused_port}/api/"
    demo_apps.connection.save()
    found = by_code(check_connection(demo_apps.connection))
    (unreachable,) = found["unreachable"]
    assert (unreachable.severity, unreachable.app) == ("error", ERP)
    assert unreachable.message == "Could not connect to Business Central."
    assert "currencies" not in found  # nothing to compare without both apps


def test_the_crm_answers_a_users_privileges_as_dataverse_does(demo_apps):
    user = integration_user()
    url = (
        f"{demo_apps.base_url}/demo/crm/api/data/v9.2/systemusers({user.pk})/"
        "Microsoft.Dynamics.CRM.RetrieveUserPrivileges()"
    )
    own = demo_apps.get(url, auth=(INTEGRATION_USER, INTEGRATION_PASSWORD), timeout=10).json()
    names = {p["PrivilegeName"] for p in own["RolePrivileges"]}
    assert "prvReadAccount" in names and "prvCreateProduct" not in names
    admin_id = CrmSystemUser.objects.get(domain_name=ADMIN_USER).pk
    with demo_apps.crm() as admin:
        read_by_admin = admin.get(url).json()["RolePrivileges"]
        assert {p["PrivilegeName"] for p in read_by_admin} == names
        path = f"systemusers({admin_id})/Microsoft.Dynamics.CRM.RetrieveUserPrivileges"
        all_of_them = {p["PrivilegeName"] for p in admin.get(path).json()["RolePrivileges"]}
        assert {"prvDeleteProduct", "prvWriteTransactionCurrency"} <= all_of_them
    # A user whose roles do not let it read users may read its own privileges only.
    new_hire = CrmSystemUser.objects.get(domain_name="newhire@demo-crm.example")
    new_hire.password_change_required = False
    new_hire.save()
    new_hire.roles.set([create_role("Marketing", {"prvReadAccount"})])
    other = demo_apps.get(url, auth=("newhire@demo-crm.example", "demo-new"), timeout=10)
    assert other.status_code == 403 and "prvReadUser" in other.json()["error"]["message"]


# -- the console -------------------------------------------------------------------------------
def test_the_health_page_checks_on_post_and_shows_findings_with_remedies(demo_apps, staff_client):
    url = reverse("sync:connection_health", args=[demo_apps.connection.pk])
    page = staff_client.get(url).content.decode()
    assert "Not checked yet" in page and "Check now" in page
    assert not ConnectionCheck.objects.exists()  # opening the page calls no app

    change_user(password_change_required=True)
    response = staff_client.post(url, follow=True)
    page = response.content.decode()
    assert "Checked: 1 problem to fix." in page
    assert 'data-code="password_change_required"' in page
    assert "change the password" in page
    assert ConnectionCheck.objects.get().checked_at.strftime("%Y-%m-%d %H:%M") in page
    for secret in (demo_apps.connection.destination_secret, demo_apps.connection.source_secret):
        assert secret not in page

    connections = staff_client.get(reverse("sync:connections")).content.decode()
    assert url in connections and "1 error" in connections
    mappings = staff_client.get(reverse("sync:mappings")).content.decode()
    assert f'href="{url}"' in mappings


def test_a_healthy_connection_shows_all_ok_on_its_page(demo_apps, staff_client):
    make_healthy()
    url = reverse("sync:connection_health", args=[demo_apps.connection.pk])
    page = staff_client.post(url, follow=True).content.decode()
    assert "Checked: nothing blocks the synchronization." in page
    assert "Errors (0)" in page and "Warnings (0)" in page
    assert "No errors." in page and "No warnings." in page
    assert 'data-code="privileges"' in page and 'data-code="currencies"' in page


def test_the_health_page_is_for_staff_and_checks_only_on_post(demo_apps, client, plain_user):
    url = reverse("sync:connection_health", args=[demo_apps.connection.pk])
    assert client.post(url).status_code == 302  # to sign in
    client.force_login(plain_user)
    assert client.get(url).status_code == 403
    assert client.post(url).status_code == 403
    assert client.get(reverse("sync:connections")).status_code == 403
    assert not ConnectionCheck.objects.exists()


def test_only_the_latest_checks_are_kept(demo_apps):
    for _ in range(ConnectionCheck.KEEP + 2):
        run_check(demo_apps.connection)
    assert ConnectionCheck.objects.count() == ConnectionCheck.KEEP


# -- before each job ---------------------------------------------------------------------------
def test_a_job_missing_a_privilege_it_needs_is_one_entry_instead_of_record_failures(demo_apps):
    job = demo_apps.run("CURRENCY", SyncJob.Kind.FULL)
    assert job.status == SyncJob.Status.FAILED
    error = SyncError.objects.get(job=job)
    assert error.category == Category.PERMISSION
    assert "is missing prvCreateTransactionCurrency privilege" in error.message
    assert "mapping CURRENCY needs it" in error.message
    assert (error.source_app, error.source_entity, error.source_record_id) == (
        CRM,
        "transactioncurrencies",
        "",
    )
    assert "prvWriteTransactionCurrency" in error.detail  # every missing one is listed
    assert job.records_read == 0 and job.failed == 0
    assert not Coupling.objects.filter(mapping__name="CURRENCY").exists()
    remedy = remedy_for(error)
    assert "do not grant prvCreateTransactionCurrency on transactioncurrency" in remedy.cause
    assert (
        "Setup health check",
        reverse("sync:connection_health", args=[demo_apps.connection.pk]),
    ) in remedy.links


def test_a_job_runs_when_its_direction_needs_only_what_the_user_holds(demo_apps):
    # Reading products from the CRM into the ERP needs only prvReadProduct.
    mapping = demo_apps.mapping("ITEM-PRODUCT")
    job = create_job(
        mapping,
        kind=SyncJob.Kind.FULL,
        trigger=SyncJob.Trigger.USER,
        direction="from_destination",
    )
    job = engine.run_job(job.pk)
    assert job.status == SyncJob.Status.SUCCEEDED, job.message
    assert not SyncError.objects.filter(job=job).exists()


def test_currency_warnings_and_a_missing_delete_privilege_do_not_block_a_job(demo_apps):
    job = demo_apps.run("CUSTOMER", SyncJob.Kind.FULL)
    assert job.status == SyncJob.Status.SUCCEEDED
    assert job.inserted == 10 and job.failed == 1  # the SEK customer, a record failure


def test_a_user_without_an_integration_role_blocks_the_job_with_its_remedy(demo_apps):
    set_roles("Salesperson")
    job = demo_apps.run("CUSTOMER", SyncJob.Kind.FULL)
    error = SyncError.objects.get(job=job)
    assert (job.status, error.category) == (SyncJob.Status.FAILED, Category.INTEGRATION_USER)
    assert "none of the integration roles" in error.message
    assert "assign the Integration User or Integration Administrator" in " ".join(
        remedy_for(error).steps
    )


def test_the_erp_answers_its_local_currency_as_business_central_does(demo_apps):
    url = demo_apps.connection.source_base_url + "generalLedgerSetup"
    auth = (settings.DEMO_ERP_USER, settings.DEMO_ERP_PASSWORD)
    answer = demo_apps.get(url, auth=auth, timeout=10)
    assert answer.json()["value"][0]["localCurrencyCode"] == "EUR"
    assert demo_apps.get(url, timeout=10).status_code == 401


def test_test_connection_in_the_admin_links_the_health_page(demo_apps, client, superuser):
    from django.contrib.messages import get_messages

    client.force_login(superuser)
    response = client.post(
        reverse("admin:sync_connection_changelist"),
        {"action": "test_connection", "_selected_action": [demo_apps.connection.pk]},
    )
    said = " ".join(str(m) for m in get_messages(response.wsgi_request))
    health = reverse("sync:connection_health", args=[demo_apps.connection.pk])
    assert f'<a href="{health}">its health page</a>' in said


def test_the_health_page_links_the_currency_to_fix_in_its_app(demo_apps, staff_client):
    url = reverse("sync:connection_health", args=[demo_apps.connection.pk])
    page = staff_client.post(url, follow=True).content.decode()
    nok = ErpCurrency.objects.get(code="NOK")
    assert "Business Central has no exchange rate for NOK." in page
    assert f'href="{demo_apps.base_url}/demo/erp/currencies/{nok.pk}/"' in page
    assert "Dynamics 365 Sales has no currency SEK, which Business Central uses." in page
    # The link to SEK opens it in the app that has it, and says so.
    sek = ErpCurrency.objects.get(code="SEK")
    sek_link = f'href="{demo_apps.base_url}/demo/erp/currencies/{sek.pk}/"'
    assert sek_link in page
    assert "Open SEK in Business Central" in page.split(sek_link, 1)[1].split("</a>", 1)[0]
    assert "Open SEK in Dynamics 365 Sales" not in page
    assert "is missing the prvWriteProduct privilege" in page
