"""The suite's own set-up: a run of tests that need no database leaves the configured one
(DATABASE_URL, maybe someone's own console) as it is; a committing test's flush is quick; the
suite's processes share their compiled modules."""

import os
import subprocess
import sys
from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from errors.models import SyncError
from errors.partitions import day_of, partition_days
from syncconsole.permissions import SYNC_ADMINISTRATORS
from tests.conftest import database_url_of_test_db
from tests.factories import make_error


@pytest.mark.django_db(transaction=True)
def test_a_run_without_database_tests_leaves_the_configured_database_alone():
    make_error(age=timedelta(days=20))
    old_day = day_of(timezone.now() - timedelta(days=20))
    assert old_day in partition_days()
    # A run of the documentation's tests alone, with this test database as the configured one:
    # its set-up used to keep only a deployment's days in it, dropping this one. It builds no
    # template of its own from the migrations (SYNC_TEST_TEMPLATE=0): none of its tests needs
    # a database.
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-n",
            "0",
            "-p",
            "no:cacheprovider",
            "tests/test_docs.py",
        ],
        cwd=settings.BASE_DIR,
        env={**os.environ, "DATABASE_URL": database_url_of_test_db(), "SYNC_TEST_TEMPLATE": "0"},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert old_day in partition_days()


@pytest.mark.django_db(transaction=True)
def test_the_flush_after_a_committing_test_empties_the_tables_in_one_round_trip(staff_user):
    """The content types and permissions stay where they are: the post-migrate steps find
    them and write none back; the role groups come back with their permissions."""
    make_error()
    content_types = dict(ContentType.objects.values_list("pk", "model"))
    permissions = Permission.objects.count()
    with CaptureQueriesContext(connection) as queries:
        # As Django's TransactionTestCase calls it at the end of a committing test.
        call_command("flush", verbosity=0, interactive=False, reset_sequences=False)
    deletes = [q["sql"] for q in queries if "DELETE FROM" in q["sql"]]
    assert len(deletes) == 1, deletes
    inserted = [q["sql"] for q in queries if q["sql"].startswith("INSERT")]
    assert not [
        sql for sql in inserted if "django_content_type" in sql or '"auth_permission"' in sql
    ]
    assert dict(ContentType.objects.values_list("pk", "model")) == content_types
    assert Permission.objects.count() == permissions
    assert not SyncError.objects.exists() and not get_user_model().objects.exists()
    administrators = Group.objects.get(name=SYNC_ADMINISTRATORS)
    assert administrators.permissions.filter(codename="delete_syncerror").exists()


def test_make_test_writes_bytecode_even_where_the_environment_says_not_to():
    """The suite's processes (pytest's, the Celery workers', the commands') import the same
    modules and pytest rewrites every test module: compiled once into __pycache__/, not in
    each process of each run (collecting the suite took 14.8 s a process without, 5.0 s
    with)."""
    environment = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    planned = subprocess.run(
        ["make", "--dry-run", "--silent", "test-fast"],
        cwd=settings.BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    pytest_command = planned.splitlines()[-1]
    assert " -m pytest " in pytest_command, planned
    # The command as make would run it, asking Python instead of running the tests.
    python = pytest_command.split(" -m pytest ")[0]
    asked = subprocess.run(
        ["bash", "-c", f"{python} -c 'import sys; print(sys.dont_write_bytecode)'"],
        cwd=settings.BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    )
    assert asked.stdout.strip() == "False", pytest_command


def test_test_clients_share_one_middleware_chain_until_a_setting_changes(settings):
    def chain_of_a_new_client():
        client = Client()
        assert client.get("/healthz").status_code == 200
        return client.handler._middleware_chain

    first = chain_of_a_new_client()
    assert chain_of_a_new_client() is first
    # Middleware reads its settings when it is made: a changed setting makes a new chain.
    settings.SECURE_REFERRER_POLICY = "no-referrer"
    changed = chain_of_a_new_client()
    assert changed is not first
    assert chain_of_a_new_client() is changed
