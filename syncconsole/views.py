"""A person's profile page: the time zone the console shows them times in."""

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from .permissions import sync_user_required
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
