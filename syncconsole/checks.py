"""Deployment checks of our own, run by `manage.py check --deploy`."""

import ipaddress

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register

from .encryption import KEY_VARIABLE, configured_keys, invalid_keys


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


@register(Tags.security)
def served_with_its_own_secret_key(app_configs, **kwargs):
    """Not only a deployment check: a console that answers other hosts with DEBUG off is a
    deployment, whether or not someone ran `check --deploy`; sessions, CSRF tokens and signed
    confirmations must not rest on a key anyone can read in the source."""
    if (
        not settings.DEBUG
        and settings.SERVED_BEYOND_THIS_MACHINE
        and settings.SECRET_KEY == settings.DEFAULT_SECRET_KEY
    ):
        return [
            Error(
                "SECRET_KEY is the built-in local default, with DEBUG off and ALLOWED_HOSTS "
                "naming hosts beyond this machine.",
                hint="Set the SECRET_KEY environment variable to a long random value "
                "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(50))').",
                id="syncconsole.E002",
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


@register(Tags.security)
def encryption_keys_are_valid(app_configs, **kwargs):
    return [
        Error(
            f"Key {position} of {KEY_VARIABLE} is not a Fernet key.",
            hint="Each key is 32 url-safe base64-encoded bytes, as made by "
            "cryptography.fernet.Fernet.generate_key(); separate keys with commas.",
            id="syncconsole.E003",
        )
        for position in invalid_keys()
    ]


@register(Tags.security, deploy=True)
def encryption_key_is_set(app_configs, **kwargs):
    if settings.DEBUG or configured_keys():
        return []
    return [
        Error(
            f"{KEY_VARIABLE} is not set: connection secrets are encrypted with a key derived "
            "from SECRET_KEY.",
            hint=f"Set {KEY_VARIABLE} to a Fernet key (see docs/operations/upgrades.md), then run "
            "`manage.py reencrypt_secrets`.",
            id="syncconsole.E004",
        )
    ]


@register(Tags.security)
def monitoring_networks_are_valid(app_configs, **kwargs):
    errors = []
    for network in settings.MONITORING_NETWORKS:
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError:
            errors.append(
                Error(
                    f"MONITORING_NETWORKS: {network!r} is not an address or a network.",
                    hint="Give addresses or CIDR networks separated by commas, "
                    "e.g. 10.0.0.0/8,127.0.0.1.",
                    id="syncconsole.E006",
                )
            )
    return errors


@register()
def heartbeats_fit_the_readiness_limits(app_configs, **kwargs):
    """A worker or beat that beats less often than /readyz expects would be reported down
    between two of its heartbeats."""
    interval = settings.PROCESS_HEARTBEAT_SECONDS
    errors = []
    if interval <= 0:
        errors.append(
            Error(
                "PROCESS_HEARTBEAT_SECONDS must be above 0.",
                hint="The default is 15 seconds.",
                id="syncconsole.E007",
            )
        )
    for name in ("READYZ_WORKER_HEARTBEAT_MAX_AGE", "READYZ_BEAT_MAX_AGE"):
        if getattr(settings, name) <= interval:
            errors.append(
                Error(
                    f"{name} ({getattr(settings, name):g} s) is not above "
                    f"PROCESS_HEARTBEAT_SECONDS ({interval:g} s): /readyz would report a "
                    "healthy process as down between its heartbeats.",
                    hint=f"Set {name} to a few heartbeats, e.g. four times "
                    "PROCESS_HEARTBEAT_SECONDS.",
                    id="syncconsole.E007",
                )
            )
    return errors
