"""The keyboard on the errors list and the problems page (j, k, o, r, ?), never while typing
in a field; and the menu, which folds into a button on a phone, with or without JavaScript."""

from datetime import timedelta

import pytest
from django.urls import reverse

from errors.models import Category, ErrorGroup, Status, SyncError
from syncconsole.permissions import SYNC_ADMINISTRATORS, SYNC_USERS
from tests.browser.test_pages_for_everyone import sign_in
from tests.conftest import user_in_role
from tests.factories import make_error

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def selected(page) -> str | None:
    """The entry or problem id of the row the keys selected."""
    return page.evaluate(
        "() => { const row = document.querySelector('tr.selected');"
        " return row ? row.dataset.row : null; }"
    )


def focused_text(page) -> str:
    return page.evaluate("() => document.activeElement.textContent.trim()")


def test_the_keys_move_open_and_resolve_entries_of_the_list(browser, live_server):
    user_in_role("person", SYNC_USERS)
    oldest, middle, newest = (
        make_error(category=Category.CONFLICT, message=f"Changed in both apps: {name}", age=age)
        for name, age in (
            ("A", timedelta(hours=3)),
            ("B", timedelta(hours=2)),
            ("C", timedelta(hours=1)),
        )
    )
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15000)
    try:
        sign_in(page, live_server.url, "person")
        page.goto(f"{live_server.url}{reverse('errors:list')}")
        assert selected(page) is None

        page.keyboard.press("j")
        assert selected(page) == str(newest.pk)
        assert focused_text(page) == newest.message  # its link has the focus
        page.keyboard.press("j")
        page.keyboard.press("j")
        page.keyboard.press("j")  # past the last row: it stays there
        assert selected(page) == str(oldest.pk)
        page.keyboard.press("k")
        assert selected(page) == str(middle.pk)

        # Typing in a field types; it does not move the selection.
        page.click("#id_q")
        page.keyboard.type("jk")
        assert page.input_value("#id_q") == "jk"
        assert selected(page) == str(middle.pk)
        page.fill("#id_q", "")

        # ? shows the keys; Escape closes them.
        page.locator("table.entries a").first.focus()
        page.keyboard.press("?")
        assert page.locator("#keys-help").is_visible()
        assert "Resolve the selected entry" in page.inner_text("#keys-help")
        page.keyboard.press("Escape")
        assert not page.locator("#keys-help").is_visible()

        # o opens the selected entry (the focus on a row's link selected that row).
        assert selected(page) == str(newest.pk)
        page.keyboard.press("j")
        assert selected(page) == str(middle.pk)
        page.keyboard.press("o")
        page.wait_for_url(f"**{middle.get_absolute_url()}")

        # r resolves the selected entry as Mark resolved does.
        page.goto(f"{live_server.url}{reverse('errors:list')}")
        page.keyboard.press("j")
        page.keyboard.press("r")
        page.wait_for_selector(f"text=Entry #{newest.pk} is now resolved.")
        assert SyncError.objects.get(pk=newest.pk).status == Status.RESOLVED

        # A resolved row has nothing left to resolve.
        page.goto(f"{live_server.url}{reverse('errors:list')}")
        page.keyboard.press("j")
        assert selected(page) == str(newest.pk)
        page.keyboard.press("r")
        assert page.inner_text("#keys-status") == "This row is resolved already."
        assert page.url.endswith(reverse("errors:list"))
    finally:
        context.close()


def test_r_resolves_the_selected_problem(browser, live_server):
    user_in_role("person", SYNC_ADMINISTRATORS, is_staff=True)
    entry = make_error(category=Category.VALIDATION, message="The phone number is too long.")
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    page.set_default_timeout(15000)
    try:
        sign_in(page, live_server.url, "person")
        page.goto(f"{live_server.url}{reverse('errors:groups')}")
        page.keyboard.press("j")
        assert selected(page) == str(entry.group_id)
        page.keyboard.press("r")
        page.wait_for_selector("text=The problem is now resolved")
        assert ErrorGroup.objects.get(pk=entry.group_id).status == Status.RESOLVED
    finally:
        context.close()


@pytest.mark.parametrize("javascript", [True, False])
def test_the_menu_folds_into_a_button_on_a_phone(browser, live_server, javascript):
    user_in_role("person", SYNC_USERS)
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, java_script_enabled=javascript
    )
    page = context.new_page()
    page.set_default_timeout(15000)
    try:
        sign_in(page, live_server.url, "person")
        jobs = page.get_by_role("link", name="Jobs", exact=True)
        assert not jobs.is_visible()
        page.get_by_text("Menu", exact=True).click()
        assert jobs.is_visible()
        jobs.click()
        page.wait_for_url("**/sync/jobs/")

        # On a wide screen the menu is open and its button gone.
        page.set_viewport_size({"width": 1280, "height": 800})
        page.reload()
        assert jobs.is_visible()
        assert not page.get_by_text("Menu", exact=True).is_visible()
    finally:
        context.close()


def test_the_skip_link_leads_past_the_menu(browser, live_server):
    user_in_role("person", SYNC_USERS)
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(15000)
    try:
        sign_in(page, live_server.url, "person")
        page.keyboard.press("Tab")
        skip = page.get_by_role("link", name="Skip to content")
        assert skip.is_visible()
        assert (
            page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle") != "none"
        )
        page.keyboard.press("Enter")
        assert page.evaluate("() => document.activeElement.id") == "content"
    finally:
        context.close()
