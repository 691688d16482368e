"""Benchmark 2: the problems page (entries grouped by fingerprint) at 1,000,000 entries.

The page reads each problem's figures (open entries, records affected, the last 14 days)
from what is kept on write; the naive way counts them from the entries of the page's
problems on every request, as the page did before. Both are timed through the real view
(server time: Django's test client, no network), median and p95 of several runs."""

from collections import defaultdict
from datetime import date, datetime, time, timedelta
from unittest import mock

from .common import analyze, median, ms, p95, sample, stage, table

FULL, QUICK = 1_000_000, 50_000
TARGET_MS = 200


def naive_figures_for(groups, today: date | None = None):
    """The figures counted from the entries of the page's groups (the way before)."""
    from django.db.models import Count, Q
    from django.db.models.functions import TruncDate
    from django.utils import timezone

    from errors.models import Status, SyncError
    from errors.trends import TREND_DAYS, GroupFigures, trend_bars

    ids = [group.pk for group in groups]
    figures = {pk: GroupFigures() for pk in ids}
    entries = SyncError.objects.filter(group_id__in=ids)
    for row in entries.values("group_id").annotate(
        open=Count("pk", filter=Q(status=Status.OPEN)),
        records=Count("source_record_id", distinct=True, filter=~Q(source_record_id="")),
    ):
        figures[row["group_id"]].open = row["open"]
        figures[row["group_id"]].records = row["records"]
    today = today or timezone.localdate()
    first = today - timedelta(days=TREND_DAYS - 1)
    per_day: dict[int, dict[date, int]] = defaultdict(dict)
    for row in (
        entries.filter(created_at__gte=timezone.make_aware(datetime.combine(first, time.min)))
        .annotate(day=TruncDate("created_at"))
        .values("group_id", "day")
        .annotate(n=Count("pk"))
    ):
        per_day[row["group_id"]][row["day"]] = row["n"]
    for pk in ids:
        figures[pk].trend = trend_bars(
            [per_day[pk].get(first + timedelta(days=i), 0) for i in range(TREND_DAYS)], first
        )
    return figures


def prepared(count: int):
    from errors.models import SyncError

    from .data import clear_errors, generate_errors

    if SyncError.objects.count() != count:
        with stage(f"generating {count:,} entries"):
            clear_errors()
            generate_errors(count, days=14)
        analyze("errors_syncerror", "errors_groupday", "errors_grouprecord", "errors_errorgroup")


def run(quick: bool) -> str:
    from django.contrib.auth.models import User
    from django.test import Client
    from django.urls import reverse

    from errors import views
    from errors.grouping import figures_for
    from errors.models import ErrorGroup

    count = QUICK if quick else FULL
    runs = 5 if quick else 15
    prepared(count)
    user, _ = User.objects.get_or_create(
        username="bench-admin", defaults={"is_staff": True, "is_superuser": True}
    )
    from django.conf import settings

    client = Client(HTTP_HOST=next(h for h in settings.ALLOWED_HOSTS if "*" not in h))
    client.force_login(user)
    url = reverse("errors:groups")

    def page():
        response = client.get(url)
        assert response.status_code == 200, response.status_code

    groups = list(ErrorGroup.objects.filter(count__gt=0)[:50])
    kept, naive = figures_for(groups), naive_figures_for(groups)
    agree = all(
        (kept[g.pk].open, kept[g.pk].records, [b.count for b in kept[g.pk].trend])
        == (naive[g.pk].open, naive[g.pk].records, [b.count for b in naive[g.pk].trend])
        for g in groups
    )
    with stage("the page, figures kept on write"):
        fast = sample(page, runs)
    with (
        stage("the page, figures counted from the entries"),
        mock.patch.object(views, "figures_for", naive_figures_for),
    ):
        slow = sample(page, max(3, runs // 3))
    rows = [
        (
            "figures kept on write (GroupDay, ErrorGroup.records)",
            ms(median(fast)),
            ms(p95(fast)),
            f"{len(fast)}",
        ),
        (
            "naive: counted from the entries per request",
            ms(median(slow)),
            ms(p95(slow)),
            f"{len(slow)}",
        ),
    ]
    met = p95(fast) < TARGET_MS
    return "\n\n".join(
        [
            "## Group view (problems page)",
            f"{count:,} entries over 14 days in {len(groups)} problems on the page "
            f"({ErrorGroup.objects.count()} in all). Server time of `GET /errors/groups/` "
            "(Django test client, whole view and template), runs after one warm-up.",
            table(["figures", "median", "p95", "runs"], rows),
            f"Ratio (median): **{median(slow) / median(fast):,.0f}×** faster than counting.",
            f"The two ways give the same figures on this page: {'yes' if agree else 'NO'}.",
            f"Target p95 < {TARGET_MS} ms: **{'met' if met else 'not met'}**.",
        ]
    )
