from django.apps import AppConfig


class SyncConsoleConfig(AppConfig):
    name = "syncconsole"
    verbose_name = "Sync Console"

    def ready(self) -> None:
        from . import checks, timezones  # noqa: F401 (system checks, sign-in receiver)
