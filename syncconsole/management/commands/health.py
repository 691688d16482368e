"""`manage.py health --process worker|beat`: the health check of a worker's or beat's
container (the web server's asks /healthz).

A worker or beat is healthy when a process of its kind on this machine (the host name after
the @ of its heartbeat's name) wrote its heartbeat within READYZ_WORKER_HEARTBEAT_MAX_AGE or
READYZ_BEAT_MAX_AGE seconds. Exits 0 when healthy, 1 otherwise, saying why in one line."""

import socket

import psycopg2
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from syncconsole import heartbeats
from syncconsole.models import ProcessHeartbeat
from syncconsole.readiness import database_connection, short


class Command(BaseCommand):
    help = "Exit 0 when this machine's worker or beat is healthy, 1 otherwise."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser):
        parser.add_argument(
            "--process", required=True, choices=[ProcessHeartbeat.WORKER, ProcessHeartbeat.BEAT]
        )

    def handle(self, *args, process: str, **options):
        kind = process
        host = socket.gethostname()
        max_age = {
            ProcessHeartbeat.WORKER: settings.READYZ_WORKER_HEARTBEAT_MAX_AGE,
            ProcessHeartbeat.BEAT: settings.READYZ_BEAT_MAX_AGE,
        }[kind]
        try:
            connection = database_connection(settings.READYZ_CHECK_TIMEOUT)
        except psycopg2.Error as exc:
            raise CommandError(f"The database does not answer: {short(exc)}", returncode=1) from exc
        try:
            with connection.cursor() as cursor:
                age = heartbeats.newest_age(cursor, kind, host=host)
        except psycopg2.Error as exc:
            raise CommandError(f"The database does not answer: {short(exc)}", returncode=1) from exc
        finally:
            connection.close()
        if age is None:
            raise CommandError(f"No {kind} on {host} has sent a heartbeat.", returncode=1)
        if age > max_age:
            raise CommandError(
                f"The {kind} on {host} has sent no heartbeat for {age:.0f} s.", returncode=1
            )
        self.stdout.write(f"The {kind} on {host} sent its heartbeat {age:.0f} s ago.")
