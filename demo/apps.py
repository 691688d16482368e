from django.apps import AppConfig


class DemoConfig(AppConfig):
    name = "demo"
    verbose_name = "Demo business apps"

    def ready(self) -> None:
        from . import signals

        signals.connect()
