"""Which tables each demo app has, under the plural names its API and pages use."""

from dataclasses import dataclass

from django.conf import settings
from django.db import models
from django.urls import reverse

from . import models as demo_models

APP_TITLES = {"erp": "Demo ERP (Business Central)", "crm": "Demo CRM (Dynamics 365 Sales)"}


@dataclass(frozen=True)
class Entity:
    app: str
    name: str
    title: str
    model: type[models.Model]
    fields: tuple[str, ...]

    @property
    def modified_field(self) -> str:
        return "last_modified" if self.app == "erp" else "modified_on"


def _entity(app: str, name: str, title: str, model, *fields: str) -> Entity:
    return Entity(app, name, title, model, fields)


ENTITIES: dict[tuple[str, str], Entity] = {
    (e.app, e.name): e
    for e in [
        _entity("erp", "customers", "Customer", demo_models.ErpCustomer,
                "number", "display_name", "email", "phone_number", "city", "country",
                "currency_code", "salesperson_code", "blocked"),
        _entity("erp", "contacts", "Contact", demo_models.ErpContact,
                "number", "type", "display_name", "email", "company_number", "company_name"),
        _entity("erp", "items", "Item", demo_models.ErpItem,
                "number", "display_name", "unit_price", "base_unit_of_measure"),
        _entity("erp", "currencies", "Currency", demo_models.ErpCurrency,
                "code", "description"),
        _entity("erp", "currencyExchangeRates", "Currency exchange rate",
                demo_models.ErpCurrencyExchangeRate,
                "currency_code", "starting_date", "exchange_rate_amount",
                "relational_currency_code", "relational_exchange_rate_amount"),
        _entity("erp", "salespeople", "Salesperson", demo_models.ErpSalesperson,
                "code", "name", "email"),
        _entity("crm", "accounts", "Account", demo_models.CrmAccount,
                "name", "account_number", "email", "telephone", "city", "country",
                "transaction_currency", "owner"),
        _entity("crm", "contacts", "Contact", demo_models.CrmContact,
                "full_name", "email", "parent_account", "parent_contact", "owner"),
        _entity("crm", "products", "Product", demo_models.CrmProduct,
                "name", "product_number", "price", "default_unit"),
        _entity("crm", "transactioncurrencies", "Transaction currency",
                demo_models.CrmTransactionCurrency,
                "iso_currency_code", "currency_name", "exchange_rate"),
        _entity("crm", "systemusers", "User", demo_models.CrmSystemUser,
                "full_name", "domain_name", "business_unit", "access_mode", "is_licensed",
                "is_disabled", "roles", "password_change_required"),
        _entity("crm", "roles", "Security role", demo_models.CrmRole,
                "name", "business_unit", "role_template_id", "parent_root_role", "privileges"),
        _entity("crm", "teams", "Team", demo_models.CrmTeam,
                "name", "business_unit", "team_type", "is_default", "roles", "members"),
    ]
}  # fmt: skip


def entities_of(app: str) -> list[Entity]:
    return [entity for (entity_app, _), entity in ENTITIES.items() if entity_app == app]


def names_of(model: type[models.Model]) -> list[tuple[str, str]]:
    """The (app, entity name) of every entity whose records are rows of `model`."""
    return [key for key, entity in ENTITIES.items() if entity.model is model]


def record_url(app: str, entity: str, record_id, base_url: str | None = None) -> str:
    """The absolute address of a record's page in a demo app."""
    base = (base_url or settings.DEMO_BASE_URL).rstrip("/")
    return base + reverse("demo:record", args=[app, entity, record_id])


def api_root(app: str, base_url: str | None = None) -> str:
    """The root of a demo app's API, as a Connection's base URL."""
    base = (base_url or settings.DEMO_BASE_URL).rstrip("/")
    if app == "erp":
        return f"{base}/demo/erp/api/v2.0/companies({settings.DEMO_ERP_COMPANY_ID})/"
    return f"{base}/demo/crm/api/data/v9.2/"
