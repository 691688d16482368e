"""Demo data: records in the demo ERP and CRM, a connection with its mappings, couplings,
jobs and sync error entries of every category, spread over the last weeks."""

import json
import random
import uuid
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from couplings.models import Coupling
from errors.models import Category, Status, SyncError
from sync.models import Connection, SyncJob, TableMapping

from . import models as demo
from .entities import record_url

CONNECTION_NAME = "Demo ERP ↔ Demo CRM"
ERP, CRM = "Business Central", "Dynamics 365 Sales"

COMPANIES = [
    "Fabrikam", "Contoso", "Adatum", "Litware", "Northwind", "Tailspin", "Wingtip", "Proseware",
    "Alpine Ski House", "Coho Winery", "Lucerne Publishing", "Margie's Travel", "Trey Research",
    "Wide World Importers", "Woodgrove Bank", "Fourth Coffee", "Humongous Insurance",
    "Blue Yonder Airlines", "City Power & Light", "Graphic Design Institute",
]  # fmt: skip
SUFFIXES = ["Inc.", "Ltd.", "GmbH", "A/S", "AB", "S.A.", "LLC"]
CITIES = [("Copenhagen", "DK"), ("Oslo", "NO"), ("Seattle", "US"), ("London", "GB"),
          ("Munich", "DE"), ("Stockholm", "SE"), ("Paris", "FR")]  # fmt: skip
PEOPLE = ["Anna", "Ben", "Chloe", "David", "Emma", "Felix", "Grace", "Hugo", "Ida", "Jonas"]
SURNAMES = ["Larsen", "Berg", "Smith", "Müller", "Dubois", "Nilsson", "Jensen", "Brown"]
ITEMS = ["Bicycle", "Helmet", "Chain", "Pedal", "Saddle", "Tire", "Lamp", "Lock", "Bell", "Pump"]


def _traceback(where: str, error: str) -> str:
    return (
        "Traceback (most recent call last):\n"
        f'  File "sync/engine.py", line 212, in synchronize_record\n'
        f"    destination.update(entity, record_id, values)\n"
        f'  File "sync/connectors/odata.py", line 148, in {where}\n'
        f"    raise ConnectorError.from_response(response)\n"
        f"sync.connectors.base.ConnectorError: {error}"
    )


def _odata_body(code: str, message: str) -> str:
    return json.dumps({"error": {"code": code, "message": message}}, indent=2)


def _error_templates(rng: random.Random, ids: dict) -> list[tuple]:
    """(category, message, detail, record_level) templates in the anchor products' words."""
    principal = ids["integration_user"]
    return [
        (Category.PERMISSION,
         f"Principal user (Id={principal}, type=8) is missing prvWriteAccount privilege "
         f"(Id={uuid.UUID(int=rng.getrandbits(128))}) on OTC=1 for entity 'account'.",
         "0x80040220", True),
        (Category.PERMISSION,
         f"Principal user (Id={principal}, type=8) is missing prvCreateContact privilege "
         f"(Id={uuid.UUID(int=rng.getrandbits(128))}) on OTC=2 for entity 'contact'.",
         "0x80040220", True),
        (Category.PERMISSION,
         f"Principal user (Id={principal}, type=8) is missing prvReadProduct privilege.",
         "0x80040220", False),
        (Category.AUTHENTICATION,
         "The integration user's password must be changed at next sign-in.",
         "401 Unauthorized", False),
        (Category.AUTHENTICATION,
         "401 Unauthorized: The user name or password is incorrect.", "401 Unauthorized", False),
        (Category.INTEGRATION_USER,
         "The user admin@demo-crm.example is assigned the System Administrator role and cannot "
         "be used as the integration user.", "setup", False),
        (Category.INTEGRATION_USER, "The integration user is disabled.", "setup", False),
        (Category.CURRENCY,
         "The currency NOK does not have an exchange rate in Dynamics 365 Sales.",
         "0x80040203", True),
        (Category.CURRENCY, "Currency code SEK is not coupled.", "dependency", True),
        (Category.COUPLED_RECORD_DELETED,
         "The Customer {number} cannot be updated because it is coupled to a deleted record.",
         "404 Not Found", True),
        (Category.CONFLICT,
         "Cannot update the record because it has been modified in both Business Central and "
         "Dynamics 365 Sales since the last synchronization.", "conflict", True),
        (Category.VALIDATION,
         "The field Email of table Customer contains a value (john@@example) that cannot be "
         "validated.", "0x80044331", True),
        (Category.VALIDATION, "Phone No. must not exceed 30 characters.", "0x80044331", True),
        (Category.VALIDATION,
         "Name '<script>alert(\"owned\")</script> Ltd.' contains characters that are not "
         "allowed.", "0x80044331", True),
        (Category.CONNECTION, "The operation has timed out.", "timeout", False),
        (Category.CONNECTION, "429 Too Many Requests: Retry-After 30", "429", False),
        (Category.CONNECTION, "Could not connect to the remote server.", "connect", False),
        (Category.OTHER,
         "An unexpected error occurred while mapping field Payment Terms Code.", "other", True),
    ]  # fmt: skip


@transaction.atomic
def seed_demo(
    *,
    base_url: str | None = None,
    error_count: int = 400,
    days: int = 30,
    random_seed: int = 7,
) -> dict:
    """Create the demo records, connection, mappings, couplings, jobs and errors.

    Returns what it created, by kind."""
    rng = random.Random(random_seed)  # noqa: S311 - repeatable demo data, not secrets
    now = timezone.now()
    base = (base_url or settings.DEMO_BASE_URL).rstrip("/")

    # Currencies: NOK has no exchange rate in the ERP; SEK is missing from the CRM.
    erp_currencies = [
        demo.ErpCurrency.objects.create(code=code, description=name, exchange_rate=rate)
        for code, name, rate in [
            ("EUR", "Euro", Decimal("1")), ("USD", "US dollar", Decimal("1.08")),
            ("DKK", "Danish krone", Decimal("7.46")), ("NOK", "Norwegian krone", None),
            ("SEK", "Swedish krona", Decimal("11.5")),
        ]
    ]  # fmt: skip
    crm_currencies = [
        demo.CrmTransactionCurrency.objects.create(
            iso_currency_code=c.code, currency_name=c.description, exchange_rate=c.exchange_rate
        )
        for c in erp_currencies
        if c.code != "SEK"
    ]
    salespeople = [
        demo.ErpSalesperson.objects.create(
            code=f"SP{i:02d}", name=f"{PEOPLE[i]} {SURNAMES[i % len(SURNAMES)]}",
            email=f"{PEOPLE[i].lower()}@demo-erp.example",
        )
        for i in range(5)
    ]  # fmt: skip
    integration_user = demo.CrmSystemUser.objects.create(
        full_name="Integration User",
        domain_name="integration@demo-crm.example",
        roles=["Integration Administrator", "Integration User"],
    )
    demo.CrmSystemUser.objects.create(
        full_name="CRM Admin", domain_name="admin@demo-crm.example", roles=["System Administrator"]
    )
    demo.CrmSystemUser.objects.create(
        full_name="New Hire",
        domain_name="newhire@demo-crm.example",
        roles=["Salesperson"],
        password_change_required=True,
    )
    for person in salespeople:
        demo.CrmSystemUser.objects.create(
            full_name=person.name, domain_name=person.email.replace("erp", "crm"),
            roles=["Salesperson"],
        )  # fmt: skip

    def company(i: int) -> str:
        return f"{COMPANIES[i % len(COMPANIES)]} {SUFFIXES[i % len(SUFFIXES)]}"

    customers, accounts = [], []
    for i in range(150):
        city, country = CITIES[i % len(CITIES)]
        currency = erp_currencies[i % len(erp_currencies)].code
        name = company(i) if i < len(COMPANIES) * 2 else f"{company(i)} {i}"
        customers.append(demo.ErpCustomer(
            number=f"C{(i + 1) * 10:05d}", display_name=name,
            email=f"office{i}@{COMPANIES[i % len(COMPANIES)].split()[0].lower()}.example",
            phone_number=f"+45 {rng.randint(20000000, 99999999)}", city=city, country=country,
            currency_code=currency, salesperson_code=salespeople[i % 5].code,
        ))  # fmt: skip
        accounts.append(demo.CrmAccount(
            name=name, account_number=f"C{(i + 1) * 10:05d}", email=customers[-1].email,
            telephone=customers[-1].phone_number, city=city, country=country,
            transaction_currency_code=currency,
        ))  # fmt: skip
    demo.ErpCustomer.objects.bulk_create(customers)
    demo.CrmAccount.objects.bulk_create(accounts)

    erp_contacts, crm_contacts = [], []
    for i in range(60):
        name = f"{PEOPLE[i % len(PEOPLE)]} {SURNAMES[i % len(SURNAMES)]}"
        email = f"{name.split()[0].lower()}.{i}@example.com"
        erp_contacts.append(demo.ErpContact(
            number=f"CT{i + 1:05d}", display_name=name, email=email,
            company_number=customers[i].number,
        ))  # fmt: skip
        crm_contacts.append(
            demo.CrmContact(full_name=name, email=email, parent_account=accounts[i])
        )
    demo.ErpContact.objects.bulk_create(erp_contacts)
    demo.CrmContact.objects.bulk_create(crm_contacts)

    items, products = [], []
    for i in range(40):
        name = f"{ITEMS[i % len(ITEMS)]} {rng.choice(['Pro', 'Lite', 'Classic', 'Sport'])} {i}"
        price = Decimal(rng.randint(500, 50000)) / 100
        items.append(demo.ErpItem(number=f"{1000 + i}", display_name=name, unit_price=price))
        products.append(demo.CrmProduct(name=name, product_number=f"{1000 + i}", price=price))
    demo.ErpItem.objects.bulk_create(items)
    demo.CrmProduct.objects.bulk_create(products)

    connection = Connection.objects.create(
        name=CONNECTION_NAME,
        source_app=ERP,
        source_base_url=f"{base}/demo/erp/",
        destination_app=CRM,
        destination_base_url=f"{base}/demo/crm/",
        integration_user=integration_user.domain_name,
    )

    def fields(*pairs):
        return [
            {"source": s, "destination": d, "direction": "bidirectional", "enabled": True}
            for s, d in pairs
        ]

    mapping_specs = [
        ("CURRENCY", "currencies", "transactioncurrencies", 10,
         fields(("code", "iso_currency_code"), ("exchange_rate", "exchange_rate")),
         erp_currencies[:4], crm_currencies),
        ("SALESPEOPLE", "salespeople", "systemusers", 20,
         fields(("name", "full_name"), ("email", "domain_name")), [], []),
        ("CUSTOMER", "customers", "accounts", 30,
         fields(("display_name", "name"), ("number", "account_number"), ("email", "email"),
                ("phone_number", "telephone"), ("currency_code", "transaction_currency_code")),
         customers, accounts),
        ("CONTACT", "contacts", "contacts", 40,
         fields(("display_name", "full_name"), ("email", "email")), erp_contacts, crm_contacts),
        ("ITEM-PRODUCT", "items", "products", 50,
         fields(("display_name", "name"), ("number", "product_number"), ("unit_price", "price")),
         items, products),
    ]  # fmt: skip

    counts = {"couplings": 0, "jobs": 0, "errors": 0}
    all_jobs, coupled = [], {}
    for name, source_entity, destination_entity, order, field_map, sources, dests in mapping_specs:
        mapping = TableMapping.objects.create(
            connection=connection, name=name, source_entity=source_entity,
            destination_entity=destination_entity, dependency_order=order,
            field_mappings=field_map,
            direction=TableMapping.Direction.TO_DESTINATION if name == "CURRENCY"
            else TableMapping.Direction.BIDIRECTIONAL,
        )  # fmt: skip
        jobs = []
        for n in range(days * 24 // 8):
            started = now - timedelta(hours=8 * n + rng.random() * 4, minutes=5)
            jobs.append(SyncJob(
                mapping=mapping, trigger=SyncJob.Trigger.SCHEDULE, kind=SyncJob.Kind.MODIFIED,
                direction=mapping.direction, status=SyncJob.Status.SUCCEEDED,
                started_at=started, finished_at=started + timedelta(seconds=rng.randint(2, 90)),
                inserted=rng.randint(0, 3), modified=rng.randint(0, 20),
                unchanged=rng.randint(50, 150),
            ))  # fmt: skip
        SyncJob.objects.bulk_create(jobs)
        all_jobs.extend(jobs)
        pairs = []
        both_ways = mapping.direction == TableMapping.Direction.BIDIRECTIONAL
        for index, (source, dest) in enumerate(zip(sources, dests, strict=False)):
            last = now - timedelta(hours=rng.randint(1, 72))
            pairs.append(
                Coupling(
                    mapping=mapping,
                    source_record_id=str(source.pk),
                    destination_record_id=str(dest.pk),
                    last_synced_to_destination_at=last,
                    last_result_to_destination=Coupling.Result.SUCCESS,
                    last_synced_from_destination_at=last if both_ways else None,
                    last_result_from_destination=Coupling.Result.SUCCESS if both_ways else "",
                    is_skipped=index % 37 == 5,
                )
            )
        Coupling.objects.bulk_create(pairs)
        counts["couplings"] += len(pairs)
        coupled[name] = (mapping, jobs, pairs, sources, dests)
    counts["jobs"] = len(all_jobs)

    # Deleted on one side: a few coupled CRM accounts are gone.
    customer_mapping, _, customer_pairs, _, _ = coupled["CUSTOMER"]
    deleted_account_ids = {p.destination_record_id for p in customer_pairs[140:146]}
    demo.CrmAccount.objects.filter(pk__in=deleted_account_ids).delete()

    templates = _error_templates(rng, {"integration_user": integration_user.pk})
    record_mappings = [coupled[n] for n in ("CUSTOMER", "CONTACT", "ITEM-PRODUCT")]
    errors, failed_by_job = [], {}
    for n in range(error_count):
        # Every category at least once, and a third of the entries older than 7 days.
        template = templates[n] if n < len(templates) else rng.choice(templates)
        category, message, code, record_level = template
        if n % 3 == 0:
            age = timedelta(days=7, hours=1) + timedelta(seconds=rng.random() * (days - 8) * 86400)
        elif n % 10 == 1:
            age = timedelta(minutes=rng.randint(1, 59))
        else:
            age = timedelta(seconds=rng.random() * 7 * 86400 - 3600) + timedelta(hours=1)
        created = now - age
        if category == Category.CURRENCY:
            mapping, jobs, pairs, sources, dests = coupled["CURRENCY"]
        elif category == Category.COUPLED_RECORD_DELETED:
            mapping, jobs, pairs, sources, dests = coupled["CUSTOMER"]
        else:
            mapping, jobs, pairs, sources, dests = rng.choice(record_mappings)
        job = min(jobs, key=lambda j: abs((j.started_at - created).total_seconds()))
        error = SyncError(
            created_at=created, job=job, mapping=mapping, category=category,
            source_app=ERP, source_entity=mapping.source_entity,
            destination_app=CRM, destination_entity=mapping.destination_entity,
        )  # fmt: skip
        if record_level and pairs:
            if category == Category.COUPLED_RECORD_DELETED:
                index = rng.randint(140, 145)
            else:
                index = rng.randrange(len(pairs))
            pair = pairs[index]
            error.coupling = pair
            error.source_record_id = pair.source_record_id
            error.destination_record_id = pair.destination_record_id
            error.source_url = record_url("erp", mapping.source_entity, pair.source_record_id, base)
            error.destination_url = record_url(
                "crm", mapping.destination_entity, pair.destination_record_id, base
            )
            number = getattr(sources[index], "number", pair.source_record_id)
            message = message.format(number=number)
        error.message = message[: SyncError.MESSAGE_MAX_LENGTH]
        error.detail = (
            _odata_body(code, message) if code.startswith("0x") else _traceback("update", message)
        )
        roll = rng.random()
        if age > timedelta(days=2) and roll < 0.25:
            error.status = Status.RESOLVED
            error.status_changed_at = created + timedelta(hours=rng.randint(1, 24))
        elif roll > 0.95:
            error.status = Status.IGNORED
            error.status_changed_at = created + timedelta(hours=1)
        errors.append(error)
        failed_by_job[job.pk] = failed_by_job.get(job.pk, 0) + 1
    SyncError.objects.bulk_create(errors, batch_size=1000)
    counts["errors"] = len(errors)

    for job in all_jobs:
        if job.pk in failed_by_job:
            job.failed = failed_by_job[job.pk]
            job.status = SyncJob.Status.FAILED if job.failed > 3 else SyncJob.Status.SUCCEEDED
    SyncJob.objects.bulk_update(all_jobs, ["failed", "status"], batch_size=500)

    counts["customers"] = len(customers)
    counts["accounts"] = len(accounts) - len(deleted_account_ids)
    return counts


def remove_demo() -> None:
    """Delete what seed_demo made (the demo tables and the demo connection with its data)."""
    with transaction.atomic():
        connection = Connection.objects.filter(name=CONNECTION_NAME).first()
        if connection:
            SyncError.objects.filter(mapping__connection=connection).delete()
            connection.delete()
        for model in (
            demo.CrmContact, demo.CrmAccount, demo.CrmProduct, demo.CrmTransactionCurrency,
            demo.CrmSystemUser, demo.ErpContact, demo.ErpCustomer, demo.ErpItem,
            demo.ErpCurrency, demo.ErpSalesperson,
        ):  # fmt: skip
            model.objects.all().delete()


def demo_exists() -> bool:
    return Connection.objects.filter(name=CONNECTION_NAME).exists()
