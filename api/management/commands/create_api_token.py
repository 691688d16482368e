"""`manage.py create_api_token <username> <name> [--integration NAME]`: prints the key once."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from api.models import ApiToken


class Command(BaseCommand):
    help = "Create an API token for a user and print its key (it is shown only this once)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("name", help="What the token is for.")
        parser.add_argument("--integration", default="", help="For another integration: its name.")

    def handle(self, *args, username, name, integration, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"There is no user {username!r}.")
        if not name.strip() or len(name) > 100:
            raise CommandError("Give the token a name of 1 to 100 characters.")
        if len(integration) > 100:
            raise CommandError("The integration's name has at most 100 characters.")
        _, key = ApiToken.issue(
            user,
            name.strip(),
            integration=integration.strip(),
            issued_through="manage.py create_api_token",
        )
        self.stdout.write(key)
