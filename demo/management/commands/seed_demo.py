from django.core.management.base import BaseCommand

from demo.seed import demo_exists, remove_demo, seed_demo


class Command(BaseCommand):
    help = (
        "Load the demo ERP and CRM data and run real sync jobs between them. The demo apps "
        "must be served at --base-url (default DEMO_BASE_URL)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--reset", action="store_true", help="Delete the demo data first.")
        parser.add_argument("--customers", type=int, default=60, help="How many ERP customers.")
        parser.add_argument("--base-url", help="Where the demo apps are served.")

    def handle(self, *args, reset: bool, customers: int, base_url: str | None, **options):
        if reset:
            remove_demo()
        elif demo_exists():
            self.stdout.write("Demo data is already there (use --reset to rebuild it).")
            return
        counts = seed_demo(base_url=base_url, customers=customers)
        summary = ", ".join(f"{value} {key}" for key, value in counts.items())
        self.stdout.write(self.style.SUCCESS(f"Demo data loaded from real sync runs: {summary}."))
