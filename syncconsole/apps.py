from django.apps import AppConfig


class SyncConsoleConfig(AppConfig):
    name = "syncconsole"
    verbose_name = "Sync Console"

    def ready(self) -> None:
        from . import checks  # noqa: F401
