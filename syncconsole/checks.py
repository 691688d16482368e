"""Deployment checks of our own, run by `manage.py check --deploy`."""

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register


@register(Tags.security, deploy=True)
def secret_key_is_set(app_configs, **kwargs):
    if settings.SECRET_KEY == settings.DEFAULT_SECRET_KEY:
        return [
            Error(
                "SECRET_KEY is the built-in local default.",
                hint="Set the SECRET_KEY environment variable to a long random value.",
                id="syncconsole.E001",
            )
        ]
    return []


@register(Tags.security, deploy=True)
def console_url_is_set(app_configs, **kwargs):
    if settings.SYNC_CONSOLE_URL == settings.DEFAULT_SYNC_CONSOLE_URL:
        return [
            Warning(
                "SYNC_CONSOLE_URL is the local default: links in alert e-mails lead to localhost.",
                hint="Set SYNC_CONSOLE_URL to the address people open the console at.",
                id="syncconsole.W001",
            )
        ]
    return []
