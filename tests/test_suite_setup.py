"""The suite's own set-up: a run of tests that need no database leaves the configured one
(DATABASE_URL, maybe someone's own console) as it is."""

import os
import subprocess
import sys
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from errors.partitions import day_of, partition_days
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
