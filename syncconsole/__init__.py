"""Sync Console: triage for the errors of a two-way ERP/CRM synchronization."""

from .celery import app as celery_app

__all__ = ("celery_app",)
