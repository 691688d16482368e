"""Rules that transform a written value: set it, map it, cut it to a length, replace text in
it, or clear it. Pure functions: what a rule's parameters must be, and what it makes of a
value; the engine applies a mapping's rules to the values it writes (`Rules.apply`)."""

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

SET, MAP, TRUNCATE, REPLACE, CLEAR = "set", "map", "truncate", "replace", "clear"
KINDS = {
    SET: "Set to a value",
    MAP: "Map values",
    TRUNCATE: "Cut to a length",
    REPLACE: "Replace text",
    CLEAR: "Clear",
}
# What each kind takes, and nothing else.
PARAMETERS = {
    SET: {"value"},
    MAP: {"map"},
    TRUNCATE: {"length"},
    REPLACE: {"find", "replace"},
    CLEAR: set(),
}
MAX_LENGTH = 100_000
MAX_TEXT = 1000  # a value set, found, replaced or mapped
MAX_MAP_ENTRIES = 200
# How the apps say a value is too long: the demo ERP and Business Central ("Phone No. must
# not exceed 30 characters."), Dataverse ("... exceeded the maximum allowed length of '30'").
TOO_LONG = (
    re.compile(r"must not exceed (\d{1,6}) characters"),
    re.compile(r"maximum allowed length of '(\d{1,6})'"),
)


class RuleInvalid(ValueError):
    """The rule's parameters are not valid; the messages say why, in words for a person."""

    def __init__(self, problems: list[str]):
        super().__init__(" ".join(problems))
        self.problems = problems


def length_from_message(*texts: str) -> int | None:
    """The field's length an app's refusal names ("must not exceed 30 characters"), if any."""
    for text in texts:
        for pattern in TOO_LONG:
            found = pattern.search(text or "")
            if found:
                return int(found.group(1))
    return None


def _text(value: Any, name: str, problems: list[str], *, required: bool = False) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        problems.append(f"The {name} must be text.")
        return ""
    if required and not value:
        problems.append(f"Enter the {name}.")
    if len(value) > MAX_TEXT:
        problems.append(f"The {name} can be at most {MAX_TEXT} characters.")
    return value


def cleaned(kind: Any, params: Any) -> dict[str, Any]:
    """The parameters of a rule of `kind`, checked; RuleInvalid says what is wrong."""
    if kind not in KINDS:
        raise RuleInvalid([f"The kind must be one of {', '.join(KINDS)}."])
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise RuleInvalid(["The parameters must be an object."])
    unknown = sorted(str(name) for name in set(params) - PARAMETERS[kind])
    if unknown:
        raise RuleInvalid([f"A rule that does {kind} takes no {', '.join(unknown)}."])
    problems: list[str] = []
    result: dict[str, Any] = {}
    if kind == SET:
        result["value"] = _text(params.get("value"), "value", problems)
    elif kind == MAP:
        table = params.get("map")
        if not isinstance(table, dict) or not table:
            problems.append("Give at least one value to map, from value to value (NOK to EUR).")
        elif len(table) > MAX_MAP_ENTRIES:
            problems.append(f"Map at most {MAX_MAP_ENTRIES} values.")
        else:
            result["map"] = {
                _text(old, "value mapped from", problems, required=True): _text(
                    new, "value mapped to", problems
                )
                for old, new in table.items()
            }
    elif kind == TRUNCATE:
        length = params.get("length")
        if isinstance(length, str) and length.strip().isascii() and length.strip().isdigit():
            length = int(length.strip())
        if isinstance(length, bool) or not isinstance(length, int) or not 1 <= length <= MAX_LENGTH:
            problems.append(f"The length must be a whole number from 1 to {MAX_LENGTH}.")
        else:
            result["length"] = length
    elif kind == REPLACE:
        result["find"] = _text(params.get("find"), "text to find", problems, required=True)
        result["replace"] = _text(params.get("replace"), "replacement", problems)
    if problems:
        raise RuleInvalid(problems)
    return result


def apply(kind: str, params: dict[str, Any], value: Any) -> Any:
    """What a rule makes of a value; a value it does not concern is left as it is."""
    if kind == SET:
        return params["value"]
    if kind == CLEAR:
        return None
    if kind == MAP:
        key = value if isinstance(value, str) else ("" if value is None else str(value))
        return params["map"].get(key, value)
    if not isinstance(value, str):
        return value
    if kind == TRUNCATE:
        return value[: params["length"]]
    if kind == REPLACE:
        return value.replace(params["find"], params["replace"])
    raise ValueError(kind)


def describe(kind: str, params: dict[str, Any]) -> str:
    """A rule in words: "cut to 30 characters", "map NOK to EUR"."""
    if kind == SET:
        return f'set to "{params.get("value", "")}"'
    if kind == CLEAR:
        return "clear"
    if kind == TRUNCATE:
        return f"cut to {params.get('length')} characters"
    if kind == REPLACE:
        return f'replace "{params.get("find", "")}" with "{params.get("replace", "")}"'
    pairs = ", ".join(f"{old} to {new}" for old, new in (params.get("map") or {}).items())
    return f"map {pairs}"


@dataclass(frozen=True)
class Step:
    """One rule as the engine applies it: to the value written to `field`."""

    field: str
    kind: str
    params: dict[str, Any]


class Rules:
    """The rules in force for the values one pass writes, applied in order."""

    def __init__(self, steps: Iterable[Step] = ()):
        self.steps = list(steps)

    def __bool__(self) -> bool:
        return bool(self.steps)

    def apply(self, values: dict[str, Any]) -> dict[str, Any]:
        """The values with each rule applied to its field, where the values hold it."""
        if not self.steps:
            return values
        values = dict(values)
        for step in self.steps:
            if step.field in values:
                values[step.field] = apply(step.kind, step.params, values[step.field])
        return values
