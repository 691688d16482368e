"""How each demo table looks through its app's API: the entity set, the key, and the API
name of every field, in Business Central's (camelCase) or Dataverse's (lowercase) style."""

from dataclasses import dataclass

from .concurrency import etag
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

    @property
    def name(self) -> str:
        return self.entity.name

    @property
    def model(self):
        return self.entity.model

    def etag(self, record) -> str:
        return etag(self.entity.app, getattr(record, self.entity.modified_field))

    def to_api(self, record) -> dict:
        # Every record read carries its version, as both apps give it.
        data = {"@odata.etag": self.etag(record), self.key: str(record.pk)}
        for api_name, field in self.fields.items():
            value = getattr(record, field)
            if field == "parent_account":
                value = str(record.parent_account_id) if record.parent_account_id else None
            elif hasattr(value, "isoformat"):
                value = value.isoformat().replace("+00:00", "Z")
            elif value is not None and type(value).__name__ == "Decimal":
                value = float(value)
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
            "fullname": "full_name", "domainname": "domain_name", "isdisabled": "is_disabled"},
            read_only=frozenset({"fullname", "domainname", "isdisabled"}),
            logical_name="systemuser", type_code=8),
    ]
}  # fmt: skip
