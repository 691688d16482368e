"""How each demo table looks through its app's API: the entity set, the key, and the API
name of every field, in Business Central's (camelCase) or Dataverse's (lowercase) style."""

import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from .entities import ENTITIES, Entity


@dataclass(frozen=True)
class ApiEntity:
    entity: Entity
    key: str
    modified: str
    fields: dict[str, str]  # API name -> model field
    read_only: frozenset[str] = frozenset()
    # Dataverse's object type code and logical name, used in its error messages.
    logical_name: str = ""
    type_code: int = 0
    # Records the API only reads: the demo changes them on its pages and in the admin.
    writable: bool = True

    @property
    def name(self) -> str:
        return self.entity.name

    @property
    def model(self):
        return self.entity.model

    def is_lookup(self, api_name: str) -> bool:
        """A lookup column (`_<name>_value`): the id of a related record."""
        return self.model._meta.get_field(self.fields[api_name]).is_relation

    def to_api(self, record) -> dict:
        data: dict[str, Any] = {self.key: str(record.pk)}
        for api_name, field in self.fields.items():
            value: Any
            if self.is_lookup(api_name):
                related = getattr(record, self.model._meta.get_field(field).attname)
                value = str(related) if related else None
            else:
                value = getattr(record, field)
            if hasattr(value, "isoformat"):
                value = value.isoformat().replace("+00:00", "Z")
            elif isinstance(value, Decimal):
                value = float(value)
            elif isinstance(value, uuid.UUID):
                value = str(value)
            data[api_name] = value
        data[self.modified] = (
            getattr(record, self.entity.modified_field).isoformat().replace("+00:00", "Z")
        )
        return data


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
            "number": "number", "displayName": "display_name", "email": "email",
            "companyNumber": "company_number"}),
        _api("erp", "items", "id", ERP_MODIFIED, {
            "number": "number", "displayName": "display_name", "unitPrice": "unit_price",
            "baseUnitOfMeasureCode": "base_unit_of_measure"}),
        _api("erp", "currencies", "id", ERP_MODIFIED, {
            "code": "code", "displayName": "description", "exchangeRate": "exchange_rate"}),
        _api("erp", "salespeople", "id", ERP_MODIFIED, {
            "code": "code", "displayName": "name", "email": "email"}),
        _api("crm", "accounts", "accountid", CRM_MODIFIED, {
            "name": "name", "accountnumber": "account_number", "emailaddress1": "email",
            "telephone1": "telephone", "address1_city": "city", "address1_country": "country",
            "isocurrencycode": "transaction_currency_code"},
            logical_name="account", type_code=1),
        _api("crm", "contacts", "contactid", CRM_MODIFIED, {
            "fullname": "full_name", "emailaddress1": "email",
            "_parentcustomerid_value": "parent_account"},
            read_only=frozenset({"_parentcustomerid_value"}),
            logical_name="contact", type_code=2),
        _api("crm", "products", "productid", CRM_MODIFIED, {
            "name": "name", "productnumber": "product_number", "price": "price",
            "defaultunit": "default_unit"},
            logical_name="product", type_code=1024),
        _api("crm", "transactioncurrencies", "transactioncurrencyid", CRM_MODIFIED, {
            "isocurrencycode": "iso_currency_code", "currencyname": "currency_name",
            "exchangerate": "exchange_rate"},
            logical_name="transactioncurrency", type_code=9105),
        _api("crm", "systemusers", "systemuserid", CRM_MODIFIED, {
            "fullname": "full_name", "domainname": "domain_name", "isdisabled": "is_disabled",
            "accessmode": "access_mode", "islicensed": "is_licensed",
            "_businessunitid_value": "business_unit"},
            logical_name="systemuser", type_code=8, writable=False),
        _api("crm", "roles", "roleid", CRM_MODIFIED, {
            "name": "name", "_businessunitid_value": "business_unit",
            "_roletemplateid_value": "role_template_id",
            "_parentrootroleid_value": "parent_root_role"},
            logical_name="role", type_code=1036, writable=False),
        _api("crm", "teams", "teamid", CRM_MODIFIED, {
            "name": "name", "_businessunitid_value": "business_unit", "teamtype": "team_type",
            "isdefault": "is_default"},
            logical_name="team", type_code=9, writable=False),
    ]
}  # fmt: skip
