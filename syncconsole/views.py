"""A person's profile page: the time zone the console shows them times in; and the
monitoring endpoints /healthz and /readyz (docs/operations/monitoring.md)."""

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_safe

from .monitoring import monitoring_only
from .permissions import sync_user_required
from .readiness import readiness
from .timezones import UnknownTimeZone, check_zone, grouped_zones, set_time_zone


class ProfileForm(forms.Form):
    time_zone = forms.ChoiceField(
        choices=grouped_zones,
        label="Time zone",
        help_text="Every time on the pages is shown in this zone, with its abbreviation.",
    )

    def clean_time_zone(self) -> str:
        try:
            return check_zone(self.cleaned_data["time_zone"])
        except UnknownTimeZone as exc:
            raise forms.ValidationError(str(exc)) from exc


@sync_user_required
@require_http_methods(["GET", "POST"])
def profile(request: HttpRequest) -> HttpResponse:
    current = timezone.get_current_timezone_name()
    if request.method == "POST":
        form = ProfileForm(request.POST)
        if form.is_valid():
            name = set_time_zone(request.user, form.cleaned_data["time_zone"], request.session)
            messages.success(request, f"Times are now shown in {name.replace('_', ' ')}.")
            return redirect("profile")
        status = 400
    else:
        form = ProfileForm(initial={"time_zone": current})
        status = 200
    context = {"form": form, "zone": current, "now": timezone.now()}
    return render(request, "profile.html", context, status=status)


@never_cache
@require_safe
def healthz(request: HttpRequest) -> HttpResponse:
    """The process answers: nothing else is looked at, so that a slow database or broker
    never gets a healthy web server restarted."""
    answer = JsonResponse({"status": "ok"})
    # Answered ahead of SecurityMiddleware (syncconsole.liveness), which would add it.
    answer["X-Content-Type-Options"] = "nosniff"
    return answer


@never_cache
@require_safe
@monitoring_only
def readyz(request: HttpRequest) -> HttpResponse:
    """Whether the console can do its work: 200 when every check passes, else 503."""
    ready, answer = readiness()
    return JsonResponse(answer, status=200 if ready else 503)
