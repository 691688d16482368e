"""Ranges of an app's record keys, for sharing a full job's pages out to parallel passes.

Both apps key their records with GUIDs (Business Central's `id`, Dataverse's `<table>id`),
which they make at random: equal slices of the GUID space hold about as many records each.
A pass reads its range with the app's own `$filter` on the key (`ge` the range's start, `lt`
its end, both documented for Edm.Guid), and the app pages through it by keyset as through
the whole table, so the passes together read every record exactly once."""

import re
import uuid

GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
MAX_SHARES = 64
SPACE = 1 << 128


def is_guid(value: str) -> bool:
    return bool(GUID.match(value))


def guid_ranges(count: int) -> list[tuple[str, str]]:
    """`count` ranges (start included, end excluded; "" for the open ends) that split the
    GUID space into equal slices, in key order."""
    count = max(1, min(count, MAX_SHARES))
    bounds = [str(uuid.UUID(int=SPACE * i // count)) for i in range(1, count)]
    starts = ["", *bounds]
    ends = [*bounds, ""]
    return list(zip(starts, ends, strict=True))


def range_condition(key: str, low: str, high: str, after: str = "", condition: str = "") -> str:
    """The `$filter` of one range of `key` (`after`: the last key already done, read past),
    with the mapping's own `condition`, if any, around it."""
    for bound in (low, high, after):
        if bound and not is_guid(bound):
            raise ValueError(f"'{bound}' is not a GUID.")
    condition = condition.strip()
    # "and" binds before "or": a condition with an "or" keeps its meaning in parentheses.
    if re.search(r"\sor\s", condition, re.IGNORECASE):
        condition = f"({condition})"
    parts = [condition] if condition else []
    if after:
        parts.append(f"{key} gt {after}")
    elif low:
        parts.append(f"{key} ge {low}")
    if high:
        parts.append(f"{key} lt {high}")
    return " and ".join(parts)
