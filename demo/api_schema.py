"""How each demo table looks through its app's API: the entity set, the key, and the API
name of every field, in Business Central's (camelCase) or Dataverse's (lowercase) style, and
the CRM's lookups (single-valued navigation properties and their lookup properties)."""

import functools
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from .concurrency import etag
from .entities import ENTITIES, Entity


@dataclass(frozen=True)
class Navigation:
    """A single-valued navigation property: what a create or update binds with
    `<name>@odata.bind`, to a record of the entity set `target`; the model's foreign key
    `field` holds it."""

    name: str
    target: str
    field: str


@dataclass(frozen=True)
class Lookup:
    """A lookup column: its lookup property (`_<name>_value`, read-only) and the navigation
    properties that set it, one per table it may refer to (more than one: polymorphic)."""

    property: str
    navigations: tuple[Navigation, ...]

    def current(self, record) -> tuple[Navigation, object] | None:
        """The navigation property that is set on the record, and the related record's id."""
        for navigation in self.navigations:
            related_id = getattr(record, f"{navigation.field}_id")
            if related_id is not None:
                return navigation, related_id
        return None


# The annotations of a lookup property a client may ask for with Prefer:
# odata.include-annotations (Dataverse's names).
FORMATTED_VALUE = "OData.Community.Display.V1.FormattedValue"
NAVIGATION_PROPERTY = "Microsoft.Dynamics.CRM.associatednavigationproperty"
LOGICAL_NAME = "Microsoft.Dynamics.CRM.lookuplogicalname"


@dataclass(frozen=True)
class ApiEntity:
    entity: Entity
    key: str
    modified: str
    fields: dict[str, str]  # API name -> model field
    read_only: frozenset[str] = frozenset()
    # Only GET: Business Central's read-only API pages (InsertAllowed, ModifyAllowed and
    # DeleteAllowed false), such as currencyExchangeRates; and the CRM's security tables,
    # which the demo changes on its pages and in the admin only.
    read_only_entity: bool = False
    # Dataverse's object type code and logical name, used in its error messages.
    logical_name: str = ""
    type_code: int = 0
    lookups: tuple[Lookup, ...] = ()
    # The primary name column: a lookup's formatted value is the related record's.
    primary_name: str = ""

    @property
    def name(self) -> str:
        return self.entity.name

    @property
    def model(self):
        return self.entity.model

    def etag(self, record) -> str:
        return etag(self.entity.app, getattr(record, self.entity.modified_field))

    def navigation(self, name: str) -> tuple[Lookup, Navigation] | None:
        for lookup in self.lookups:
            for navigation in lookup.navigations:
                if navigation.name == name:
                    return lookup, navigation
        return None

    def lookup(self, lookup_property: str) -> Lookup | None:
        return next((lookup for lookup in self.lookups if lookup.property == lookup_property), None)

    def is_column_lookup(self, api_name: str) -> bool:
        """A lookup property kept among the fields (`_businessunitid_value` of the security
        tables, which the API only reads): the id of a related record."""
        return _is_relation(self.model, self.fields[api_name])

    def to_api(
        self,
        record,
        annotations: Callable[[str], bool] | None = None,
        only: set[str] | None = None,
    ) -> dict:
        """The record as the API answers it; with `annotations`, the lookup annotations it
        wants (Prefer: odata.include-annotations); with `only`, just those properties (and
        the key and version), as a `$select` keeps them: a page of a thousand records is not
        made whole to be cut down."""
        # Every record read carries its version, as both apps give it.
        data: dict[str, Any] = {"@odata.etag": self.etag(record), self.key: str(record.pk)}
        for api_name, field in self.fields.items():
            if only is not None and api_name not in only:
                continue
            value: Any
            if self.is_column_lookup(api_name):
                related_id = getattr(record, self.model._meta.get_field(field).attname)
                value = str(related_id) if related_id else None
            else:
                value = getattr(record, field)
            if hasattr(value, "hour"):
                value = value.isoformat().replace("+00:00", "Z")
            elif hasattr(value, "isoformat"):  # an Edm.Date: 2024-01-01
                value = value.isoformat()
            elif isinstance(value, Decimal):
                value = float(value)
            elif isinstance(value, uuid.UUID):
                value = str(value)
            data[api_name] = value
        for lookup in self.lookups:
            if only is not None and lookup.property not in only:
                continue
            current = lookup.current(record)
            if current is None:
                data[lookup.property] = None
                continue
            navigation, related_id = current
            if annotations is not None:
                target = API_ENTITIES[(self.entity.app, navigation.target)]
                related = getattr(record, navigation.field)
                for term, value in (
                    (FORMATTED_VALUE, getattr(related, target.fields[target.primary_name])),
                    (NAVIGATION_PROPERTY, navigation.name),
                    (LOGICAL_NAME, target.logical_name),
                ):
                    if annotations(term):
                        data[f"{lookup.property}@{term}"] = value
            data[lookup.property] = str(related_id)
        data[self.modified] = (
            getattr(record, self.entity.modified_field).isoformat().replace("+00:00", "Z")
        )
        return data


@functools.cache
def _is_relation(model, field_name: str) -> bool:
    return model._meta.get_field(field_name).is_relation


def _api(app, name, key, modified, fields, **extra) -> ApiEntity:
    return ApiEntity(ENTITIES[(app, name)], key, modified, fields, **extra)


ERP_MODIFIED = "lastModifiedDateTime"
CRM_MODIFIED = "modifiedon"

API_ENTITIES: dict[tuple[str, str], ApiEntity] = {
    (e.entity.app, e.name): e
    for e in [
        _api("erp", "customers", "id", ERP_MODIFIED, {
            "number": "number", "displayName": "display_name", "email": "email",
            "phoneNumber": "phone_number", "city": "city", "country": "country",
            "currencyCode": "currency_code", "salespersonCode": "salesperson_code",
            "blocked": "blocked"}),
        _api("erp", "contacts", "id", ERP_MODIFIED, {
            "number": "number", "type": "type", "displayName": "display_name",
            "email": "email", "companyNumber": "company_number", "companyName": "company_name"}),
        _api("erp", "items", "id", ERP_MODIFIED, {
            "number": "number", "displayName": "display_name", "unitPrice": "unit_price",
            "baseUnitOfMeasureCode": "base_unit_of_measure"}),
        # Business Central API v2.0, currency resource type: no exchange rate (rates are
        # the currencyExchangeRates resource).
        _api("erp", "currencies", "id", ERP_MODIFIED, {
            "code": "code", "displayName": "description"}),
        # Business Central API v2.0, currencyExchangeRate resource type: GET only.
        _api("erp", "currencyExchangeRates", "id", ERP_MODIFIED, {
            "currencyCode": "currency_code", "startingDate": "starting_date",
            "exchangeRateAmount": "exchange_rate_amount",
            "relationalCurrencyCode": "relational_currency_code",
            "relationalExchangeRateAmount": "relational_exchange_rate_amount"},
            read_only_entity=True),
        _api("erp", "salespeople", "id", ERP_MODIFIED, {
            "code": "code", "displayName": "name", "email": "email"}),
        _api("crm", "accounts", "accountid", CRM_MODIFIED, {
            "name": "name", "accountnumber": "account_number", "emailaddress1": "email",
            "telephone1": "telephone", "address1_city": "city", "address1_country": "country"},
            logical_name="account", type_code=1, primary_name="name",
            lookups=(Lookup("_transactioncurrencyid_value", (
                Navigation("transactioncurrencyid", "transactioncurrencies",
                           "transaction_currency"),)),)),
        _api("crm", "contacts", "contactid", CRM_MODIFIED, {
            "fullname": "full_name", "emailaddress1": "email"},
            logical_name="contact", type_code=2, primary_name="fullname",
            # The customer lookup: an account or a contact (polymorphic).
            lookups=(Lookup("_parentcustomerid_value", (
                Navigation("parentcustomerid_account", "accounts", "parent_account"),
                Navigation("parentcustomerid_contact", "contacts", "parent_contact"))),)),
        _api("crm", "products", "productid", CRM_MODIFIED, {
            "name": "name", "productnumber": "product_number", "price": "price",
            "defaultunit": "default_unit"},
            logical_name="product", type_code=1024),
        _api("crm", "transactioncurrencies", "transactioncurrencyid", CRM_MODIFIED, {
            "isocurrencycode": "iso_currency_code", "currencyname": "currency_name",
            "exchangerate": "exchange_rate"},
            logical_name="transactioncurrency", type_code=9105, primary_name="currencyname"),
        _api("crm", "systemusers", "systemuserid", CRM_MODIFIED, {
            "fullname": "full_name", "domainname": "domain_name", "isdisabled": "is_disabled",
            "accessmode": "access_mode", "islicensed": "is_licensed",
            "_businessunitid_value": "business_unit"},
            logical_name="systemuser", type_code=8, read_only_entity=True),
        _api("crm", "roles", "roleid", CRM_MODIFIED, {
            "name": "name", "_businessunitid_value": "business_unit",
            "_roletemplateid_value": "role_template_id",
            "_parentrootroleid_value": "parent_root_role"},
            logical_name="role", type_code=1036, read_only_entity=True),
        _api("crm", "teams", "teamid", CRM_MODIFIED, {
            "name": "name", "_businessunitid_value": "business_unit", "teamtype": "team_type",
            "isdefault": "is_default"},
            logical_name="team", type_code=9, read_only_entity=True),
    ]
}  # fmt: skip
