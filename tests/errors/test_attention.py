"""The Problems page and the errors list say "everything is in step" only when it is: after the
entries are gone, skipped couplings, failing records and paused mappings still show, with links
to where to act."""

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from couplings.models import Coupling
from errors import services
from errors.models import Category, SyncError, SyncErrorCleanup
from sync.models import TableMapping
from tests.factories import make_error
from tests.sync.test_skipped import skip

pytestmark = pytest.mark.django_db
IN_STEP = "everything is in step"


def delete_all_entries() -> None:
    services.request_cleanup(
        days=None, trigger=SyncErrorCleanup.Trigger.CONSOLE, run_in_background=False
    )
    assert not SyncError.objects.exists()


@pytest.mark.parametrize("page", ["errors:groups", "errors:list"])
def test_after_delete_all_entries_what_still_fails_is_shown_not_in_step(
    demo_apps, staff_client, page
):
    skipped, failing = skip(demo_apps, "C00030", "C00050")
    Coupling.objects.filter(pk=failing.pk).update(is_skipped=False, failure_count=1)
    mapping = demo_apps.mapping("CUSTOMER")
    delete_all_entries()

    html = staff_client.get(reverse(page)).content.decode()

    assert IN_STEP not in html
    attention = html.split('id="attention"')[1].split("</div>")[0]
    assert "the synchronization still needs attention" in attention
    assert f'<a href="{reverse("sync:skipped")}">1 skipped coupling</a>' in attention
    health = reverse("sync:mapping_health", args=[mapping.pk])
    failing_link = f"{reverse('sync:couplings')}?mapping={mapping.pk}&amp;result=failure"
    assert f'<a href="{health}">CUSTOMER</a>' in attention
    assert f'<a href="{failing_link}">1 record failing</a>' in attention


def test_a_paused_mapping_and_hidden_setup_entries_are_not_in_step(
    demo_apps, staff_client, sync_user
):
    TableMapping.objects.filter(name="ITEM-PRODUCT").update(
        paused_at=timezone.now(), paused_reason="The integration user is disabled."
    )
    html = staff_client.get(reverse("errors:groups")).content.decode()
    assert IN_STEP not in html
    assert "ITEM-PRODUCT</a> is paused until its setup check passes" in html

    TableMapping.objects.update(paused_at=None)
    make_error(category=Category.PERMISSION)  # a setup error: not shown to a Sync user
    sync_user_client = Client()
    sync_user_client.force_login(sync_user)
    html = sync_user_client.get(reverse("errors:groups")).content.decode()
    assert IN_STEP not in html
    assert (
        "1 open setup or connection entry is left to administrators"
        in (html.split('id="attention"')[1])
    )


def test_in_step_when_nothing_fails_is_skipped_or_open(demo_apps, staff_client):
    for page in ("errors:groups", "errors:list"):
        html = staff_client.get(reverse(page)).content.decode()
        assert 'id="attention"' not in html
        assert IN_STEP in html
