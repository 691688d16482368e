"""Token authentication: `Authorization: Bearer <key>`."""

from datetime import timedelta

from django.utils import timezone
from django.utils.crypto import constant_time_compare
from rest_framework import authentication, exceptions

from .models import LOOKUP_LENGTH, ApiToken, hash_key

# Marking every request would write on every read; once a minute is enough to see use.
LAST_USED_PRECISION = timedelta(minutes=1)


class ApiTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() not in (b"bearer", b"token"):
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Send the token as: Authorization: Bearer <key>.")
        try:
            key = header[1].decode("ascii")
        except UnicodeError:
            raise exceptions.AuthenticationFailed("The token is not valid.") from None
        token = (
            ApiToken.objects.select_related("user").filter(lookup=key[:LOOKUP_LENGTH]).first()
            if len(key) > LOOKUP_LENGTH
            else None
        )
        if token is None or not constant_time_compare(token.key_hash, hash_key(key)):
            raise exceptions.AuthenticationFailed("The token is not valid.")
        if not token.is_usable:
            raise exceptions.AuthenticationFailed("The token was revoked or has expired.")
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("The token's user is inactive.")
        now = timezone.now()
        if token.last_used_at is None or now - token.last_used_at > LAST_USED_PRECISION:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return token.user, token

    def authenticate_header(self, request) -> str:
        return f'{self.keyword} realm="api"'
