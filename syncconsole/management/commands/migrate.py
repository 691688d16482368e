"""Django's migrate, each statement waiting at most MIGRATION_LOCK_TIMEOUT for its locks."""

from django.conf import settings
from django.core.management.commands import migrate
from django.db import connections

from syncconsole.migration_safety import migration_lock_timeout


class Command(migrate.Command):
    help = (
        migrate.Command.help
        + " Each statement waits at most MIGRATION_LOCK_TIMEOUT milliseconds for a lock: a"
        " migration stuck behind a long transaction fails at once (run it again later) rather"
        " than holding up every query of the table queued behind it."
    )

    def handle(self, *args, **options):
        connection = connections[options["database"]]
        with migration_lock_timeout(connection, settings.MIGRATION_LOCK_TIMEOUT):
            return super().handle(*args, **options)
