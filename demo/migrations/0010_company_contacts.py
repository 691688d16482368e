"""Company contacts as Business Central keeps them: numbered from the contacts' number series
(CT000001, ...), not like their customers, and linked to their customer by a contact business
relation.

Existing demo data moves over: a company contact numbered like a customer is that customer's;
it takes the next number of the contacts' series, its people's company numbers follow it, and
a business relation links it to the customer. The demo connection's lookups, where seed_demo
made them, move to what seed_demo makes now: a contact's company goes through the company
contact to its customer, and a blank currency code is the local currency."""

import re
import uuid

import django.db.models.deletion
from django.db import migrations, models
from django.utils import timezone

CONTACTS_SERIES, FIRST_CONTACT_NUMBER = "CONT", "CT000001"
DEMO_CONNECTION = "Demo ERP ↔ Demo CRM"
DIGITS_AT_THE_END = re.compile(r"(\d+)(\D*)$")


def _increment(number: str) -> str:
    match = DIGITS_AT_THE_END.search(number)
    digits = match.group(1)
    return number[: match.start(1)] + str(int(digits) + 1).zfill(len(digits)) + match.group(2)


def _renumber(contact_model, contact, number: str, now) -> None:
    """Give a company contact another number; the people of that company follow it."""
    contact_model.objects.filter(type="Person", company_number=contact.number).update(
        company_number=number, last_modified=now
    )
    contact.number = contact.company_number = number
    contact.save(update_fields=["number", "company_number", "last_modified"])


def company_contacts_of_customers(apps, schema_editor):
    contact_model = apps.get_model("demo", "ErpContact")
    customer_model = apps.get_model("demo", "ErpCustomer")
    relation_model = apps.get_model("demo", "ErpContactBusinessRelation")
    series_model = apps.get_model("demo", "ErpNumberSeries")
    customers = {customer.number: customer for customer in customer_model.objects.all()}
    companies = list(
        contact_model.objects.filter(type="Company", number__in=list(customers)).order_by("number")
    )
    series, _ = series_model.objects.get_or_create(
        code=CONTACTS_SERIES, defaults={"starting_number": FIRST_CONTACT_NUMBER}
    )
    held = set(contact_model.objects.values_list("number", flat=True))
    number, now = series.last_number_used, timezone.now()
    for company in companies:
        customer = customers[company.number]
        number = _increment(number) if number else series.starting_number
        while number in held:
            number = _increment(number)
        held.add(number)
        _renumber(contact_model, company, number, now)
        relation_model.objects.create(contact=company, customer=customer, link_to_table="Customer")
    if companies:
        series.last_number_used = number
        series.save(update_fields=["last_number_used"])


def company_contacts_numbered_like_customers(apps, schema_editor):
    contact_model = apps.get_model("demo", "ErpContact")
    relation_model = apps.get_model("demo", "ErpContactBusinessRelation")
    held = set(contact_model.objects.values_list("number", flat=True))
    now = timezone.now()
    for relation in relation_model.objects.select_related("contact", "customer"):
        if relation.customer.number not in held:
            _renumber(contact_model, relation.contact, relation.customer.number, now)


def _demo_lookups(apps, change) -> None:
    mapping_model = apps.get_model("sync", "TableMapping")
    for mapping in mapping_model.objects.filter(connection__name=DEMO_CONNECTION):
        changed = False
        for spec in mapping.field_mappings:
            if spec.get("type") == "lookup" and isinstance(spec.get("lookup"), dict):
                changed = change(mapping.name, spec) or changed
        if changed:
            mapping.save(update_fields=["field_mappings"])


def _move_forward(name: str, spec: dict) -> bool:
    lookup = spec["lookup"]
    if (name, spec.get("source")) == ("CONTACT", "companyNumber") and lookup.get("mapping"):
        lookup["via"] = "company contact"
        return True
    if (name, spec.get("source")) == ("CUSTOMER", "currencyCode"):
        lookup["blank"] = "local currency"
        return True
    return False


def _move_back(name: str, spec: dict) -> bool:
    lookup = spec["lookup"]
    return bool(lookup.pop("via", None)) | bool(lookup.pop("blank", None))


def demo_lookups_follow_relations(apps, schema_editor):
    _demo_lookups(apps, _move_forward)


def demo_lookups_as_before(apps, schema_editor):
    _demo_lookups(apps, _move_back)


class Migration(migrations.Migration):
    dependencies = [
        ("demo", "0009_slow_fault"),
        ("sync", "0013_entra_sign_in_and_throttling"),
    ]

    operations = [
        migrations.CreateModel(
            name="ErpNumberSeries",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("code", models.CharField(max_length=20, unique=True)),
                ("starting_number", models.CharField(max_length=20)),
                ("last_number_used", models.CharField(blank=True, max_length=20)),
            ],
            options={
                "verbose_name_plural": "ERP number series",
            },
        ),
        migrations.CreateModel(
            name="ErpContactBusinessRelation",
            fields=[
                (
                    "id",
                    models.UUIDField(
                        default=uuid.uuid4, editable=False, primary_key=True, serialize=False
                    ),
                ),
                (
                    "link_to_table",
                    models.CharField(
                        choices=[("Customer", "Customer")], default="Customer", max_length=20
                    ),
                ),
                (
                    "contact",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="business_relations",
                        to="demo.erpcontact",
                    ),
                ),
                (
                    "customer",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="contact_business_relations",
                        to="demo.erpcustomer",
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("customer",), name="erp_one_contact_per_customer"
                    ),
                    models.UniqueConstraint(
                        fields=("contact", "link_to_table"), name="erp_one_customer_per_contact"
                    ),
                ],
            },
        ),
        migrations.RunPython(
            company_contacts_of_customers, company_contacts_numbered_like_customers
        ),
        migrations.RunPython(demo_lookups_follow_relations, demo_lookups_as_before),
    ]
