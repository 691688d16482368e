"""Field mappings: which value goes where, in which direction, transformed how."""

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

TRANSFORMS = {
    "": lambda value: value,
    "upper": lambda value: value.upper() if isinstance(value, str) else value,
    "lower": lambda value: value.lower() if isinstance(value, str) else value,
    "trim": lambda value: value.strip() if isinstance(value, str) else value,
}
TO_DESTINATION, FROM_DESTINATION = "to_destination", "from_destination"
DIRECTIONS = ("bidirectional", TO_DESTINATION, FROM_DESTINATION)
SETTINGS = {
    "source",
    "destination",
    "direction",
    "enabled",
    "constant",
    "transform",
    "clear_on_failure",
}


@dataclass(frozen=True)
class FieldPair:
    read: str
    write: str
    constant: Any = None
    has_constant: bool = False
    transform: str = ""
    clear_on_failure: bool = False

    def value(self, values: dict[str, Any]) -> Any:
        value = self.constant if self.has_constant else values.get(self.read)
        return TRANSFORMS.get(self.transform, TRANSFORMS[""])(value)


def field_pairs(field_mappings: list[dict], direction: str) -> list[FieldPair]:
    """The enabled pairs that carry values in `direction`, read side first."""
    pairs = []
    for spec in field_mappings or []:
        if not spec.get("enabled", True):
            continue
        spec_direction = spec.get("direction", "bidirectional")
        if spec_direction not in ("bidirectional", direction):
            continue
        source, destination = spec["source"], spec["destination"]
        read, write = (
            (source, destination) if direction == TO_DESTINATION else (destination, source)
        )
        if "constant" in spec and direction != TO_DESTINATION:
            continue  # a constant is written to the destination only
        pairs.append(
            FieldPair(
                read=read,
                write=write,
                constant=spec.get("constant"),
                has_constant="constant" in spec,
                transform=spec.get("transform", ""),
                clear_on_failure=bool(spec.get("clear_on_failure", False)),
            )
        )
    return pairs


def same_value(a: Any, b: Any) -> bool:
    """Equal as the apps mean it: 12.5 and "12.50" are the same price, None and "" the same text."""
    if a in (None, "") and b in (None, ""):
        return True
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float, Decimal)) or isinstance(b, (int, float, Decimal)):
        try:
            return Decimal(str(a)) == Decimal(str(b))
        except (InvalidOperation, ValueError):
            return False
    return a == b


def field_mapping_problems(specs: Any) -> list[str]:
    """What is wrong with a table mapping's field mappings, in words for the admin."""
    if not isinstance(specs, list):
        return ["Field mappings must be a list of objects."]
    problems = []
    for n, spec in enumerate(specs, 1):
        if not isinstance(spec, dict):
            problems.append(f"Field mapping {n} must be an object.")
            continue
        for side in ("source", "destination"):
            if not isinstance(spec.get(side), str) or not spec[side].strip():
                problems.append(f"Field mapping {n} needs a {side} field name.")
        if spec.get("direction", "bidirectional") not in DIRECTIONS:
            problems.append(f"Field mapping {n}: direction must be one of {', '.join(DIRECTIONS)}.")
        if spec.get("transform", "") not in TRANSFORMS:
            names = ", ".join(t for t in TRANSFORMS if t)
            problems.append(f"Field mapping {n}: transform must be one of {names}.")
        for flag in ("enabled", "clear_on_failure"):
            if flag in spec and not isinstance(spec[flag], bool):
                problems.append(f"Field mapping {n}: {flag} must be true or false.")
        unknown = sorted(set(spec) - SETTINGS)
        if unknown:
            problems.append(f"Field mapping {n}: unknown setting {', '.join(unknown)}.")
    return problems
