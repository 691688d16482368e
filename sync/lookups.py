"""Resolving the lookup field mappings of one direction of a job (sync/fields.py).

To the destination, a code read on the source side (a currency code, a customer number)
becomes the record it stands for in the destination's table, written as
`<navigation>@odata.bind`; from the destination, the record a lookup property refers to gives
back its code. The codes or ids of many records are resolved together, in one or two requests
per table (a page of records at a time), and kept for the rest of the pass.

Two settings follow Business Central's own relations. Via the company contact, a code is a
contact number (a person's companyNumber): the company contact's business relation, read
through the contactsInformation navigation, names the customer, and the customer's coupling
names the record. A blank code may stand for the local currency (a customer in LCY has a
blank currencyCode): it is looked up as the local currency's code, and that currency is read
back as a blank code.

An exchange rate field mapping writes, for a currency code read, the currency's rate in
force today in the source app, read for the codes of a page in one request (Business
Central's currencyExchangeRates: units of the currency per unit of the local currency, which
is Dataverse's exchangerate against the base currency); the local currency itself is 1. A
currency without a rate in force fails its record with Business Central's own words.

A code whose record cannot be found fails its record with a clear entry (status 422, so it is
categorized by its words: a missing currency is a currency error, grouped with the others of
that currency)."""

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from django.utils import timezone

from couplings.models import Coupling

from .connectors import Connector, ConnectorError, RemoteRecord
from .connectors.business_central import exchange_rates
from .fields import (
    BLANK_LOCAL_CURRENCY,
    LOGICAL_NAME,
    TO_DESTINATION,
    VIA_COMPANY_CONTACT,
    FieldPair,
    LookupSpec,
    logical_name,
)
from .models import TableMapping

LOOKUP_FAILED = "LookupFailed"
GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# Business Central API v2.0: the contacts, and the navigation of a customer, vendor or contact
# that lists its contact information ("contactInformation resource type": contactNumber,
# contactType "Company" or "Person", relatedId, relatedType).
CONTACTS = "contacts"
CONTACTS_INFORMATION = "contactsInformation"
COMPANY = "Company"
# The relatedType of a contact's business relation to a record of each table.
RELATED_TYPES = {"customers": "Customer", "vendors": "Vendor"}


# Business Central's answer where a currency has no exchange rate in force.
NO_EXCHANGE_RATE = (
    "Currency Exchange Rate does not exist. Identification fields and values: "
    "Currency Code='{code}'"
)


@dataclass(frozen=True)
class Reference:
    """The record a lookup needed: under the referenced mapping (its id) when the lookup
    names one, on its `side` ("source" or "destination"), by `key` (its record id when known,
    else the code it was looked up by); outside any mapping, by the lookup's entity."""

    mapping_id: int | None
    side: str
    key: str
    entity: str


class LookupFailed(ConnectorError):
    """The record a lookup refers to cannot be found (or is not one the other app takes);
    `reference` names the record it needed, when the failure is its absence."""

    def __init__(self, message: str, detail: str = "", reference: Reference | None = None):
        super().__init__(message, status=422, code=LOOKUP_FAILED, detail=detail)
        self.reference = reference


@dataclass(frozen=True)
class Resolved:
    value: Any = None
    failure: str = ""
    # How it was looked up, for the entry's detail.
    detail: str = ""
    # The record whose absence (or failure) made it fail.
    reference: Reference | None = None


def code_key(value: Any) -> str:
    # The apps compare codes without regard to case (Dataverse does): so does the lookup.
    return str(value).strip().casefold()


def id_key(value: Any) -> str:
    # A GUID, as a lookup property holds it: the apps write them in lower case.
    return str(value).strip("{}").lower()


class Lookups:
    """The lookups of a pass: `value` gives a record's, resolving those of the page that
    `prepare` named at once."""

    def __init__(
        self,
        mapping: TableMapping,
        direction: str,
        source: Connector,
        destination: Connector,
        pairs: list[FieldPair],
    ):
        self.mapping, self.direction = mapping, direction
        self.source, self.destination = source, destination
        self.pairs = [pair for pair in pairs if pair.resolved]
        self.forward = direction == TO_DESTINATION
        self.resolved: dict[tuple[LookupSpec, str], Resolved] = {}
        self.mappings: dict[str, TableMapping | None] = {}
        self.pending: list[RemoteRecord] = []
        self.lcy: str | None = None  # the source app's local currency, once read
        self.rates: dict[str, Resolved] = {}  # exchange rates in force, by code key

    @property
    def write_side(self) -> str:
        return "destination" if self.forward else "source"

    def prepare(self, records: Iterable[RemoteRecord]) -> None:
        """The records of the page a pass deals with now: the first lookup one of them needs
        resolves theirs all, in a few requests (none when no record needs one)."""
        self.pending = list(records)

    def value(self, pair: FieldPair, record: RemoteRecord) -> Any:
        """What the pair writes for the record: the bind value of the record its code stands
        for, or the code of the record its lookup refers to, or the exchange rate of its
        currency. Raises LookupFailed."""
        if pair.exchange_rate:
            return self.exchange_rate(pair, record)
        assert pair.lookup is not None
        raw = self.raw(pair, record)
        if raw is None:
            return None if self.forward else ""
        key = (pair.lookup, self.key(raw))
        if key not in self.resolved:
            self.resolve(pair, [raw, *self.unresolved(pair, self.pending)])
        resolved = self.resolved[key]
        if resolved.failure:
            raise LookupFailed(resolved.failure, resolved.detail, resolved.reference)
        if not self.forward and self.is_local_currency(pair, resolved.value):
            return ""  # as the source app keeps its local currency
        return resolved.value

    def held(self, pair: FieldPair, values: dict[str, Any]) -> Any:
        """What the record written to holds for the pair, as `value` would give it: the local
        currency's own code held where a blank code stands for it is the same as blank, so
        that it is not written over and over."""
        held = pair.held(values)
        if self.forward or held in (None, ""):
            return held
        try:
            return "" if self.is_local_currency(pair, held) else held
        except ConnectorError:
            return held  # the local currency cannot be read now: compared as it is

    # -- exchange rates -------------------------------------------------------------------
    def exchange_rate(self, pair: FieldPair, record: RemoteRecord) -> float:
        """The exchange rate in force today of the currency the record's code names."""
        code = pair.value(record.values)
        if code in (None, "") or not str(code).strip():
            raise LookupFailed(
                f"The {pair.read} of this record is blank: there is no currency whose exchange "
                f"rate to write to {pair.write}."
            )
        key = code_key(code)
        if key not in self.rates:
            others = [pair.value(r.values) for r in self.pending]
            wanted = [c for c in others if c not in (None, "") and code_key(c) not in self.rates]
            self.resolve_rates(pair, [code, *wanted], timezone.localdate())
        resolved = self.rates[key]
        if resolved.failure:
            raise LookupFailed(resolved.failure, resolved.detail)
        return resolved.value

    def resolve_rates(self, pair: FieldPair, codes: list[Any], today: date) -> None:
        """The rates in force of these currencies, in one request (a page of them)."""
        codes = list({code_key(code): str(code).strip() for code in codes}.values())
        app, entity = self.source.app_name, self.source.exchange_rate_entity()
        if not entity:
            failure = (
                f"{app} keeps no table of exchange rates that the connection knows of: set "
                f"exchange_rate_entity in the source settings, or remove the exchange rate of "
                f"{pair.write} from the field mappings."
            )
            for code in codes:
                self.rates[code_key(code)] = Resolved(failure=failure)
            return
        rates = {
            code_key(c): r for c, r in exchange_rates(self.source, entity, today, codes).items()
        }
        for code in codes:
            key = code_key(code)
            rate = rates.get(key)
            found = "none" if key not in rates else str(rate or "not a positive number")
            detail = (
                f"Looked up the exchange rates of {code!r} ({pair.read}) in {app} {entity} "
                f"starting on or before {today.isoformat()}: {found}."
            )
            if rate is not None:
                self.rates[key] = Resolved(float(rate))
            elif key not in rates and key == code_key(self.source_local_currency() or "-"):
                # The local currency is the unit of the others: it needs no rate of its own.
                self.rates[key] = Resolved(1.0)
            else:
                self.rates[key] = Resolved(
                    failure=NO_EXCHANGE_RATE.format(code=code), detail=detail
                )

    # -- the local currency ---------------------------------------------------------------
    def source_local_currency(self) -> str:
        """The source app's local currency code, read once; "" where it does not say."""
        if self.lcy is None:
            self.lcy = self.source.local_currency().strip()
        return self.lcy

    def local_currency(self, pair: FieldPair) -> str:
        """The source app's local currency code, which a blank code stands for (read once)."""
        self.source_local_currency()
        if not self.lcy:
            raise LookupFailed(
                f"A blank {pair.read if self.forward else pair.write} stands for the local "
                f"currency of {self.source.app_name}, which it does not say: set "
                "local_currency (e.g. EUR) in the source settings of the connection."
            )
        return self.lcy

    def is_local_currency(self, pair: FieldPair, code: Any) -> bool:
        assert pair.lookup is not None
        if pair.lookup.blank != BLANK_LOCAL_CURRENCY or code in (None, ""):
            return False
        return code_key(code) == code_key(self.local_currency(pair))

    def unresolved(self, pair: FieldPair, records: list[RemoteRecord]) -> list[Any]:
        """The codes or ids of these records that the pair has not resolved yet."""
        assert pair.lookup is not None
        wanted: dict[str, Any] = {}
        for record in records:
            try:
                raw = self.raw(pair, record)
            except LookupFailed:
                continue  # failed when its value is asked for
            if raw is not None and (pair.lookup, self.key(raw)) not in self.resolved:
                wanted.setdefault(self.key(raw), raw)
        return list(wanted.values())

    # -- reading a record's code or reference ---------------------------------------------
    def key(self, raw: Any) -> str:
        return code_key(raw) if self.forward else id_key(raw)

    def raw(self, pair: FieldPair, record: RemoteRecord) -> Any:
        """The code (to the destination) or the id (from it) a record holds; None for none."""
        assert pair.lookup is not None
        value = pair.value(record.values)
        if value in (None, "") or (isinstance(value, str) and not value.strip()):
            if self.forward and pair.lookup.blank == BLANK_LOCAL_CURRENCY:
                return self.local_currency(pair)
            return None
        if not self.forward:
            if not isinstance(value, str) or not GUID.fullmatch(id_key(value)):
                raise LookupFailed(
                    f"The {pair.read} of this record, {value!r}, is not a record id."
                )
            table = record.values.get(f"{pair.read}@{LOGICAL_NAME}")
            expected = logical_name(pair.lookup.entity)
            if table and table != expected:
                # A polymorphic lookup (a contact's parent customer) may refer to a table the
                # other app has no place for.
                raise LookupFailed(
                    f"The {pair.lookup.navigation.split('_')[0]} of this record is a {table}, "
                    f"not {_article(expected)} {expected}: {self.source.app_name} can only take "
                    f"{pair.lookup.entity} records in {pair.write}."
                )
        return value

    # -- resolving ------------------------------------------------------------------------
    def resolve(self, pair: FieldPair, raws: list[Any]) -> None:
        lookup = pair.lookup
        assert lookup is not None
        raws = list({self.key(raw): raw for raw in raws}.values())
        referenced = self.referenced_mapping(lookup)
        if lookup.mapping and referenced is None:
            failure = (
                f"The lookup of {pair.read} goes through the table mapping {lookup.mapping}, "
                f"which {self.mapping.connection.name} does not have: correct the field mapping."
            )
            for raw in raws:
                self.resolved[(lookup, self.key(raw))] = Resolved(failure=failure)
            return
        if lookup.via == VIA_COMPANY_CONTACT and referenced is not None:
            related_type = RELATED_TYPES.get(referenced.source_entity)
            if related_type is None:
                failure = (
                    f"The lookup of {pair.read} goes via the company contact to the "
                    f"{referenced.source_entity} of {referenced.name}, which {self.source.app_name}"
                    f" does not relate contacts to (only {', '.join(RELATED_TYPES)}): correct "
                    "the field mapping."
                )
                for raw in raws:
                    self.resolved[(lookup, self.key(raw))] = Resolved(failure=failure)
            elif self.forward:
                self.resolve_company_numbers(pair, lookup, referenced, related_type, raws)
            else:
                self.resolve_company_records(pair, lookup, referenced, related_type, raws)
        elif self.forward:
            self.resolve_codes(pair, lookup, referenced, raws)
        else:
            self.resolve_ids(pair, lookup, referenced, raws)

    def referenced_mapping(self, lookup: LookupSpec) -> TableMapping | None:
        if not lookup.mapping:
            return None
        if lookup.mapping not in self.mappings:
            self.mappings[lookup.mapping] = TableMapping.objects.filter(
                connection_id=self.mapping.connection_id, name=lookup.mapping
            ).first()
        return self.mappings[lookup.mapping]

    def resolve_codes(
        self,
        pair: FieldPair,
        lookup: LookupSpec,
        referenced: TableMapping | None,
        codes: list[Any],
    ) -> None:
        """Codes to the destination records they stand for: through the couplings of the
        referenced mapping first, then by the destination table's field that holds them."""
        found: dict[str, str] = {}
        source_of: dict[str, str] = {}
        if referenced is not None and referenced.source_match_field:
            field = referenced.source_match_field
            sources = self.source.find_many(referenced.source_entity, field, codes, select=[field])
            code_of = {record.id: code_key(record.values.get(field)) for record in sources}
            for source_id, destination_id in Coupling.objects.filter(
                mapping=referenced, source_record_id__in=list(code_of)
            ).values_list("source_record_id", "destination_record_id"):
                found.setdefault(code_of[source_id], destination_id)
            # The referenced mapping's record each code stands for, should it be missing.
            source_of = {code: source_id for source_id, code in code_of.items()}
        rest = [code for code in codes if code_key(code) not in found]
        matches: dict[str, list[str]] = {}
        if rest:
            for record in self.destination.find_many(
                lookup.entity, lookup.match, rest, select=[lookup.match]
            ):
                matches.setdefault(code_key(record.values.get(lookup.match)), []).append(record.id)
        app = self.destination.app_name
        through = (
            f"{self.source.app_name} {referenced.source_entity} whose "
            f"{referenced.source_match_field} is the code, coupled under {referenced.name}; then "
            if referenced is not None
            else ""
        )
        for code in codes:
            key = code_key(code)
            label = f"{_label(lookup)} {code}"
            detail = (
                f"Looked up {code!r} ({pair.read}) in {through}{app} {lookup.entity} whose "
                f"{lookup.match} is {code!r} (any case): {len(matches.get(key, []))} found."
            )
            if key in found:
                resolved = Resolved(lookup.reference(found[key]))
            elif len(matches.get(key, [])) == 1:
                resolved = Resolved(lookup.reference(matches[key][0]))
            elif matches.get(key):
                resolved = Resolved(
                    failure=f"{label} matches {len(matches[key])} records in {app} "
                    f"({lookup.entity}) by {lookup.match}: keep one of them.",
                    detail=detail,
                )
            else:
                hint = (
                    f"synchronize {lookup.mapping} first"
                    if lookup.mapping
                    else f"change the record's {pair.read}"
                )
                resolved = Resolved(
                    failure=f"{label} does not exist in {app} ({lookup.entity}): add it, or "
                    f"{hint}.",
                    detail=detail,
                    reference=Reference(
                        referenced.pk if referenced is not None else None,
                        "source" if referenced is not None else self.write_side,
                        source_of.get(key, str(code)),
                        referenced.source_entity if referenced is not None else lookup.entity,
                    ),
                )
            self.resolved[(lookup, key)] = resolved

    def resolve_ids(
        self,
        pair: FieldPair,
        lookup: LookupSpec,
        referenced: TableMapping | None,
        ids: list[Any],
    ) -> None:
        """Destination records to the codes they stand for: the code of the source record
        each is coupled to under the referenced mapping, else their own field holding it."""
        keys = [id_key(record_id) for record_id in ids]
        found: dict[str, str] = {}
        if referenced is not None and referenced.source_match_field:
            field = referenced.source_match_field
            coupled = dict(
                Coupling.objects.filter(
                    mapping=referenced, destination_record_id__in=keys
                ).values_list("destination_record_id", "source_record_id")
            )
            if coupled:
                sources = self.source.get_many(
                    referenced.source_entity, list(coupled.values()), select=[field]
                )
                for destination_id, source_id in coupled.items():
                    record = sources.get(source_id)
                    if record is not None and record.values.get(field) not in (None, ""):
                        found[id_key(destination_id)] = str(record.values[field])
        rest = [key for key in keys if key not in found]
        records: dict[str, RemoteRecord] = {}
        if rest:
            records = {
                id_key(record_id): record
                for record_id, record in self.destination.get_many(
                    lookup.entity, rest, select=[lookup.match]
                ).items()
            }
        app = self.destination.app_name
        for key in keys:
            label = f"{_label(lookup)} {key}"
            record = records.get(key)
            detail = (
                f"Looked up {key} ({pair.read}) in "
                + (f"the couplings of {referenced.name}, then " if referenced is not None else "")
                + f"{app} {lookup.entity} for its {lookup.match}: "
                + ("not found." if record is None else f"{record.values.get(lookup.match)!r}.")
            )
            if key in found:
                resolved = Resolved(found[key])
            elif record is None:
                resolved = Resolved(
                    failure=f"{label} does not exist in {app} ({lookup.entity}).",
                    detail=detail,
                    reference=_destination_reference(lookup, referenced, key),
                )
            elif record.values.get(lookup.match) in (None, ""):
                uncoupled = f" is not coupled under {lookup.mapping} and" if lookup.mapping else ""
                resolved = Resolved(
                    failure=f"{label} in {app} ({lookup.entity}){uncoupled} has no "
                    f"{lookup.match}: {self.source.app_name} cannot refer to it until it has.",
                    detail=detail,
                    reference=_destination_reference(lookup, referenced, key),
                )
            else:
                resolved = Resolved(str(record.values[lookup.match]))
            self.resolved[(lookup, key)] = resolved

    # -- via the company contact ----------------------------------------------------------
    def resolve_company_numbers(
        self,
        pair: FieldPair,
        lookup: LookupSpec,
        referenced: TableMapping,
        related_type: str,
        codes: list[Any],
    ) -> None:
        """Company contact numbers to the destination records of the customers they are
        related to: the company contacts with their contact information (one request), the
        customers' couplings, and for a customer not coupled its number (one request) and the
        destination record with that number (one more)."""
        source_app, app = self.source.app_name, self.destination.app_name
        customers_of: dict[str, list[str]] = {}
        for contact in self.source.find_many(
            CONTACTS, "number", codes, select=["number"], expand=[CONTACTS_INFORMATION]
        ):
            ids = customers_of.setdefault(code_key(contact.values.get("number")), [])
            for row in _rows(contact):
                if row.get("relatedType") == related_type and row.get("relatedId"):
                    ids.append(id_key(row["relatedId"]))
        customer_ids = list(dict.fromkeys(i for ids in customers_of.values() for i in ids))
        coupled = dict(
            Coupling.objects.filter(
                mapping=referenced, source_record_id__in=customer_ids
            ).values_list("source_record_id", "destination_record_id")
        )
        field = referenced.source_match_field
        numbers: dict[str, str] = {}
        matches: dict[str, list[str]] = {}
        uncoupled = [i for i in customer_ids if i not in coupled]
        if uncoupled and field:
            for customer_id, customer in self.source.get_many(
                referenced.source_entity, uncoupled, select=[field]
            ).items():
                if customer.values.get(field) not in (None, ""):
                    numbers[id_key(customer_id)] = str(customer.values[field])
            if numbers:
                for record in self.destination.find_many(
                    lookup.entity, lookup.match, list(numbers.values()), select=[lookup.match]
                ):
                    matches.setdefault(code_key(record.values.get(lookup.match)), []).append(
                        record.id
                    )
        for code in codes:
            key = code_key(code)
            label = f"{_label(lookup)} {code}"
            its_customers = customers_of.get(key)
            detail = (
                f"Looked up {code!r} ({pair.read}) in {source_app} {CONTACTS} by number, with "
                f"its {CONTACTS_INFORMATION}: "
                + (
                    "not found."
                    if its_customers is None
                    else f"related to {related_type.lower()} "
                    + (", ".join(its_customers) or "(none)")
                    + "."
                )
            )
            if its_customers is None:
                resolved = Resolved(
                    failure=f"{label} does not exist in {source_app} ({CONTACTS}): add the "
                    f"company contact, or change the record's {pair.read}.",
                    detail=detail,
                )
            elif not its_customers:
                resolved = Resolved(
                    failure=f"{label} is not a {related_type.lower()} in {source_app}: the "
                    f"contact has no business relation to a {related_type.lower()}. Link it to "
                    f"its {related_type.lower()} in {source_app} (or create the "
                    f"{related_type.lower()} from the contact), or change the record's "
                    f"{pair.read}.",
                    detail=detail,
                )
            elif its_customers[0] in coupled:
                resolved = Resolved(lookup.reference(coupled[its_customers[0]]))
            else:
                number = numbers.get(its_customers[0], "")
                found = matches.get(code_key(number), []) if number else []
                detail += (
                    f" Not coupled under {referenced.name}; {app} {lookup.entity} whose "
                    f"{lookup.match} is {number!r}: {len(found)} found."
                )
                of = f"{label} ({related_type.lower()} {number or its_customers[0]})"
                if len(found) == 1:
                    resolved = Resolved(lookup.reference(found[0]))
                elif found:
                    resolved = Resolved(
                        failure=f"{of} matches {len(found)} records in {app} ({lookup.entity}) "
                        f"by {lookup.match}: keep one of them.",
                        detail=detail,
                    )
                else:
                    resolved = Resolved(
                        failure=f"{of} is not coupled under {referenced.name} and does not "
                        f"exist in {app} ({lookup.entity}): add it, or synchronize "
                        f"{referenced.name} first.",
                        detail=detail,
                        reference=Reference(
                            referenced.pk, "source", its_customers[0], referenced.source_entity
                        ),
                    )
            self.resolved[(lookup, key)] = resolved

    def resolve_company_records(
        self,
        pair: FieldPair,
        lookup: LookupSpec,
        referenced: TableMapping,
        related_type: str,
        ids: list[Any],
    ) -> None:
        """Destination records to the numbers of the company contacts of the customers they
        stand for: the customers coupled to them, read with their contact information (one
        request); for a record not coupled, its number (one request) and the customer with
        that number (one more)."""
        source_app, app = self.source.app_name, self.destination.app_name
        keys = [id_key(record_id) for record_id in ids]
        field = referenced.source_match_field
        select = [field] if field else None
        coupled = {
            id_key(destination_id): source_id
            for destination_id, source_id in Coupling.objects.filter(
                mapping=referenced, destination_record_id__in=keys
            ).values_list("destination_record_id", "source_record_id")
        }
        customers: dict[str, RemoteRecord] = {}
        if coupled:
            customers = {
                id_key(customer_id): customer
                for customer_id, customer in self.source.get_many(
                    referenced.source_entity,
                    list(coupled.values()),
                    select=select,
                    expand=[CONTACTS_INFORMATION],
                ).items()
            }
        customer_of = {
            key: customers[id_key(customer_id)]
            for key, customer_id in coupled.items()
            if id_key(customer_id) in customers
        }
        rest = [key for key in keys if key not in customer_of]
        records: dict[str, RemoteRecord] = {}
        if rest:
            records = {
                id_key(record_id): record
                for record_id, record in self.destination.get_many(
                    lookup.entity, rest, select=[lookup.match]
                ).items()
            }
        numbers = {
            key: str(record.values[lookup.match])
            for key, record in records.items()
            if record.values.get(lookup.match) not in (None, "")
        }
        if numbers and field:
            by_number = {
                code_key(customer.values.get(field)): customer
                for customer in self.source.find_many(
                    referenced.source_entity,
                    field,
                    list(numbers.values()),
                    select=select,
                    expand=[CONTACTS_INFORMATION],
                )
            }
            for key, number in numbers.items():
                if code_key(number) in by_number:
                    customer_of[key] = by_number[code_key(number)]
        for key in keys:
            label = f"{_label(lookup)} {key}"
            customer = customer_of.get(key)
            record = records.get(key)
            detail = (
                f"Looked up {key} ({pair.read}) in the couplings of {referenced.name}"
                + ("" if key in coupled else f", then {app} {lookup.entity} for its {lookup.match}")
                + f", then {source_app} {referenced.source_entity} with their "
                f"{CONTACTS_INFORMATION}: "
                + ("not found." if customer is None else f"{related_type.lower()} {customer.id}.")
            )
            if customer is not None:
                company = _company_contact(customer, related_type)
                if company:
                    resolved = Resolved(company)
                else:
                    its_number = customer.values.get(field) if field else customer.id
                    resolved = Resolved(
                        failure=f"{label} is {related_type.lower()} {its_number}, which has no "
                        f"company contact in {source_app}: create the contact from the "
                        f"{related_type.lower()} in {source_app}.",
                        detail=detail,
                    )
            elif key in coupled:
                resolved = Resolved(
                    failure=f"{label} is coupled under {referenced.name} to "
                    f"{related_type.lower()} {coupled[key]}, which does not exist in "
                    f"{source_app} any more: synchronize {referenced.name} first.",
                    detail=detail,
                )
            elif record is None:
                resolved = Resolved(
                    failure=f"{label} does not exist in {app} ({lookup.entity}).", detail=detail
                )
            elif key not in numbers:
                resolved = Resolved(
                    failure=f"{label} in {app} ({lookup.entity}) is not coupled under "
                    f"{referenced.name} and has no {lookup.match}: {source_app} cannot refer to "
                    "it until it has.",
                    detail=detail,
                    reference=_destination_reference(lookup, referenced, key),
                )
            else:
                unknown = (
                    f", and {source_app} has no {referenced.source_entity} whose {field} is "
                    f"{numbers[key]!r}"
                    if field
                    else ""
                )
                resolved = Resolved(
                    failure=f"{label} in {app} ({lookup.entity}) is not coupled under "
                    f"{referenced.name}{unknown}: synchronize {referenced.name} first.",
                    detail=detail,
                    reference=_destination_reference(lookup, referenced, key),
                )
            self.resolved[(lookup, key)] = resolved


def _rows(record: RemoteRecord) -> list[dict[str, Any]]:
    """A record's contact information, as its expanded navigation property gives it."""
    rows = record.values.get(CONTACTS_INFORMATION)
    return [row for row in rows if isinstance(row, dict)] if isinstance(rows, list) else []


def _company_contact(customer: RemoteRecord, related_type: str) -> str:
    """The number of the company contact a customer's contact information names."""
    for row in _rows(customer):
        if (
            row.get("contactType") == COMPANY
            and row.get("relatedType") == related_type
            and row.get("contactNumber") not in (None, "")
        ):
            return str(row["contactNumber"])
    return ""


def _destination_reference(
    lookup: LookupSpec, referenced: TableMapping | None, record_id: str
) -> Reference:
    """A record of the destination side that a lookup from it needed."""
    if referenced is None:
        return Reference(None, "destination", record_id, lookup.entity)
    return Reference(referenced.pk, "destination", record_id, referenced.destination_entity)


def _label(lookup: LookupSpec) -> str:
    return lookup.label or logical_name(lookup.entity).capitalize()


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"
