"""The headline journey in Chromium: an administrator reads why the currency NOK could not be
created in the CRM, adds an exchange rate on the currency's page in the ERP, takes the entry's
next step (retry the problem's open entry, confirmed with its count), and the entry closes by
itself once the worker has run the job, NOK created in the CRM with its rate."""

import pytest

from demo.models import CrmTransactionCurrency, ErpCurrency
from errors.models import Status
from syncconsole.permissions import SYNC_ADMINISTRATORS
from tests.browser.test_resolve_in_browser import sign_in
from tests.conftest import ARTIFACTS, user_in_role, wait_until
from tests.journeys.test_exchange_rate import blocked  # noqa: F401 - a fixture

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_enter_the_rate_in_the_erp_press_retry_and_the_entry_resolves(
    page,
    demo_apps,
    celery_worker,
    blocked,  # noqa: F811
):
    user_in_role("admin1", SYNC_ADMINISTRATORS, is_staff=True)
    base = demo_apps.base_url
    sign_in(page, f"{base}{blocked.get_absolute_url()}", "admin1")
    page.wait_for_selector("#remedy")
    assert "Currency Exchange Rate does not exist" in page.inner_text("body")
    assert "Business Central has no exchange rate for NOK" in page.inner_text("body")

    # In the ERP, on the currency's page: an exchange rate from today on.
    nok = ErpCurrency.objects.get(code="NOK")
    page.goto(f"{base}/demo/erp/currencies/{nok.pk}/")
    assert "No exchange rate" in page.inner_text("#exchange-rates")
    page.fill("input[name=exchange_rate_amount]", "11.6")
    page.click("button:has-text('Add exchange rate')")
    page.wait_for_selector("text=is saved")

    page.goto(f"{base}{blocked.get_absolute_url()}")
    assert "Business Central has an exchange rate for NOK now" in page.inner_text("#next-step")
    page.click("#next-step button")
    assert page.inner_text("#bulk-count") == "1"
    page.click("#bulk-confirm-button")
    page.wait_for_selector("#bulk-jobs a", timeout=60000)
    page.locator("#bulk-jobs a").first.click()
    page.wait_for_selector("[data-job-status=succeeded]", timeout=60000)
    assert page.inner_text("[data-count=inserted]") == "1"

    def resolved():
        blocked.refresh_from_db()
        return blocked.status == Status.RESOLVED

    wait_until(resolved, timeout=60, message=celery_worker.log_path.read_text())
    page.goto(f"{base}{blocked.get_absolute_url()}")
    assert "Resolved" in page.inner_text("dl.facts")
    nok_in_the_crm = CrmTransactionCurrency.objects.get(iso_currency_code="NOK")
    assert float(nok_in_the_crm.exchange_rate) == 11.6
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "exchange-rate-resolved.png"), full_page=True)
