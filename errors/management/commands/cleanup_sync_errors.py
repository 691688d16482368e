from django.core.management.base import BaseCommand, CommandError

from errors import services
from errors.models import SyncErrorCleanup


class Command(BaseCommand):
    help = "Delete sync error entries older than N days (--days N) or all of them (--all)."

    def add_arguments(self, parser):
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--days", type=int, help="Delete entries older than this many days.")
        which.add_argument("--all", action="store_true", help="Delete all entries.")
        parser.add_argument(
            "--dry-run", action="store_true", help="Only say how many entries would go."
        )

    def handle(self, *args, days: int | None, all: bool, dry_run: bool, **options):
        try:
            services.check_cleanup(None if all else days)
        except services.CleanupRefused as exc:
            raise CommandError(f"--days: {exc}") from exc
        what = "entries" if all else f"entries older than {days} days"
        if dry_run:
            preview = services.preview_cleanup(days)
            self.stdout.write(
                f"Would delete {preview.total} {what} ({preview.open} of them still open)."
            )
            return
        cleanup = services.request_cleanup(
            days=None if all else days,
            trigger=SyncErrorCleanup.Trigger.COMMAND,
            run_in_background=False,
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"Deleted {cleanup.deleted_count} {what} "
                f"({cleanup.open_count} of them were still open)."
            )
        )
