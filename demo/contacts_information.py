"""Business Central's contactsInformation (API v2.0, resource type contactInformation, page
30072 "APIV2 - Contacts Information", requires version 18.0): who a customer's contacts are,
and whom a contact is related to, through the contact business relations.

Each row is one contact and the record it is related to: contactId, contactNumber,
contactName, contactType ("Company" or "Person"), relatedId and relatedType (" ",
"Customer", "Vendor", "Bank Account" or "Employee"; the demo has customers only). It is read
only, as the navigation `customers(<id>)/contactsInformation` and `contacts(<id>)/
contactsInformation`, or with `$expand=contactsInformation` on either table.

- A customer's rows are, as Business Central builds them, the contacts of the company its
  business relation names (the company contact and its people; the related contact alone
  when it has none), each related to the customer.
- A contact's rows are the contact itself, once per business relation of its company (the
  company contact it belongs to, or itself when it is one): the customer it works for. The
  contact resource type lists the navigation; what it holds is the demo's reading of it."""

import re

from .errors import ApiError
from .models import ErpContact, ErpContactBusinessRelation, ErpCustomer
from .odata_syntax import split_top_level

NAVIGATION = "contactsInformation"
# The tables that have the navigation, and Business Central's type name of each, for errors.
PARENTS = {"customers": "customer", "contacts": "contact"}
FIELDS = ("contactId", "contactNumber", "contactName", "contactType", "relatedId", "relatedType")
EXPAND_ITEM = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:\((.*)\))?\s*", re.DOTALL)


def _row(contact: ErpContact, relation: ErpContactBusinessRelation) -> dict:
    return {
        "contactId": str(contact.pk),
        "contactNumber": contact.number,
        "contactName": contact.display_name,
        "contactType": contact.type,
        "relatedId": str(relation.customer_id),
        "relatedType": relation.link_to_table,
    }


def of_customers(customers: list[ErpCustomer]) -> dict:
    """The rows of each customer, by its id, in two queries."""
    relations = {
        relation.customer_id: relation
        for relation in ErpContactBusinessRelation.objects.filter(
            customer__in=[customer.pk for customer in customers]
        ).select_related("contact")
    }
    companies = {relation.contact.number for relation in relations.values()}
    members: dict[str, list[ErpContact]] = {}
    for contact in ErpContact.objects.filter(company_number__in=companies).order_by("pk"):
        members.setdefault(contact.company_number, []).append(contact)
    rows: dict = {}
    for customer in customers:
        relation = relations.get(customer.pk)
        if relation is None:
            rows[customer.pk] = []
            continue
        contacts = members.get(relation.contact.number) or [relation.contact]
        rows[customer.pk] = [_row(contact, relation) for contact in contacts]
    return rows


def of_contacts(contacts: list[ErpContact]) -> dict:
    """The rows of each contact, by its id, in one query."""

    def company_of(contact: ErpContact) -> str:
        return contact.number if contact.type == ErpContact.Type.COMPANY else contact.company_number

    relations: dict[str, list[ErpContactBusinessRelation]] = {}
    for relation in ErpContactBusinessRelation.objects.filter(
        contact__number__in={company_of(contact) for contact in contacts} - {""}
    ).select_related("contact"):
        relations.setdefault(relation.contact.number, []).append(relation)
    return {
        contact.pk: [_row(contact, relation) for relation in relations.get(company_of(contact), [])]
        for contact in contacts
    }


def rows_of(entity: str, records: list) -> dict:
    return of_customers(records) if entity == "customers" else of_contacts(records)


def selected(rows: list[dict], select: list[str]) -> list[dict]:
    if not select:
        return rows
    return [{name: value for name, value in row.items() if name in select} for row in rows]


def select_list(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    for name in names:
        if name not in FIELDS:
            raise unknown_property("contactInformation", name)
    return names


def unknown_property(type_name: str, name: str) -> ApiError:
    # OData's words for a property the type does not have; Business Central's are not
    # published.
    return ApiError(
        400,
        "BadRequest_NotFound",
        f"Could not find a property named '{name}' on type 'Microsoft.NAV.{type_name}'.",
    )


def expansion(entity: str, text: str) -> list[str] | None:
    """The `$select` of an `$expand=contactsInformation` (empty: every field), or None when
    there is no `$expand`; anything else in `$expand` is refused, as the demo ERP has no other
    navigation to expand."""
    if not text.strip():
        return None
    select: list[str] | None = None
    for item in split_top_level(text, ","):
        match = EXPAND_ITEM.fullmatch(item)
        if not match:
            raise ApiError(400, "BadRequest", f"The $expand '{item.strip()}' is not valid.")
        if entity not in PARENTS or match[1] != NAVIGATION:
            raise unknown_property(PARENTS.get(entity, entity), match[1])
        select = []
        for option in split_top_level(match[2] or "", ";"):
            key, _, value = option.strip().partition("=")
            if not key:
                continue
            if key != "$select":
                # Beyond the demo: Business Central takes more options here.
                raise ApiError(400, "BadRequest", f"The demo ERP does not take {key} in $expand.")
            select = select_list(value)
    return select


def expanded(entity: str, rows: list, records: list[dict], text: str) -> list[dict]:
    """The records with their contactsInformation, where `$expand` asks for it."""
    select = expansion(entity, text)
    if select is None:
        return records
    information = rows_of(entity, rows)
    for row, record in zip(rows, records, strict=True):
        record[NAVIGATION] = selected(information[row.pk], select)
    return records
