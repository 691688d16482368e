from django.apps import AppConfig, apps
from django.db.models.signals import post_migrate


class ErrorsConfig(AppConfig):
    name = "errors"
    verbose_name = "Sync errors"

    def ready(self) -> None:
        # The problems' figures need nothing here: the entries' triggers keep them for every
        # insert, update and delete (errors/sql, docs/development/database.md).
        post_migrate.connect(_keep_roles, dispatch_uid="errors-roles")
        # Imported when the models are loaded, as Django asks of modules that register checks.
        from . import checks  # noqa: F401


def _keep_roles(sender, app_config=None, using="default", **kwargs) -> None:
    # After the last app's permissions exist: administrators get those of new models too.
    if app_config is not None and app_config is list(apps.get_app_configs())[-1]:
        from .roles import ensure_roles  # it uses the models, not importable before ready()

        ensure_roles()
