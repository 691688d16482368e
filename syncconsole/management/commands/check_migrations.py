"""Refuse the migrations that are not safe under traffic on a large entries table."""

from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from syncconsole.migration_safety import check_project


class Command(BaseCommand):
    help = (
        "Reads the SQL of every migration after the reviewed ones (syncconsole/"
        "migrations_reviewed.py) and fails on each statement that would rewrite a table, lock"
        " it while reading it whole, or break the running version, naming the safe way."
    )

    def add_arguments(self, parser):
        parser.add_argument("--database", default="default")

    def handle(self, *args, **options):
        findings = check_project(connections[options["database"]])
        if findings:
            for finding in findings:
                self.stderr.write(str(finding))
            raise CommandError(
                f"{len(findings)} unsafe statement(s); see docs/operations/upgrades.md"
            )
        self.stdout.write("Every checked migration is safe under traffic.")
