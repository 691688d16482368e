"""Token authentication: `Authorization: Bearer <key>`."""

from datetime import timedelta

from django.utils import timezone
from django.utils.crypto import constant_time_compare
from rest_framework import authentication, exceptions

from . import lockout
from .models import LOOKUP_LENGTH, ApiToken, hash_key

# Marking every request would write on every read; once a minute is enough to see use.
LAST_USED_PRECISION = timedelta(minutes=1)


class ApiTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() not in (b"bearer", b"token"):
            return None
        # A locked address is refused even with a valid token: otherwise each guess would
        # still say whether it was right, and the lock would not slow the guessing down.
        if wait := lockout.locked_for(request):
            raise locked_out(wait)
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Send the token as: Authorization: Bearer <key>.")
        try:
            key = header[1].decode("ascii")
        except UnicodeError:
            raise self.wrong_token(request) from None
        token = (
            ApiToken.objects.select_related("user").filter(lookup=key[:LOOKUP_LENGTH]).first()
            if len(key) > LOOKUP_LENGTH
            else None
        )
        if token is None or not constant_time_compare(token.key_hash, hash_key(key)):
            raise self.wrong_token(request)
        if not token.is_usable:
            raise exceptions.AuthenticationFailed("The token was revoked or has expired.")
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("The token's user is inactive.")
        now = timezone.now()
        if token.last_used_at is None or now - token.last_used_at > LAST_USED_PRECISION:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return token.user, token

    def wrong_token(self, request) -> exceptions.APIException:
        """A key no token has counts towards its address's lock; revoked and expired tokens
        do not, as whoever sends one once held the key."""
        if wait := lockout.record_failure(request):
            return locked_out(wait)
        return exceptions.AuthenticationFailed("The token is not valid.")

    def authenticate_header(self, request) -> str:
        return f'{self.keyword} realm="api"'


def locked_out(wait: int) -> exceptions.Throttled:
    """429 with Retry-After (DRF sets it from `wait`)."""
    minutes = max(1, -(-wait // 60))
    return exceptions.Throttled(
        wait=wait,
        detail=(
            "Too many wrong API tokens were sent from this address: token authentication "
            f"from it is refused for {minutes} more minute{'s' if minutes > 1 else ''}."
        ),
    )
