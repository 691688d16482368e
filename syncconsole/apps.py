from django.apps import AppConfig


class SyncConsoleConfig(AppConfig):
    name = "syncconsole"
    verbose_name = "Sync Console"

    def ready(self) -> None:
        # System checks, the sign-in receiver, the worker's heartbeat receivers.
        from . import checks, heartbeats, timezones  # noqa: F401
