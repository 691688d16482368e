"""Celery beat's scheduler: django-celery-beat's database scheduler, which also writes beat's
heartbeat (syncconsole.heartbeats) at its ticks, at most every PROCESS_HEARTBEAT_SECONDS.

Beat ticks at least every max interval (5 seconds by default) whether a task is due or not,
so a beat that stops ticking (stopped, frozen, cut off from the database) stops beating."""

import time

from django.conf import settings
from django_celery_beat.schedulers import DatabaseScheduler

from . import heartbeats
from .models import ProcessHeartbeat


class HeartbeatScheduler(DatabaseScheduler):
    _last_heartbeat: float | None = None

    def tick(self, *args, **kwargs):
        delay = super().tick(*args, **kwargs)
        now = time.monotonic()
        due = (
            self._last_heartbeat is None
            or now - self._last_heartbeat >= settings.PROCESS_HEARTBEAT_SECONDS
        )
        if due and heartbeats.record_safely(ProcessHeartbeat.BEAT, heartbeats.beat_name()):
            self._last_heartbeat = now
        # Wake up in time for the next heartbeat even when no task is due before it.
        return min(delay, settings.PROCESS_HEARTBEAT_SECONDS)
