"""How a connector slows down when an app asks it to: the service protection limits of
Dataverse and the rate limits of Business Central.

- Dataverse ("Service protection API limits",
  https://learn.microsoft.com/power-apps/developer/data-platform/api-limits): per user and web
  server, 6,000 requests and 20 minutes of combined execution time within a sliding window of
  5 minutes, and 52 concurrent requests; beyond them 429 Too Many Requests with a Retry-After
  in seconds and the error code 0x80072322 (-2147015902, requests), 0x80072321
  (-2147015903, execution time) or 0x80072326 (-2147015898, concurrent requests). A client
  that keeps sending makes the wait longer, so it must not send again before Retry-After.
- Business Central ("Working with API limits in Dynamics 365 Business Central",
  https://learn.microsoft.com/dynamics365/business-central/dev-itpro/api-reference/v2.0/dynamics-rate-limits,
  and "Operational Limits for Business Central Online",
  https://learn.microsoft.com/dynamics365/business-central/dev-itpro/administration/operational-limits-online):
  429 Too Many Requests when the rate or the queue is exceeded, with a cool-off period
  (exponential back-off with randomization) where no Retry-After says how long; 503 when the
  service is busy; 504 Gateway Timeout after 10 minutes of execution; 408 Request Timeout
  after the 8-minute operation timeout.

A connector waits within two bounds: no single wait longer than `max_wait`, and no more than
`budget` seconds of waiting in all (one connector serves one job). Beyond either, it raises
Throttled and the job pauses: a job that goes on with it is queued to start when the app
said it could be called again."""

import email.utils
import random
from dataclasses import dataclass
from datetime import UTC, datetime

from .base import ConnectorError, Throttled

# The answers that ask a client to slow down or come back later rather than saying that a
# request is wrong: they pause a job when they last, and never fail a record.
PAUSING_STATUSES = frozenset({408, 429, 503, 504})
# Dataverse's service protection errors, by the hexadecimal code its Web API answers with.
SERVICE_PROTECTION_LIMITS = {
    "0x80072322": "the number of requests",
    "0x80072321": "the combined execution time of requests",
    "0x80072326": "the number of concurrent requests",
}
# The longest a paused job waits before the job that goes on with it starts: a job queued for
# longer than 30 minutes is given up (sync.services), and a broker hands a task out again
# after its visibility timeout.
MAX_RESUME_DELAY = 900.0
# The shortest wait between two attempts, whatever a setting says: a wait of nothing would
# never use up the budget.
MIN_WAIT = 0.01


def retry_after_seconds(value: str, now: datetime | None = None) -> float | None:
    """The seconds a Retry-After header asks for (RFC 9110 section 10.2.3: a number of
    seconds, or an HTTP date); None for a value that is neither (digits of other scripts
    included)."""
    value = value.strip()
    if not value:
        return None
    if value.isascii() and value.isdecimal():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:  # "-0000": a time without a known zone
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - (now or datetime.now(UTC))).total_seconds())


def backoff_delay(attempt: int, base: float, cap: float) -> float:
    """The wait before attempt `attempt` + 1 when the app did not say: doubling from `base`,
    with up to half again of random jitter, so that clients held back together do not all
    come back at once; at most `cap`."""
    delay = max(base, MIN_WAIT) * 2 ** (attempt - 1)
    delay += random.uniform(0, delay / 2)  # noqa: S311 - jitter, not security
    return min(delay, cap)


def limit_named(error: ConnectorError) -> str:
    """Which of Dataverse's service protection limits the error names, or ""."""
    return SERVICE_PROTECTION_LIMITS.get(error.code.lower(), "")


@dataclass
class Pacer:
    """The waiting one connector does for an app that asks it to slow down."""

    max_wait: float
    budget: float
    backoff_seconds: float
    waited: float = 0.0

    def wait_before_retry(self, error: ConnectorError, attempt: int, app_name: str) -> float:
        """How long to wait before sending the request again; raises Throttled when the job
        must pause instead (the app asks for a longer wait than one may be, or this job has
        waited its budget)."""
        hint = error.retry_after or None  # "0" says nothing useful: back off as without
        wait = (
            hint
            if hint is not None
            else backoff_delay(attempt, self.backoff_seconds, max(self.max_wait, MIN_WAIT))
        )
        if hint is not None and hint > self.max_wait:
            # Sending again before the app said would only make it wait longer.
            raise self.pause(error, hint, app_name)
        if self.waited + wait > self.budget:
            raise self.pause(error, wait, app_name)
        self.waited += wait
        return wait

    def pause(self, error: ConnectorError, resume_after: float, app_name: str) -> Throttled:
        limit = limit_named(error)
        why = f" (Dataverse's limit on {limit})" if limit else ""
        throttled = Throttled(
            f"{app_name} asked to slow down{why}: {error.message}",
            resume_after=min(max(resume_after, 1.0), MAX_RESUME_DELAY),
            cause=error,
            app_name=app_name,
        )
        asked = "no wait" if error.retry_after is None else f"{error.retry_after:.0f} s"
        throttled.detail = (
            f"{error.detail}\n\nWaited {self.waited:.1f} s of this job's "
            f"{self.budget:.0f} s for {app_name}; the app asked for {asked}."
        ).strip()
        return throttled
