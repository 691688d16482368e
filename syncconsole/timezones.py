"""The time zone each person reads times in: chosen on their profile page, UTC until then.

The zone is kept in the session, read from the profile when the person signs in, so that
pages cost no query for it; TimeZoneMiddleware activates it for each request, and every time
on the pages is written with the zone's abbreviation (the `moment` filter)."""

from functools import cache
from itertools import groupby
from zoneinfo import ZoneInfo, available_timezones

from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver
from django.utils import timezone

from .models import Profile

DEFAULT = "UTC"
SESSION_KEY = "time_zone"
# What the zone database holds but no person lives in: the machine's own zone and a
# placeholder.
NOT_PLACES = frozenset({"localtime", "Factory", "posixrules"})


class UnknownTimeZone(ValueError):
    pass


@cache
def zone_names() -> frozenset[str]:
    return frozenset(available_timezones() - NOT_PLACES)


def grouped_zones() -> list[tuple[str, list[tuple[str, str]]]]:
    """The zones by region (Africa, America, …), the others ("UTC", "CET", …) last, as
    choices for a select box."""

    def region(name: str) -> str:
        return name.split("/", 1)[0] if "/" in name else "Other"

    names = sorted(zone_names(), key=lambda name: (region(name) == "Other", region(name), name))
    return [
        (group, [(name, name.replace("_", " ")) for name in members])
        for group, members in groupby(names, key=region)
    ]


def check_zone(name: str) -> str:
    if name not in zone_names():
        raise UnknownTimeZone(f"{name!r} is not a time zone: choose one from the list.")
    return name


def zone_of(user) -> str:
    """The zone a person (a user or their id) chose on their profile page, UTC if they never
    did."""
    chosen = Profile.objects.filter(user=user).values_list("time_zone", flat=True).first()
    return chosen if chosen in zone_names() else DEFAULT


def set_time_zone(user, name: str, session=None) -> str:
    """Keep the zone a person reads times in (validated), for this session at once."""
    check_zone(name)
    Profile.objects.update_or_create(user=user, defaults={"time_zone": name})
    if session is not None:
        session[SESSION_KEY] = name
    return name


@receiver(user_logged_in, dispatch_uid="syncconsole.timezones.remember_zone")
def remember_zone(sender, request, user, **kwargs) -> None:
    if request is not None and hasattr(request, "session"):
        request.session[SESSION_KEY] = zone_of(user)


class TimeZoneMiddleware:
    """Times are shown in the signed-in person's zone (the session's, else the profile's)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        name = self.zone_for(request)
        if name:
            timezone.activate(ZoneInfo(name))
        else:  # nobody signed in: the settings' zone
            timezone.deactivate()
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()

    @staticmethod
    def zone_for(request) -> str | None:
        session = getattr(request, "session", None)
        if session is None:
            return None
        name = session.get(SESSION_KEY)
        if name is None:
            user = getattr(request, "user", None)
            if user is None or not user.is_authenticated:
                return None
            # A session from before the profile kept a zone: read it once.
            name = session[SESSION_KEY] = zone_of(user)
        return name if name in zone_names() else DEFAULT
