from django.conf import settings
from django.db import models


class Profile(models.Model):
    """A person's own settings: the time zone the console shows them times in
    (syncconsole.timezones)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="console_profile"
    )
    time_zone = models.CharField(
        max_length=64, default="UTC", help_text="An IANA time zone, such as Europe/Copenhagen."
    )

    class Meta:
        verbose_name = "profile"
        verbose_name_plural = "profiles"

    def __str__(self) -> str:
        return f"Profile of {self.user}"
