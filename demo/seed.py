"""Demo data from real synchronization: records in the demo ERP and CRM with the anchor's
failure cases planted in them, a connection and its mappings, and then real sync jobs over
HTTP, so that every job, coupling and error in the console came from a real run."""

import logging
import random
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import TypeVar

import httpx
from django.conf import settings
from django.db import models, transaction
from django.db.models import F
from django.utils import timezone

from audit import services as audit
from audit.models import AuditEvent
from couplings.models import Coupling
from errors.grouping import refresh_group_times
from errors.models import ErrorGroup, SyncError
from sync import breaker, engine, probes
from sync.connectors.odata import tls_context
from sync.models import Connection, LagProbe, MappingHealthSnapshot, SyncJob, TableMapping
from sync.services import create_job
from sync.subscriptions import keep_subscribed

from . import models as demo
from . import security, webhooks
from .entities import api_root

SIDES = ("source", "destination")
M = TypeVar("M", bound=models.Model)

logger = logging.getLogger(__name__)

CONNECTION_NAME = "Demo ERP ↔ Demo CRM"
ERP, CRM = "Business Central", "Dynamics 365 Sales"
INTEGRATION_USER = "integration@demo-crm.example"
INTEGRATION_PASSWORD = "demo-crm-password"  # noqa: S105 - the demo CRM's own test user
ADMIN_USER, ADMIN_PASSWORD = "admin@demo-crm.example", "demo-admin"
NORDICS = "Sales Nordics"

COMPANIES = [
    "Fabrikam",
    "Contoso",
    "Adatum",
    "Litware",
    "Northwind",
    "Tailspin",
    "Wingtip",
    "Proseware",
    "Alpine Ski House",
    "Coho Winery",
    "Lucerne Publishing",
    "Margie's Travel",
    "Trey Research",
    "Wide World Importers",
    "Woodgrove Bank",
    "Fourth Coffee",
    "Humongous Insurance",
    "Blue Yonder Airlines",
    "City Power & Light",
    "Graphic Design Institute",
]
SUFFIXES = ["Inc.", "Ltd.", "GmbH", "A/S", "AB", "S.A.", "LLC"]
CITIES = [
    ("Copenhagen", "DK"),
    ("Oslo", "NO"),
    ("Seattle", "US"),
    ("London", "GB"),
    ("Munich", "DE"),
    ("Stockholm", "SE"),
    ("Paris", "FR"),
]
PEOPLE = ["Anna", "Ben", "Chloe", "David", "Emma", "Felix", "Grace", "Hugo", "Ida", "Jonas"]
SURNAMES = ["Larsen", "Berg", "Smith", "Müller", "Dubois", "Nilsson", "Jensen", "Brown"]
ITEMS = ["Bicycle", "Helmet", "Chain", "Pedal", "Saddle", "Tire", "Lamp", "Lock", "Bell", "Pump"]
# The ERP's currencies and their exchange rates (units per euro). The CRM starts without NOK
# and SEK: CURRENCY creates SEK with its rate, but NOK has no exchange rate in the ERP, so it
# cannot be created, nor can the customers in NOK, nor their people after them.
CURRENCIES = [
    ("EUR", "Euro", "1"),
    ("USD", "US dollar", "1.08"),
    ("DKK", "Danish krone", "7.46"),
    ("NOK", "Norwegian krone", None),
    ("SEK", "Swedish krona", "11.5"),
]
NOT_IN_THE_CRM = ("NOK", "SEK")


# The first day of the demo ERP's exchange rates.
RATES_SINCE = date(2024, 1, 1)


def _fields(*pairs: tuple[str, str], direction: str = "bidirectional") -> list[dict]:
    return [
        {"source": source, "destination": destination, "direction": direction, "enabled": True}
        for source, destination in pairs
    ]


# The lookups of the default mappings: a customer's currency code is the CRM account's
# transactioncurrencyid, found by its ISO code, a blank code being the ERP's local currency; a
# contact's company number is its company contact, whose business relation names its customer,
# and its CRM parentcustomerid is the account coupled to that customer (or with its number).
CURRENCY_LOOKUP = {
    "source": "currencyCode",
    "destination": "transactioncurrencyid",
    "direction": "bidirectional",
    "enabled": True,
    "type": "lookup",
    "lookup": {
        "entity": "transactioncurrencies",
        "match": "isocurrencycode",
        "mapping": "CURRENCY",
        "label": "Currency",
        "blank": "local currency",
    },
}
# A currency's exchange rate in force today, from the ERP's currencyExchangeRates.
EXCHANGE_RATE = {
    "source": "code",
    "destination": "exchangerate",
    "direction": "to_destination",
    "enabled": True,
    "type": "exchange rate",
}
COMPANY_LOOKUP = {
    "source": "companyNumber",
    "destination": "parentcustomerid_account",
    "direction": "bidirectional",
    "enabled": True,
    "type": "lookup",
    "lookup": {
        "entity": "accounts",
        "match": "accountnumber",
        "mapping": "CUSTOMER",
        "via": "company contact",
        "property": "_parentcustomerid_value",
        "label": "Company",
    },
}


def create_records(
    rng: random.Random, customers: int = 150, not_in_the_crm: tuple[str, ...] = NOT_IN_THE_CRM
) -> None:
    """The two apps' own data, with the setup failure cases planted; the CRM starts without
    the currencies `not_in_the_crm`."""
    with webhooks.unheard_while_nobody_listens():
        _create_records(rng, customers, not_in_the_crm)


def _bulk(model: type[M], records: Iterable[M]) -> list[M]:
    """Records made in one statement, announced as created as each save would announce it."""
    made = model._default_manager.bulk_create(records)
    webhooks.announce_created(model, made)
    return made


def _create_records(rng: random.Random, customers: int, not_in_the_crm: tuple[str, ...]) -> None:
    _bulk(
        demo.ErpCurrency,
        [demo.ErpCurrency(code=code, description=name) for code, name, _ in CURRENCIES],
    )
    # `rate` units of the currency are worth one unit of the local currency; NOK has no
    # exchange rate at all.
    _bulk(
        demo.ErpCurrencyExchangeRate,
        [
            demo.ErpCurrencyExchangeRate(
                currency_code=code,
                starting_date=RATES_SINCE,
                exchange_rate_amount=Decimal(rate),
                relational_exchange_rate_amount=Decimal(1),
            )
            for code, _, rate in CURRENCIES
            if rate
        ],
    )
    crm_currencies = {
        currency.iso_currency_code: currency
        for currency in _bulk(
            demo.CrmTransactionCurrency,
            [
                demo.CrmTransactionCurrency(
                    iso_currency_code=code, currency_name=name, exchange_rate=Decimal(rate)
                )
                for code, name, rate in CURRENCIES
                if code not in not_in_the_crm and rate
            ],
        )
    }
    _bulk(
        demo.ErpSalesperson,
        [
            demo.ErpSalesperson(
                code=f"SP{i:02d}",
                name=f"{PEOPLE[i]} {SURNAMES[i]}",
                email=f"{PEOPLE[i].lower()}@erp.example",
            )
            for i in range(5)
        ],
    )
    create_users()
    lcy = settings.DEMO_ERP_LOCAL_CURRENCY
    rows = []
    for i in range(customers):
        city, country = CITIES[i % len(CITIES)]
        company = f"{COMPANIES[i % len(COMPANIES)]} {SUFFIXES[i % len(SUFFIXES)]}"
        name = company if i < len(COMPANIES) * 2 else f"{company} {i}"
        code = CURRENCIES[i % 4][0] if i % 25 else "SEK"
        rows.append(
            demo.ErpCustomer(
                number=f"C{(i + 1) * 10:05d}",
                display_name=name,
                email=f"office{i}@{COMPANIES[i % len(COMPANIES)].split()[0].lower()}.example",
                phone_number=f"+45 {rng.randint(20000000, 99999999)}",
                city=city,
                country=country,
                # As Business Central keeps them, customers in the local currency have none.
                currency_code="" if code == lcy else code,
                salesperson_code=f"SP{i % 5:02d}",
            )
        )
    _bulk(demo.ErpCustomer, rows)
    # Some accounts already exist in the CRM: the full sync couples them by account number.
    _bulk(
        demo.CrmAccount,
        [
            demo.CrmAccount(
                name=c.display_name,
                account_number=c.number,
                email=c.email,
                telephone=c.phone_number,
                city=c.city,
                country=c.country,
                transaction_currency=crm_currencies[c.currency_code or lcy],
            )
            for c in rows[: customers // 5]
            if (c.currency_code or lcy) in crm_currencies
        ],
    )
    # Each customer has its company contact, numbered from the contacts' series and linked to
    # it by a business relation, as Business Central makes one for a new customer; the people
    # work for one customer each: not for a customer in SEK.
    companies = demo.create_company_contacts(rows)
    people = [
        (i, company)
        for i, (c, company) in enumerate(zip(rows[:60], companies, strict=False))
        if c.currency_code != "SEK"
    ]
    numbers = demo.ErpNumberSeries.take(demo.ErpNumberSeries.CONTACTS, len(people))
    _bulk(
        demo.ErpContact,
        [
            demo.ErpContact(
                number=number,
                display_name=f"{PEOPLE[i % 10]} {SURNAMES[i % 8]}",
                email=f"{PEOPLE[i % 10].lower()}.{i}@example.com",
                company_number=company.number,
                company_name=company.display_name,
            )
            for number, (i, company) in zip(numbers, people, strict=True)
        ],
    )
    _bulk(
        demo.ErpItem,
        [
            demo.ErpItem(
                number=f"{1000 + i}",
                display_name=f"{ITEMS[i % 10]} {['Pro', 'Lite', 'Sport'][i % 3]} {i}",
                unit_price=Decimal(rng.randint(500, 50000)) / 100,
            )
            for i in range(20)
        ],
    )


def create_users() -> None:
    """The CRM's organization: its root business unit with the standard roles (Business
    Central's integration solution installed), a business unit for the Nordic sales team, and
    its users, each in the default team of its business unit."""
    root = security.install_security()
    nordics = security.create_business_unit(NORDICS, root)
    # The integration user is a non-interactive user of the Nordic business unit (so it needs
    # no license), holding that unit's copy of the narrower integration role, which cannot
    # create or write products.
    integration = demo.CrmSystemUser(
        full_name="Integration User",
        domain_name=INTEGRATION_USER,
        password=INTEGRATION_PASSWORD,
        access_mode=demo.CrmSystemUser.AccessMode.NON_INTERACTIVE,
        is_licensed=False,
    )
    admin = demo.CrmSystemUser(
        full_name="CRM Admin", domain_name=ADMIN_USER, password=ADMIN_PASSWORD
    )
    new_hire = demo.CrmSystemUser(
        full_name="New Hire",
        domain_name="newhire@demo-crm.example",
        password="demo-new",
        password_change_required=True,
    )
    security.add_users(
        [
            (integration, nordics, ("Integration User",)),
            (admin, root, ("System Administrator",)),
            (new_hire, root, ("Salesperson",)),
        ]
    )
    # The root roles and the users, made in bulk, announced as each save would announce them.
    webhooks.announce_created(demo.CrmRole, demo.CrmRole.objects.filter(business_unit=root))
    webhooks.announce_created(demo.CrmSystemUser, [integration, admin, new_hire])


def demo_authority(base_url: str) -> str:
    """The demo identity provider's authority, as https://login.microsoftonline.com/<tenant>
    is Microsoft Entra ID's."""
    return f"{base_url}/demo/identity/{settings.DEMO_TENANT_ID}"


def create_connection(base_url: str) -> Connection:
    """The connection to both demo apps. It signs in as Business Central online and Dataverse
    expect, with OAuth 2.0 client credentials at the demo identity provider: each app's API
    user is an application there (client ID and secret)."""
    connection = Connection.objects.create(
        name=CONNECTION_NAME,
        source_app=ERP,
        destination_app=CRM,
        source_base_url=api_root("erp", base_url),
        destination_base_url=api_root("crm", base_url),
        source_flavor=Connection.Flavor.BUSINESS_CENTRAL,
        destination_flavor=Connection.Flavor.DATAVERSE,
        auth_method=Connection.AuthMethod.OAUTH2,
        integration_user=INTEGRATION_USER,
        source_username=settings.DEMO_ERP_USER,
        source_secret=settings.DEMO_ERP_PASSWORD,
        source_authority=demo_authority(base_url),
        source_scope="api://demo-erp/.default",
        destination_username=INTEGRATION_USER,
        destination_secret=INTEGRATION_PASSWORD,
        destination_authority=demo_authority(base_url),
        destination_scope="api://demo-crm/.default",
        source_settings={"record_url": base_url + "/demo/erp/{entity}/{id}/"},
        destination_settings={"record_url": base_url + "/demo/crm/{entity}/{id}/"},
    )
    specs = [
        ("CURRENCY", "currencies", "transactioncurrencies", 10, "to_destination", "code",
         "isocurrencycode", _fields(("code", "isocurrencycode"), ("displayName", "currencyname"),
                                    direction="to_destination") + [EXCHANGE_RATE], ""),
        ("CUSTOMER", "customers", "accounts", 30, "bidirectional", "number", "accountnumber",
         _fields(("displayName", "name"), ("number", "accountnumber"), ("email", "emailaddress1"),
                 ("phoneNumber", "telephone1"), ("city", "address1_city"),
                 ("country", "address1_country")) + [CURRENCY_LOOKUP], ""),
        # People only: a company contact is its customer, which CUSTOMER synchronizes.
        ("CONTACT", "contacts", "contacts", 40, "bidirectional", "email", "emailaddress1",
         _fields(("displayName", "fullname"), ("email", "emailaddress1")) + [COMPANY_LOOKUP],
         "type eq 'Person'"),
        ("ITEM-PRODUCT", "items", "products", 50, "bidirectional", "number", "productnumber",
         _fields(("displayName", "name"), ("number", "productnumber"), ("unitPrice", "price")),
         ""),
    ]  # fmt: skip
    TableMapping.objects.bulk_create(
        TableMapping(
            connection=connection,
            name=name,
            source_entity=source,
            destination_entity=destination,
            dependency_order=order,
            direction=direction,
            source_match_field=s_match,
            destination_match_field=d_match,
            field_mappings=field_map,
            source_filter=where,
            # A scheduled run creates the currencies new in the ERP: the customers in them
            # cannot be created in the CRM before.
            sync_only_coupled_records=name != "CURRENCY",
        )
        for name, source, destination, order, direction, s_match, d_match, field_map, where in specs
    )
    return connection


def _edit(record, **changes) -> None:
    """Change a record as a person would (saving it moves its modified time on)."""
    for name, value in changes.items():
        setattr(record, name, value)
    record.save()


def run(mapping: TableMapping, kind: str = SyncJob.Kind.MODIFIED) -> SyncJob | None:
    """One scheduled run, as the schedule does it: a paused mapping only has its setup
    checked, and runs when the check passes. A job an app's throttling paused is gone on
    with by the job that continues it, as a worker would, only without the wait."""
    mapping.refresh_from_db()
    if mapping.is_paused and not breaker.resume_if_setup_passes(mapping):
        return None
    job = create_job(mapping, kind=kind, trigger=SyncJob.Trigger.SCHEDULE)
    job = engine.run_job(job.pk, wait=True)
    while job.throttled and job.successor is not None:
        job = engine.run_job(job.successor.pk, wait=True)
    return job


def _crm_client(base_url: str) -> httpx.Client:
    """The CRM's API as its administrator uses it."""
    return httpx.Client(
        base_url=base_url + "/demo/crm/api/data/v9.2/",
        auth=(ADMIN_USER, ADMIN_PASSWORD),
        timeout=10,
        verify=tls_context(),
    )


def plant_user_changes(base_url: str, rng: random.Random) -> None:
    """What people do in the CRM between syncs, through its API: each anchor case once."""
    client = _crm_client(base_url)
    customer = TableMapping.objects.get(name="CUSTOMER")
    couplings = list(Coupling.objects.filter(mapping=customer).order_by("pk"))
    for i, coupling in enumerate(couplings[5:8]):
        # A phone number longer than the ERP's 30 characters, and an e-mail it refuses.
        change = (
            {"telephone1": "+45 3333 4444 ext. 5555 (reception)"}
            if i % 2
            else {"emailaddress1": "accounts@@contoso"}
        )
        client.patch(f"accounts({coupling.destination_record_id})", json=change)
    for coupling in couplings[10:12]:
        # Deleted in the CRM only; then the ERP record changes.
        client.delete(f"accounts({coupling.destination_record_id})")
        customer_row = demo.ErpCustomer.objects.get(pk=coupling.source_record_id)
        customer_row.city = "Aarhus"
        customer_row.save()
    for coupling in couplings[14:16]:
        # Changed on both sides since the last sync.
        client.patch(
            f"accounts({coupling.destination_record_id})", json={"address1_city": "Bergen"}
        )
        customer_row = demo.ErpCustomer.objects.get(pk=coupling.source_record_id)
        customer_row.city = "Malmö"
        customer_row.save()
    client.close()


def plant_daily_changes(base_url: str, rng: random.Random, size: int) -> None:
    """A day of work on coupled customers in both apps: mostly fine, some of it refused."""
    client = _crm_client(base_url)
    couplings = list(
        Coupling.objects.filter(mapping__name="CUSTOMER", is_skipped=False).order_by("pk")
    )
    for coupling in couplings:
        # Someone fixes about half of what the ERP refused before the next run.
        if coupling.last_result_from_destination == Coupling.Result.FAILURE and rng.random() < 0.5:
            erp_customer = demo.ErpCustomer.objects.filter(pk=coupling.source_record_id).first()
            if erp_customer:
                fix = {"telephone1": erp_customer.phone_number, "emailaddress1": erp_customer.email}
                client.patch(f"accounts({coupling.destination_record_id})", json=fix)
    for coupling in rng.sample(couplings, min(size, len(couplings))):
        account = f"accounts({coupling.destination_record_id})"
        erp_customer = demo.ErpCustomer.objects.filter(pk=coupling.source_record_id).first()
        roll = rng.random()
        if roll < 0.5:
            client.patch(account, json={"address1_city": rng.choice(CITIES)[0]})
        elif roll < 0.7 and erp_customer:
            _edit(erp_customer, phone_number=f"+45 {rng.randint(20000000, 99999999)}")
        elif roll < 0.8:
            # Typed into the CRM with the extension: too long for the ERP's phone No.
            client.patch(
                account,
                json={
                    "telephone1": f"+45 {rng.randint(20000000, 99999999)} ext. 2210 (switchboard)"
                },
            )
        elif roll < 0.88:
            client.patch(account, json={"emailaddress1": f"sales@{rng.choice(ITEMS).lower()}"})
        elif roll < 0.96 and erp_customer:
            # The same customer edited in both apps before the next sync.
            client.patch(account, json={"address1_city": "Gothenburg"})
            _edit(erp_customer, city="Helsinki")
        elif erp_customer:
            client.delete(account)
            _edit(erp_customer, city="Aalborg")
    client.close()


# What the integration user needs to register the console's webhook
# (docs/operations/connecting.md, Change notifications).
WEBHOOK_ROLE = "Webhook registration"
WEBHOOK_PRIVILEGES = [
    f"prv{verb}{table}"
    for table in ("ServiceEndpoint", "SdkMessageProcessingStep")
    for verb in ("Create", "Read", "Write", "Delete")
] + ["prvReadSdkMessage"]


def allow_webhook_registration() -> None:
    """The CRM's administrator gives the integration user a role that may register webhooks."""
    user = demo.CrmSystemUser.objects.get(domain_name=INTEGRATION_USER)
    if not demo.CrmRole.objects.filter(name=WEBHOOK_ROLE).exists():
        security.create_role(WEBHOOK_ROLE, WEBHOOK_PRIVILEGES)
    user.roles.add(security.role_named(WEBHOOK_ROLE, user.business_unit))


def subscribe_to_changes(connection: Connection, base_url: str) -> None:
    """Let the demo apps notify the console of changes: the ERP through subscriptions, the
    CRM through a webhook and its steps, both made by the console with the apps' APIs as it
    keeps them for any Business Central and Dataverse."""
    allow_webhook_registration()
    keep_subscribed(connection, console_url=base_url)


@dataclass(frozen=True)
class Mark:
    """Where the history stood at the end of a period: its last job and the moment."""

    job_pk: int
    at: datetime


def _mark() -> Mark:
    return Mark(_last_job_pk(), timezone.now())


def _age(since: Mark, connection: Connection, days: float) -> Mark:
    """Date the jobs run since the mark (and their entries, and the resolutions and audit
    events of the period) `days` back, so the demo log spans weeks as a real one does and
    the 7-day clean-up has something to take."""
    shift = timedelta(days=days)
    jobs = SyncJob.objects.filter(mapping__connection=connection, pk__gt=since.job_pk)
    entries = SyncError.objects.filter(job__in=jobs)
    entries.update(created_at=F("created_at") - shift)
    refresh_group_times(entries.values_list("group_id", flat=True))
    jobs.update(
        created_at=F("created_at") - shift,
        started_at=F("started_at") - shift,
        finished_at=F("finished_at") - shift,
    )
    # What was resolved and recorded meanwhile happened on that day too.
    SyncError.objects.filter(
        mapping__connection=connection, status_changed_at__gte=since.at
    ).update(status_changed_at=F("status_changed_at") - shift)
    AuditEvent.objects.filter(at__gte=since.at).update(at=F("at") - shift)
    # The health snapshots those jobs wrote today belong to that day, too.
    today, day = timezone.localdate(), timezone.localdate(timezone.now() - shift)
    if day != today:
        todays = MappingHealthSnapshot.objects.filter(mapping__connection=connection, day=today)
        MappingHealthSnapshot.objects.filter(mapping__in=todays.values("mapping"), day=day).delete()
        todays.update(day=day)
    return _mark()


def _sign_in_as(connection: Connection, username: str, password: str) -> None:
    """Change the CRM side's sign-in, with the audit event a change in the admin writes."""
    before = connection.destination_username
    connection.destination_username, connection.destination_secret = username, password
    connection.save()
    audit.record(
        audit.Action.CONNECTION_CHANGED,
        f"Changed connection {connection}: destination_username, destination_secret (demo data)",
        actor_label="seed_demo",
        target=connection,
        details={
            "change": "changed",
            "fields": {
                "destination_username": {"from": before, "to": username},
                "destination_secret": "changed",
            },
        },
    )


def _last_job_pk() -> int:
    return SyncJob.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


def seed_demo(*, base_url: str | None = None, customers: int = 60, random_seed: int = 7) -> dict:
    """Build the demo apps' data and run real sync jobs against them over HTTP.

    The demo apps must be served at `base_url` (default DEMO_BASE_URL)."""
    rng = random.Random(random_seed)  # noqa: S311 - repeatable demo data, not secrets
    base = (base_url or settings.DEMO_BASE_URL).rstrip("/")
    with transaction.atomic():
        create_records(rng, customers)
        connection = create_connection(base)
    with _retries_without_waiting(connection):
        _replay_history(connection, base, rng, customers)
    set_up_lag_probe(connection)
    subscribe_to_changes(connection, base)
    return {
        "jobs": SyncJob.objects.filter(mapping__connection=connection).count(),
        "couplings": Coupling.objects.filter(mapping__connection=connection).count(),
        "errors": SyncError.objects.filter(mapping__connection=connection).count(),
    }


@contextmanager
def _retries_without_waiting(connection: Connection) -> Iterator[None]:
    """Weeks of history are replayed in seconds: a throttled or unavailable app is retried
    as often as ever, but without waiting out its Retry-After. The connection keeps its
    own settings afterwards."""
    quick = {"backoff_seconds": 0.01, "max_retry_after": 0.01, "throttle_budget": 0.05}
    saved = {side: dict(getattr(connection, f"{side}_settings")) for side in SIDES}
    for side in SIDES:
        getattr(connection, f"{side}_settings").update(quick)
    connection.save(update_fields=[f"{side}_settings" for side in SIDES])
    try:
        yield
    finally:
        connection.refresh_from_db()
        for side in SIDES:
            setattr(connection, f"{side}_settings", saved[side])
        connection.save(update_fields=[f"{side}_settings" for side in SIDES])


def _replay_history(connection: Connection, base: str, rng: random.Random, customers: int):
    """Four weeks of scheduled runs and of what people and apps did between them."""
    mappings = {m.name: m for m in connection.mappings.all()}
    ordered = list(connection.mappings.order_by("dependency_order"))
    mark = _mark()

    # Four weeks ago: the first full synchronization couples and creates records.
    for mapping in ordered:
        run(mapping, SyncJob.Kind.FULL)
    mark = _age(mark, connection, days=27.6)
    # Then people change records in the CRM; two scheduled runs find the same failures, and
    # the second one skips them.
    plant_user_changes(base, rng)
    for days in (25.4, 24.1):
        for mapping in ordered:
            run(mapping)
        mark = _age(mark, connection, days=days)
    # The integration user's role cannot create currencies or products, so CURRENCY and
    # ITEM-PRODUCT failed with one setup entry per run and were paused. An administrator
    # gives the user the Integration Administrator role; the next runs resume them.
    user = demo.CrmSystemUser.objects.get(domain_name=INTEGRATION_USER)
    user.roles.add(security.role_named("Integration Administrator", user.business_unit))
    # Three weeks of everyday work between the scheduled runs.
    for days in (21.3, 18.2, 15.6, 12.3, 10.1, 8.1, 6.4):
        plant_daily_changes(base, rng, size=max(4, customers // 8))
        if days == 12.3:
            # A busy hour in the CRM: its service protection limit holds CUSTOMER back; the
            # job pauses, and the job that goes on with it writes everything.
            demo.DemoFault.objects.create(
                app="crm", entity="accounts", mode=demo.DemoFault.Mode.THROTTLE, remaining=1
            )
        for mapping in ordered:
            run(mapping)
        mark = _age(mark, connection, days=days)

    # The integration user's password must be changed at next sign-in: the job fails, once.
    user.password_change_required = True
    user.save()
    _edit(
        demo.ErpContact.objects.filter(type=demo.ErpContact.Type.PERSON).order_by("number").first(),
        display_name="Ana Larsen",
    )
    run(mappings["CONTACT"])
    user.password_change_required = False
    user.save()
    mark = _age(mark, connection, days=5.2)
    # Someone puts the CRM administrator in as the integration user for a while.
    _sign_in_as(connection, ADMIN_USER, ADMIN_PASSWORD)
    run(mappings["CONTACT"])
    _sign_in_as(connection, INTEGRATION_USER, INTEGRATION_PASSWORD)
    mark = _age(mark, connection, days=3.4)
    # The integration user is disabled in the CRM for a while.
    user.is_disabled = True
    user.save()
    _edit(demo.ErpItem.objects.order_by("number").first(), display_name="Bicycle Pro X")
    run(mappings["ITEM-PRODUCT"])
    user.is_disabled = False
    user.save()
    mark = _age(mark, connection, days=1.5)
    # The ERP answers with broken JSON: the third setup failure of CONTACT in a row pauses it.
    # Then the CRM throttles for hours: each CUSTOMER job pauses, and the jobs that go on
    # with it get nothing done either; six such pauses in a row count as an outage, and the
    # third outage in a row pauses CUSTOMER too.
    demo.DemoFault.objects.create(app="erp", entity="contacts", mode=demo.DemoFault.Mode.GARBAGE)
    run(mappings["CONTACT"])
    demo.DemoFault.objects.create(app="crm", mode=demo.DemoFault.Mode.THROTTLE)
    _edit(demo.ErpCustomer.objects.order_by("number").first(), phone_number="+45 7070 7070")
    for _ in range(breaker.SETUP_FAILURES_BEFORE_PAUSE):
        run(mappings["CUSTOMER"])
    demo.DemoFault.objects.all().delete()
    # The next scheduled run finds both apps answering again and resumes them.
    for mapping in connection.mappings.filter(paused_at__isnull=False):
        breaker.resume_if_setup_passes(mapping)
    mark = _age(mark, connection, days=0.6)
    # Last night's reconciliation: a sales rep created a prospect account in the CRM only,
    # and someone deleted a coupled account in the CRM by hand.
    demo.CrmAccount.objects.create(name="Prospect: Nordlys Cycling", account_number="")
    # One whose records never failed: the entries of the others keep their links.
    coupled = (
        Coupling.objects.filter(mapping=mappings["CUSTOMER"])
        .exclude(pk__in=SyncError.objects.filter(coupling__isnull=False).values("coupling_id"))
        .latest("pk")
    )
    demo.CrmAccount.objects.filter(pk=coupled.destination_record_id).delete()
    run(mappings["CUSTOMER"], SyncJob.Kind.RECONCILE)
    mark = _age(mark, connection, days=0.3)
    # This morning's work and scheduled run.
    plant_daily_changes(base, rng, size=max(4, customers // 8))
    for mapping in ordered:
        run(mapping)


# The ERP customer the demo's lag probe changes: a record of its own, so that its marker
# (written into the customer's name, which CUSTOMER carries to the CRM account's name) harms no
# real customer's data.
LAG_PROBE_CUSTOMER = "LAG-PROBE"


def set_up_lag_probe(connection: Connection) -> LagProbe:
    """The demo's lag probe: CUSTOMER's marker in the name of a "Lag probe" customer, every
    minute, limit 5 minutes. The customer is created and coupled by a job of that record;
    then the probe writes its first marker and the job that carries it runs, so the console
    shows a lag at once."""
    mapping = connection.mappings.get(name="CUSTOMER")
    customer = demo.ErpCustomer.objects.create(
        number=LAG_PROBE_CUSTOMER,
        display_name="Lag probe",
        city="Copenhagen",
        country="DK",
        salesperson_code="SP00",
    )
    coupling_job = create_job(
        mapping,
        kind=SyncJob.Kind.COUPLED,
        trigger=SyncJob.Trigger.USER,
        direction=TableMapping.Direction.TO_DESTINATION,
        record_ids={TableMapping.Direction.TO_DESTINATION: [str(customer.pk)]},
    )
    engine.run_job(coupling_job.pk, wait=True)
    probe = probes.save_probe(
        mapping,
        direction=TableMapping.Direction.TO_DESTINATION,
        record_id=str(customer.pk),
        marker_field="displayName",
        marker_length=100,
        interval_minutes=1,
        limit_seconds=300,
        actor_label="seed_demo",
    )
    probes.run_probe(probe.pk)  # writes the marker in the ERP
    run(mapping)  # the job a change notification or the schedule runs
    probes.run_probe(probe.pk)  # finds it in the CRM
    return probe


def remove_demo() -> None:
    """Delete what seed_demo made (the demo tables and the demo connection with its data)."""
    with transaction.atomic():
        connection = Connection.objects.filter(name=CONNECTION_NAME).first()
        if connection:
            SyncError.objects.filter(mapping__connection=connection).delete()
            ErrorGroup.objects.filter(mapping__connection=connection).delete()
            connection.delete()
        for model in (
            demo.CrmSdkMessageProcessingStep,
            demo.CrmServiceEndpoint,
            demo.DemoFault,
            demo.CrmContact,
            demo.CrmAccount,
            demo.CrmProduct,
            demo.CrmTransactionCurrency,
            demo.CrmSystemUser,
            demo.CrmTeam,
            demo.CrmRole,
            demo.ErpContactBusinessRelation,
            demo.ErpContact,
            demo.ErpCustomer,
            demo.ErpNumberSeries,
            demo.ErpItem,
            demo.ErpCurrency,
            demo.ErpCurrencyExchangeRate,
            demo.ErpSalesperson,
            demo.ErpSubscription,
        ):
            model.objects.all().delete()
        # Business units last, the branches before the root they belong to.
        demo.CrmBusinessUnit.objects.filter(parent__isnull=False).delete()
        demo.CrmBusinessUnit.objects.all().delete()


def demo_exists() -> bool:
    return Connection.objects.filter(name=CONNECTION_NAME).exists()
