"""Token authentication: `Authorization: Bearer <key>`."""

import math
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cache

from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from rest_framework import authentication, exceptions

from syncconsole.permissions import PERMISSIONS_OF_USER, keep_permissions
from syncconsole.signin import client_address

from . import lockout
from .models import LOOKUP_LENGTH, ApiToken, TokenFailures, hash_key

# Marking every request would write on every read; once a minute is enough to see use.
LAST_USED_PRECISION = timedelta(minutes=1)


class ApiTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() not in (b"bearer", b"token"):
            return None
        try:
            key = header[1].decode("ascii") if len(header) == 2 else ""
        except UnicodeError:
            key = ""
        found = sign_in(request, key[:LOOKUP_LENGTH] if len(key) > LOOKUP_LENGTH else None)
        # A locked address is refused even with a valid token: otherwise each guess would
        # still say whether it was right, and the lock would not slow the guessing down.
        if found.wait:
            raise locked_out(found.wait)
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Send the token as: Authorization: Bearer <key>.")
        token = found.token
        if token is None or not constant_time_compare(token.key_hash, hash_key(key)):
            raise self.wrong_token(request)
        if not token.is_usable:
            raise exceptions.AuthenticationFailed("The token was revoked or has expired.")
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("The token's user is inactive.")
        # The permissions the role checks ask for came with the token: ModelBackend reads
        # them from the request's user object instead of two more queries.
        keep_permissions(token.user, found.permissions)
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


@dataclass
class SignIn:
    wait: int = 0  # seconds for which the address is still locked out
    token: ApiToken | None = None  # with its user
    permissions: set[str] = field(default_factory=set)  # the user's, as ModelBackend names them


def sign_in(request, lookup: str | None) -> SignIn:
    """The address's lock, and the token of that lookup with its user and the "app_label.
    codename" of every permission the user holds, their own and their groups': one
    statement of constant text, as every API request asks it (the ORM's way, four queries
    compiled anew each time, took most of a short request's time)."""
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            _sign_in_statement(),
            {
                "address": client_address(request) if lockout.enabled() else None,
                "now": now,
                "lookup": lookup,
            },
        )
        locked_until, *row = cursor.fetchone()
    found = SignIn(wait=math.ceil((locked_until - now).total_seconds()) if locked_until else 0)
    if row[0] is None:
        return found
    token_values, user_values = row[: len(_TOKEN_FIELDS)], row[len(_TOKEN_FIELDS) : -1]
    found.token = ApiToken.from_db(connection.alias, _TOKEN_FIELDS, token_values)
    found.token.user = get_user_model().from_db(connection.alias, _user_fields(), user_values)
    found.permissions = set(row[-1])
    return found


_TOKEN_FIELDS = [field.attname for field in ApiToken._meta.concrete_fields]


@cache
def _user_fields() -> list[str]:
    return [field.attname for field in get_user_model()._meta.concrete_fields]


@cache
def _sign_in_statement() -> str:
    quote = connection.ops.quote_name
    token = ", ".join(f"t.{quote(f.column)}" for f in ApiToken._meta.concrete_fields)
    user = ", ".join(f"u.{quote(f.column)}" for f in get_user_model()._meta.concrete_fields)
    return f"""
        SELECT
            (SELECT max(f.locked_until) FROM {TokenFailures._meta.db_table} AS f
             WHERE f.address = %(address)s AND f.locked_until > %(now)s),
            {token}, {user},
            ARRAY({PERMISSIONS_OF_USER.format(user="u.id")})
        FROM (VALUES (1)) AS one (x)
        LEFT JOIN {ApiToken._meta.db_table} AS t ON t.lookup = %(lookup)s
        LEFT JOIN {get_user_model()._meta.db_table} AS u ON u.id = t.user_id
    """  # noqa: S608 - the names are the models'; the values are parameters


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
