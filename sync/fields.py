"""Field mappings: which value goes where, in which direction, transformed how.

A field mapping of type "value" (the default) copies a value. One of type "lookup" links a
code on the source side (a currency code, a customer number) with a Dataverse lookup on the
destination side (transactioncurrencyid, parentcustomerid_account): the record the code
stands for is found in the destination's table and written as `<navigation>@odata.bind`;
the other way, the record the lookup property `_<name>_value` refers to gives back its code
(sync/lookups.py resolves them). One of type "exchange rate" writes, for the currency code it
reads, that currency's exchange rate in force today in the source app (Business Central keeps
rates apart from its currencies; Dataverse keeps one on each transaction currency), to the
destination only."""

import re
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
    "type",
    "lookup",
}
EXCHANGE_RATE = "exchange rate"
TYPES = ("value", "lookup", EXCHANGE_RATE)
LOOKUP_SETTINGS = {"entity", "match", "mapping", "property", "label", "via", "blank"}
# `via`: the code is not the referenced source record's own, but the number of the Business
# Central company contact whose business relation names it (a contact's companyNumber).
VIA_COMPANY_CONTACT = "company contact"
VIAS = (VIA_COMPANY_CONTACT,)
# `blank`: what a blank code stands for; Business Central keeps customers in its local
# currency (LCY) with a blank currency code.
BLANK_LOCAL_CURRENCY = "local currency"
BLANKS = (BLANK_LOCAL_CURRENCY,)
BIND = "@odata.bind"
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,99}")


@dataclass(frozen=True)
class LookupSpec:
    """The record a lookup field mapping refers to.

    `navigation` is the destination's single-valued navigation property (the field mapping's
    destination) and `lookup_property` its lookup property. It refers to a record of the
    destination table `entity`, whose field `match` holds the code. With `mapping`, the
    records are that table mapping's too: a code is first the source record whose match
    field holds it, and the record it is coupled to. `via` "company contact": the code is the
    number of the company contact the source record of `mapping` is related to. `blank`
    "local currency": a blank code is the source app's local currency, and that currency is
    written back as a blank code."""

    navigation: str
    lookup_property: str
    entity: str
    match: str
    mapping: str = ""
    label: str = ""
    via: str = ""
    blank: str = ""

    @classmethod
    def of(cls, spec: dict) -> "LookupSpec":
        settings = spec.get("lookup") or {}
        navigation = spec["destination"]
        return cls(
            navigation=navigation,
            lookup_property=settings.get("property") or f"_{navigation}_value",
            entity=settings.get("entity", ""),
            match=settings.get("match", ""),
            mapping=settings.get("mapping", ""),
            label=settings.get("label", ""),
            via=settings.get("via", ""),
            blank=settings.get("blank", ""),
        )

    @property
    def bind_key(self) -> str:
        return self.navigation + BIND

    def reference(self, record_id: Any) -> str | None:
        """The `@odata.bind` value of a record it refers to: "/accounts(<id>)"."""
        if record_id in (None, ""):
            return None
        return f"/{self.entity}({str(record_id).strip('{}').lower()})"


# The annotation of a lookup property that names the table it refers to (Dataverse).
LOGICAL_NAME = "Microsoft.Dynamics.CRM.lookuplogicalname"


def logical_name(entity: str) -> str:
    """A Dataverse table's logical name from its entity set: accounts -> account,
    transactioncurrencies -> transactioncurrency."""
    if entity.endswith("ies"):
        return entity[:-3] + "y"
    return entity.removesuffix("s")


@dataclass(frozen=True)
class FieldPair:
    read: str
    write: str
    constant: Any = None
    has_constant: bool = False
    transform: str = ""
    clear_on_failure: bool = False
    # A lookup: `value` is the code or id read, which the pass resolves before writing.
    lookup: LookupSpec | None = None
    # The field of the record written to that holds what this pair writes, where it is not
    # `write`: a lookup's lookup property, where it writes the navigation property.
    compare: str = ""
    # An exchange rate: `value` is the currency code read, whose rate the pass writes.
    exchange_rate: bool = False

    @property
    def resolved(self) -> bool:
        """Whether the pass works out what it writes from what it reads (a lookup, an
        exchange rate), rather than copying it."""
        return self.lookup is not None or self.exchange_rate

    def value(self, values: dict[str, Any]) -> Any:
        value = self.constant if self.has_constant else values.get(self.read)
        return TRANSFORMS.get(self.transform, TRANSFORMS[""])(value)

    @property
    def held_field(self) -> str:
        """The field to read on the side written to, to compare with what is written."""
        return self.compare or self.write

    def held(self, values: dict[str, Any]) -> Any:
        """What a record on the side written to holds for this pair, in the form written: a
        lookup property as the bind value of the record it refers to."""
        if self.lookup is None or not self.compare:
            return values.get(self.write)
        referred = values.get(self.compare)
        if referred in (None, ""):
            return None
        # A polymorphic lookup may refer to another table than the one this pair binds.
        table = values.get(f"{self.compare}@{LOGICAL_NAME}")
        if table and table != logical_name(self.lookup.entity):
            return f"{table}:{referred}"
        return self.lookup.reference(referred)


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
        exchange_rate = spec.get("type") == EXCHANGE_RATE
        if exchange_rate and direction != TO_DESTINATION:
            continue  # a rate is computed from the source app's table of rates
        lookup = LookupSpec.of(spec) if spec.get("type") == "lookup" else None
        compare = ""
        if lookup is not None:
            if direction == TO_DESTINATION:
                write, compare = lookup.bind_key, lookup.lookup_property
            else:
                read = lookup.lookup_property
        pairs.append(
            FieldPair(
                read=read,
                write=write,
                constant=spec.get("constant"),
                has_constant="constant" in spec,
                transform=spec.get("transform", ""),
                clear_on_failure=bool(spec.get("clear_on_failure", False)),
                lookup=lookup,
                compare=compare,
                exchange_rate=exchange_rate,
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
        problems += _lookup_problems(n, spec)
    return problems


def _lookup_problems(n: int, spec: dict) -> list[str]:
    kind = spec.get("type", "value")
    if kind not in TYPES:
        return [f"Field mapping {n}: type must be one of {', '.join(TYPES)}."]
    if kind == EXCHANGE_RATE:
        return _exchange_rate_problems(n, spec)
    if kind != "lookup":
        if "lookup" in spec:
            return [f"Field mapping {n}: lookup settings need the type lookup."]
        return []
    settings = spec.get("lookup")
    if not isinstance(settings, dict):
        return [
            f"Field mapping {n}: a lookup needs its lookup settings: the table it refers to "
            '("entity") and its field holding the code ("match").'
        ]
    problems = []
    unknown = sorted(set(settings) - LOOKUP_SETTINGS)
    if unknown:
        problems.append(f"Field mapping {n}: unknown lookup setting {', '.join(unknown)}.")
    for name, value in settings.items():
        if name in LOOKUP_SETTINGS and not isinstance(value, str):
            problems.append(f"Field mapping {n}: lookup {name} must be text.")
    if not (settings.get("entity") and settings.get("match")):
        problems.append(
            f"Field mapping {n}: a lookup names the table it refers to and that table's field "
            "holding the code (entity and match)."
        )
    for name in ("entity", "match", "property"):
        value = settings.get(name)
        if isinstance(value, str) and value and not NAME.fullmatch(value):
            problems.append(f"Field mapping {n}: lookup {name} must be a field or table name.")
    via, blank = settings.get("via"), settings.get("blank")
    if isinstance(via, str) and via:
        if via not in VIAS:
            problems.append(
                f"Field mapping {n}: lookup via must be {' or '.join(VIAS)}: the code is then "
                "the number of a Business Central company contact, which stands for the "
                "customer it has a business relation with."
            )
        elif not settings.get("mapping"):
            problems.append(
                f"Field mapping {n}: a lookup via the {via} goes through the table mapping of "
                "the customers: name it in mapping (e.g. CUSTOMER)."
            )
    if isinstance(blank, str) and blank:
        if blank not in BLANKS:
            problems.append(
                f"Field mapping {n}: lookup blank must be {' or '.join(BLANKS)}: a blank code "
                "then stands for the ERP's local currency."
            )
        elif via:
            problems.append(
                f"Field mapping {n}: a lookup via the {via} takes no blank: a blank code is "
                "no company."
            )
    destination = spec.get("destination")
    if isinstance(destination, str) and not NAME.fullmatch(destination.strip() or "-"):
        problems.append(
            f"Field mapping {n}: a lookup's destination is a navigation property name, such "
            "as transactioncurrencyid."
        )
    for setting in ("constant", "transform"):
        if setting in spec:
            problems.append(f"Field mapping {n}: a lookup takes no {setting}.")
    return problems


def _exchange_rate_problems(n: int, spec: dict) -> list[str]:
    problems = []
    if spec.get("direction", "bidirectional") != TO_DESTINATION:
        problems.append(
            f"Field mapping {n}: an exchange rate is written to the destination only (direction "
            f"{TO_DESTINATION}): the source app computes it from its own table of rates."
        )
    for setting in ("constant", "transform", "lookup", "clear_on_failure"):
        if setting in spec:
            problems.append(f"Field mapping {n}: an exchange rate takes no {setting}.")
    return problems
