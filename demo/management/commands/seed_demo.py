from django.core.management.base import BaseCommand

from demo.seed import demo_exists, remove_demo, seed_demo


class Command(BaseCommand):
    help = "Load the demo ERP and CRM records, a connection, jobs, couplings and sync errors."

    def add_arguments(self, parser):
        parser.add_argument("--reset", action="store_true", help="Delete the demo data first.")
        parser.add_argument("--errors", type=int, default=400, help="How many error entries.")
        parser.add_argument("--base-url", help="Where the demo apps are served (links).")

    def handle(self, *args, reset: bool, errors: int, base_url: str | None, **options):
        if reset:
            remove_demo()
        elif demo_exists():
            self.stdout.write("Demo data is already there (use --reset to rebuild it).")
            return
        counts = seed_demo(base_url=base_url, error_count=errors)
        summary = ", ".join(f"{value} {key}" for key, value in counts.items())
        self.stdout.write(self.style.SUCCESS(f"Demo data loaded: {summary}."))
