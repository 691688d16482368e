"""Each person reads times in their own zone, chosen on their profile page (UTC until then),
and every time on the pages carries its zone's abbreviation."""

import re
from datetime import UTC, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.conf import settings
from django.template import Context, Template
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from errors.grouping import figures_for
from errors.models import BulkAction, Category, ErrorGroup
from sync.mapping_health import backlog_trends, record_snapshot
from sync.services import paused_message
from syncconsole.models import Profile
from syncconsole.timezones import SESSION_KEY, set_time_zone
from tests.conftest import PASSWORD
from tests.factories import make_error, make_mapping
from triage.bulk import scope_of

pytestmark = pytest.mark.django_db
PROFILE = reverse("profile")
TOKYO = ZoneInfo("Asia/Tokyo")  # UTC+9 all year: no summer time to make a test depend on


def last_evening_utc():
    """The latest 20:00 UTC that has passed: 05:00 of the next day in Tokyo."""
    now = timezone.now()
    evening = now.replace(hour=20, minute=0, second=0, microsecond=0)
    return evening if evening <= now else evening - timedelta(days=1)


def shown(moment, seconds: bool = False) -> str:
    """A time as the pages write it in Tokyo: to the minute, a no-break space, the zone."""
    local = moment.astimezone(TOKYO)
    return f"{local:%Y-%m-%d %H:%M{':%S' if seconds else ''}}\u00a0JST"


def test_times_are_shown_in_utc_with_its_name_until_a_zone_is_chosen(staff_client):
    entry = make_error(age=timedelta(hours=2))
    html = staff_client.get(reverse("errors:list")).content.decode()
    assert f"{entry.created_at:%Y-%m-%d %H:%M}\u00a0UTC" in html
    profile = staff_client.get(PROFILE).content.decode()
    assert '<option value="UTC" selected>' in profile


def test_the_profile_page_keeps_the_zone_and_every_page_follows_it(staff_client, staff_user):
    entry = make_error(category=Category.CONFLICT, age=timedelta(hours=3))
    response = staff_client.post(PROFILE, {"time_zone": "Asia/Tokyo"}, follow=True)
    assert response.status_code == 200
    assert "Times are now shown in Asia/Tokyo." in response.content.decode()
    assert Profile.objects.get(user=staff_user).time_zone == "Asia/Tokyo"
    assert '<option value="Asia/Tokyo" selected>' in response.content.decode()

    assert shown(entry.created_at) in staff_client.get(reverse("errors:list")).content.decode()
    detail = staff_client.get(entry.get_absolute_url()).content.decode()
    assert shown(entry.created_at, seconds=True) in detail
    problems = staff_client.get(reverse("errors:groups")).content.decode()
    assert shown(entry.created_at) in problems


def test_a_zone_that_is_not_one_is_refused_and_nothing_changes(staff_client, staff_user):
    for name in ("Mars/Olympus_Mons", "localtime", ""):
        response = staff_client.post(PROFILE, {"time_zone": name})
        assert response.status_code == 400, name
        assert 'aria-invalid="true"' in response.content.decode()
    assert not Profile.objects.filter(user=staff_user).exists()


def test_the_profile_is_for_people_who_signed_in(client):
    response = client.get(PROFILE)
    assert response.status_code == 302 and reverse("login") in response["Location"]


def test_the_header_leads_from_the_user_name_to_the_profile(staff_client):
    html = staff_client.get(reverse("errors:groups")).content.decode()
    assert re.search(rf'<a class="who" href="{PROFILE}"[^>]*>triager</a>', html)


def test_an_account_without_a_role_has_no_profile_to_open(client, plain_user):
    client.force_login(plain_user)
    assert client.get(PROFILE).status_code == 403
    html = client.get(reverse("errors:groups")).content.decode()  # the refusal page
    assert f'href="{PROFILE}"' not in html and '<span class="who">sales</span>' in html


def test_the_zone_is_read_when_a_person_signs_in(client, staff_user):
    set_time_zone(staff_user, "Asia/Tokyo")
    entry = make_error(age=timedelta(hours=1))
    client.post(reverse("login"), {"username": "triager", "password": PASSWORD})
    assert client.session[SESSION_KEY] == "Asia/Tokyo"
    assert shown(entry.created_at) in client.get(reverse("errors:list")).content.decode()


def test_a_session_from_before_the_profile_reads_the_zone_once(staff_client, staff_user):
    Profile.objects.create(user=staff_user, time_zone="Asia/Tokyo")
    session = staff_client.session
    session.pop(SESSION_KEY, None)
    session.save()
    entry = make_error(age=timedelta(hours=1))
    assert shown(entry.created_at) in staff_client.get(reverse("errors:list")).content.decode()
    assert staff_client.session[SESSION_KEY] == "Asia/Tokyo"


def test_the_date_filters_count_days_in_the_persons_zone(staff_client, staff_user):
    evening = last_evening_utc()
    entry = make_error(created_at=evening)
    tokyo_day = evening.astimezone(TOKYO).date().isoformat()  # the next day in UTC terms
    query = {"created_after": tokyo_day, "created_before": tokyo_day}

    in_utc = staff_client.get(reverse("errors:list"), query)
    assert entry not in in_utc.context["page"].items

    staff_client.post(PROFILE, {"time_zone": "Asia/Tokyo"})
    in_tokyo = staff_client.get(reverse("errors:list"), query)
    assert [e.pk for e in in_tokyo.context["page"].items] == [entry.pk]


def test_a_bulk_action_reads_its_days_in_the_zone_of_who_asked(staff_user):
    """The worker runs in the console's zone; the entries it acts on are the ones the person
    was shown, whose days were their own."""
    evening = last_evening_utc()
    entry = make_error(created_at=evening)
    tokyo_day = evening.astimezone(TOKYO).date().isoformat()
    set_time_zone(staff_user, "Asia/Tokyo")
    bulk = BulkAction.objects.create(
        action=BulkAction.Action.RESOLVE,
        scope=BulkAction.Scope.FILTER,
        filter_query=f"created_after={tokyo_day}&created_before={tokyo_day}",
        upper_bound_id=entry.pk,
        requested_by=staff_user,
    )
    assert list(scope_of(bulk)) == [entry]


def test_a_snooze_until_a_time_is_read_in_the_persons_zone(staff_client):
    entry = make_error(category=Category.CONFLICT)
    staff_client.post(PROFILE, {"time_zone": "Asia/Tokyo"})
    until = (timezone.now() + timedelta(days=2)).astimezone(TOKYO)
    until = until.replace(hour=10, minute=0, second=0, microsecond=0)
    response = staff_client.post(
        reverse("errors:group_set_status", args=[entry.group_id]),
        {"status": "snoozed", "snooze_until": f"{until:%Y-%m-%dT%H:%M}"},
        follow=True,
    )
    html = response.content.decode()
    assert f"until {until:%Y-%m-%d %H:%M} JST" in html  # the message, in the person's zone
    assert 'id="snooze-zone">Asia/Tokyo<' in html
    assert ErrorGroup.objects.get(pk=entry.group_id).snoozed_until == until
    # The audit log's summary is written once for everyone: in UTC, and says so.
    event = AuditEvent.objects.get(summary__startswith="Problem marked snoozed")
    assert f"until {until.astimezone(UTC):%Y-%m-%d %H:%M} UTC" in event.summary


@pytest.fixture
def late_evening():
    """The clock at 20:00 UTC today (ticking on): already tomorrow in Tokyo."""
    evening = timezone.now().replace(hour=20, minute=0, second=0, microsecond=0)
    with time_machine.travel(evening, tick=True):
        yield evening


def test_the_figures_count_the_consoles_days_whoever_reads_them(late_evening):
    """The days of the problems' and mappings' figures are the console's (TIME_ZONE): a
    reader in Tokyo sees today's bar where the entries of today are counted."""
    entry = make_error(age=timedelta(0))
    group = ErrorGroup.objects.get(pk=entry.group_id)
    mapping = make_mapping()
    with timezone.override(TOKYO):
        bars = figures_for([group])[group.pk].trend
        snapshot = record_snapshot(mapping.pk)
        backlog = backlog_trends([mapping.pk])[mapping.pk]
    assert (bars[-1].day, bars[-1].count) == (late_evening.date(), 1)
    assert snapshot.day == late_evening.date()
    assert backlog[-1].day == late_evening.date()


def test_a_paused_mappings_message_names_the_zone_of_its_time():
    mapping = make_mapping(paused_at=timezone.now(), paused_reason="No privilege.")
    with timezone.override(TOKYO):
        assert shown(mapping.paused_at).replace("\u00a0", " ") in paused_message(mapping)


def test_the_moment_filter_writes_the_zone_and_nothing_for_no_time():
    template = Template(
        '{% load console %}[{{ t|moment }}][{{ t|moment:"seconds" }}][{{ n|moment }}]'
    )
    moment = timezone.now().replace(microsecond=0)
    with timezone.override(TOKYO):
        text = template.render(Context({"t": moment, "n": None}))
    assert text == f"[{shown(moment)}][{shown(moment, seconds=True)}][]"


# A time formatted without its zone: a date filter with hours and no "T" (the zone), or a
# strftime with hours and no %Z. E-mails and the demo apps' own pages are not the console's.
TIME_WITHOUT_ZONE = re.compile(r'\|date:"(?=[^"]*[HGgh])(?![^"]*T)[^"]*"')


def test_no_template_writes_a_time_without_its_zone():
    templates = Path(settings.BASE_DIR) / "templates"
    offenders = [
        f"{path.relative_to(templates)}: {match.group(0)}"
        for path in templates.rglob("*.html")
        if path.relative_to(templates).parts[0] != "demo"
        for match in TIME_WITHOUT_ZONE.finditer(path.read_text())
    ]
    assert not offenders
