"""The fields of the API's request bodies. Each reads exactly what the OpenAPI description
says it reads: a JSON type is never converted from another one ("1" is not a number, 1 is
not a string or a boolean), and the rules of a text are a pattern that the description
gives as it is (api.schema)."""

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from django.core.validators import RegexValidator
from rest_framework import serializers

# Ids are PostgreSQL bigints.
MAX_ID = 2**63 - 1
# What str.strip() takes away: the characters for which str.isspace() is true.
WHITESPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
    "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
NUL = "\x00"
CONTROL = "".join(map(chr, range(32))) + "\x7f"


def char_class(chars: str, *, negated: bool = False) -> str:
    """A regular expression class of these characters, written with \\u escapes so that
    Python and the ECMA regular expressions of JSON Schema read it alike."""
    codes = sorted({ord(char) for char in chars})
    runs: list[list[int]] = []
    for code in codes:
        if runs and code == runs[-1][1] + 1:
            runs[-1][1] = code
        else:
            runs.append([code, code])
    body = "".join(
        f"\\u{first:04x}" + (f"-\\u{last:04x}" if last > first else "") for first, last in runs
    )
    return f"[{'^' if negated else ''}{body}]"


def text_pattern(forbidden: str, *, blank: bool) -> str:
    """Text without the `forbidden` characters; unless it may be blank, with one character
    at least that is not whitespace."""
    allowed = char_class(forbidden, negated=True)
    if blank:
        return f"^{allowed}*$"
    return f"^{allowed}*{char_class(forbidden + WHITESPACE, negated=True)}{allowed}*$"


class WholeMatch(RegexValidator):
    """A RegexValidator that matches the whole value (the OpenAPI description gives its
    pattern, anchored); Python's `$` would also match before a final line break."""

    def __call__(self, value):
        if not re.fullmatch(self.regex, str(value)):
            raise serializers.ValidationError(self.message, code=self.code)


class TextField(serializers.CharField):
    """A JSON string, checked as it is sent: its length (the description's maxLength) and
    its characters (its pattern). The value kept has no surrounding whitespace."""

    def __init__(self, *, forbidden: str = NUL, pattern: str = "", message: str = "", **kwargs):
        kwargs["trim_whitespace"] = False
        super().__init__(**kwargs)
        blank = self.allow_blank
        self.validators.append(
            WholeMatch(
                pattern or text_pattern(forbidden, blank=blank),
                message
                or ("No NUL characters." if blank else "Give some text (and no NUL characters)."),
            )
        )

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)

    def run_validation(self, data=serializers.empty):
        value = super().run_validation(data)
        return value.strip() if isinstance(value, str) else value


def _link_pattern() -> str:
    space = char_class(WHITESPACE)
    # Host and user: printable ASCII but the characters that end them, and the brackets
    # that urllib.parse reads as an IPv6 address; the rest: no control character or
    # whitespace.
    ascii_printable = "".join(map(chr, range(0x21, 0x7F)))
    user = char_class("".join(c for c in ascii_printable if c not in "/?#@[]"))
    host = char_class("".join(c for c in ascii_printable if c not in "/?#@:[]"))
    rest = char_class(CONTROL[:-1] + WHITESPACE, negated=True)
    return (
        f"^{space}*([Hh][Tt][Tt][Pp][Ss]?://({user}*@)?{host}+(:[0-9]{{0,5}})?"
        f"([/?#]{rest}*)?{space}*)?$"
    )


# An absolute http:// or https:// address, or nothing: what errors.links.safe_link makes a
# link of, less some addresses it would take (IPv6 hosts, hosts that are not ASCII).
LINK_PATTERN = _link_pattern()


class WholeNumberField(serializers.IntegerField):
    """A JSON integer: not a string of digits, a float or a boolean."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class IdField(WholeNumberField):
    def __init__(self, **kwargs):
        super().__init__(min_value=1, max_value=MAX_ID, **kwargs)


class FlagField(serializers.BooleanField):
    """JSON's true or false: not "yes", 1 or "on"."""

    def to_internal_value(self, data):
        if data is True or data is False:
            return data
        self.fail("invalid", input=data)


class DayField(serializers.DateField):
    """A day as the description's `date` format writes it: YYYY-MM-DD."""

    def to_internal_value(self, value):
        if not isinstance(value, str) or not DAY.fullmatch(value):
            self.fail("invalid", format="YYYY-MM-DD")
        try:
            return date.fromisoformat(value)
        except ValueError:
            self.fail("invalid", format="a real day, YYYY-MM-DD")


DAY = re.compile("[0-9]{4}-[0-9]{2}-[0-9]{2}")
# RFC 3339, as the description's `date-time` format: a time zone is always given.
MOMENT = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]+)?"
    r"([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])"
)


class MomentField(serializers.DateTimeField):
    """An RFC 3339 date and time with its offset, read in UTC. A moment near the ends of the
    calendar, which UTC cannot hold, is kept in its offset: the views refuse it as out of
    range (a 409), as they refuse a moment out of the range they take."""

    def to_internal_value(self, value):
        if not isinstance(value, str) or not MOMENT.fullmatch(value):
            self.fail("invalid", format="YYYY-MM-DDThh:mm:ss[.fraction](Z|±hh:mm)")
        day, time = value[:10], value[11:].upper()
        try:
            moment = datetime.fromisoformat(f"{day}T{time}")
        except ValueError:
            self.fail("invalid", format="a real date and time")
        try:
            return moment.astimezone(UTC)
        except OverflowError:
            return moment


def in_utc(moment: datetime) -> bool:
    """Whether UTC can hold this moment (see MomentField)."""
    return moment.utcoffset() == timedelta(0)


@dataclass(frozen=True)
class Form:
    """One shape a request body may take: the fields it may hold, those it must hold, and
    the values some of them are limited to. A body must take exactly one of its
    serializer's forms; the description gives them as `oneOf`."""

    fields: tuple[str, ...]
    required: tuple[str, ...]
    values: dict[str, tuple] = field(default_factory=dict)

    def fits(self, given: set[str], data: dict) -> bool:
        return (
            given <= set(self.fields)
            and set(self.required) <= given
            and all(data.get(name) in values for name, values in self.values.items())
        )


# A JSON object with the described fields only (additionalProperties: false): an unknown
# field, a typo of a known one, is refused rather than ignored. (A comment, not a docstring:
# the description would give it to every body.)
class StrictSerializer(serializers.Serializer):
    # When given, the body must take exactly one of these forms (see Form).
    forms: tuple[Form, ...] = ()
    forms_message = "Give the fields of one of the forms this request takes."

    def to_internal_value(self, data):
        self.given = set(data) if isinstance(data, dict) else set()
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {name[:100]: ["Unknown field."] for name in unknown[:20]}
                )
        return super().to_internal_value(data)

    def validate(self, data):
        if self.forms and sum(form.fits(self.given, data) for form in self.forms) != 1:
            raise serializers.ValidationError(self.forms_message)
        return data
