from datetime import timedelta
from io import StringIO
from urllib.parse import urlsplit

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from couplings.models import Coupling
from demo.models import CrmSystemUser, CrmTransactionCurrency, ErpCurrency
from errors.links import safe_link
from errors.models import Category, SyncError
from sync.models import Connection, SyncJob, TableMapping

pytestmark = pytest.mark.django_db


def seed(*args) -> str:
    out = StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def test_seed_builds_a_connection_mappings_jobs_couplings_and_errors():
    assert "Demo data loaded" in seed()
    assert Connection.objects.count() == 1
    assert set(TableMapping.objects.values_list("name", flat=True)) == {
        "CURRENCY", "SALESPEOPLE", "CUSTOMER", "CONTACT", "ITEM-PRODUCT"
    }  # fmt: skip
    assert SyncJob.objects.count() > 100
    assert Coupling.objects.count() > 100
    assert SyncError.objects.count() == 400


def test_seed_covers_every_category_and_both_sides_of_the_retention():
    seed()
    assert set(SyncError.objects.values_list("category", flat=True)) == set(Category.values)
    week_ago = timezone.now() - timedelta(days=7)
    old = SyncError.objects.filter(created_at__lt=week_ago).count()
    assert old >= 400 // 3
    assert SyncError.objects.filter(created_at__gte=week_ago).count() > 100
    assert not SyncError.objects.filter(created_at__gt=timezone.now()).exists()
    assert SyncError.objects.filter(created_at__lt=timezone.now() - timedelta(days=25)).exists()


def test_seed_plants_the_setup_failure_cases():
    seed()
    assert ErpCurrency.objects.get(code="NOK").exchange_rate is None
    assert not CrmTransactionCurrency.objects.filter(iso_currency_code="SEK").exists()
    assert CrmSystemUser.objects.filter(roles__contains=["System Administrator"]).exists()
    assert CrmSystemUser.objects.filter(password_change_required=True).exists()
    assert SyncError.objects.filter(message__contains="is missing prvWriteAccount").exists()


def test_record_links_open_the_demo_records(settings):
    settings.DEMO_BASE_URL = "http://testserver"
    seed()
    client = Client()
    linked = SyncError.objects.exclude(source_url="")
    assert linked.count() > 100
    for error in linked.exclude(category=Category.COUPLED_RECORD_DELETED)[:40]:
        for url in (error.source_url, error.destination_url):
            assert safe_link(url) == url
            assert urlsplit(url).path.startswith("/demo/")
            assert client.get(urlsplit(url).path).status_code == 200, url
    deleted = linked.filter(category=Category.COUPLED_RECORD_DELETED).first()
    assert client.get(urlsplit(deleted.source_url).path).status_code == 200
    assert client.get(urlsplit(deleted.destination_url).path).status_code == 404


def test_seed_runs_once_unless_reset():
    seed()
    assert "already there" in seed()
    assert SyncError.objects.count() == 400
    seed("--reset", "--errors", "50")
    assert SyncError.objects.count() == 50
    assert Connection.objects.count() == 1
