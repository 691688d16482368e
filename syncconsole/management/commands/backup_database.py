"""Back the database up and prove the backup restores."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from syncconsole.backups import BackupFailed, Server, backup_and_verify


class Command(BaseCommand):
    help = (
        "Writes a pg_dump (custom format) of the console's database, restores it with"
        " pg_restore into a new database on the same server, runs migrate --check against it"
        " and compares every table's rows and the problems' stored figures with the source"
        " (counted in the dump's own snapshot). Fails on any difference; the restored"
        " database is dropped afterwards unless --keep-restore."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path, help="where to write the dump")
        parser.add_argument("--database", default="default")
        parser.add_argument(
            "--restore-into",
            help="a new database to restore into (default: <name>_restore_check)",
        )
        parser.add_argument("--keep-restore", action="store_true")

    def handle(self, *args, **options):
        source = Server.from_settings(connections[options["database"]].settings_dict)
        restore_name = options["restore_into"] or f"{source.name}_restore_check"[:63]
        try:
            found = backup_and_verify(
                source, options["file"], restore_name, keep=options["keep_restore"]
            )
        except BackupFailed as error:
            raise CommandError(str(error)) from error
        entries = sum(v for k, v in found.items() if k.startswith("rows in errors_syncerror"))
        self.stdout.write(
            f"Backed up to {options['file']} and restored into {restore_name}: migrations"
            f" complete, {len(found)} figures equal ({entries} entries)."
        )
