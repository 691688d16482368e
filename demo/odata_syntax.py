"""Reading OData query text: where a `$filter`, a function call or an `$expand` splits into
its parts, outside the literals, groups and arrays it holds.

A literal may hold anything a separator is made of: `name eq 'Smith and Sons'`, or
`PropertyValues=["O'Brien","a, b"]`. Outside arrays a string literal is OData's, in single
quotes with a quote doubled inside (`'O''Brien'`); inside an array it is JSON's, in double
quotes with backslash escapes (Dataverse also takes single quotes there, with the same
escapes: a doubled quote ends one string and starts another)."""

import re

HIDDEN = "\0"


def _skip_odata_string(text: str, start: int) -> int:
    """The index after the OData string literal that opens at `start`."""
    i = start + 1
    while i < len(text):
        if text[i] == "'":
            if i + 1 < len(text) and text[i + 1] == "'":
                i += 2
                continue
            return i + 1
        i += 1
    return len(text)


def _skip_json_string(text: str, start: int) -> int:
    """The index after the JSON string that opens at `start` (its quote closes it)."""
    quote, i = text[start], start + 1
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == quote:
            return i + 1
        i += 1
    return len(text)


def top_level(text: str) -> str:
    """`text` with everything inside literals, parentheses and brackets hidden: what is left
    in place are the characters a separator at the top level may be made of."""
    shown = list(text)
    depth = brackets = 0
    i = 0
    while i < len(text):
        char = text[i]
        if char == "'" or (char == '"' and brackets):
            end = _skip_json_string(text, i) if brackets else _skip_odata_string(text, i)
            shown[i:end] = HIDDEN * (end - i)
            i = end
            continue
        if char in "([":
            depth += 1
            brackets += char == "["
        elif char in ")]" and depth:
            depth -= 1
            brackets -= char == "]" and brackets > 0
        elif depth:
            shown[i] = HIDDEN
        i += 1
    return "".join(shown)


def split_top_level(text: str, separator: str) -> list[str]:
    """The parts of `text` between the top-level matches of the `separator` pattern (e.g.
    r"\\s+and\\s+" or ","), each part as written."""
    parts, last = [], 0
    for match in re.finditer(separator, top_level(text)):
        parts.append(text[last : match.start()])
        last = match.end()
    parts.append(text[last:])
    return parts
