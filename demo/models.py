"""The tables of the two demo business apps: an ERP modelled on Business Central and a CRM
modelled on Dynamics 365 Sales (Dataverse)."""

import uuid

from django.db import models

from syncconsole.encryption import EncryptedTextField


class ErpCurrency(models.Model):
    """An ERP currency. As in Business Central, it has no exchange rate of its own: its rates
    are the currency exchange rates, each from a starting date."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    code = models.CharField(max_length=10, unique=True)
    description = models.CharField(max_length=100, blank=True)
    last_modified = models.DateTimeField(auto_now=True, db_index=True)

    def __str__(self) -> str:
        return self.code


class ErpCurrencyExchangeRate(models.Model):
    """One exchange rate of a currency from its starting date on, as Business Central keeps it
    (table Currency Exchange Rate): `exchange_rate_amount` units of the currency are worth
    `relational_exchange_rate_amount` units of the relational currency, or of the local
    currency when none is named. A currency without any rate is a real setup failure."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    currency_code = models.CharField(max_length=10)
    starting_date = models.DateField()
    exchange_rate_amount = models.DecimalField(max_digits=18, decimal_places=6, default=1)
    relational_currency_code = models.CharField(max_length=10, blank=True)
    relational_exchange_rate_amount = models.DecimalField(
        max_digits=18, decimal_places=6, default=1
    )
    last_modified = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        constraints = [
            # The table's primary key in Business Central: Currency Code, Starting Date.
            models.UniqueConstraint(
                fields=["currency_code", "starting_date"], name="erp_rate_per_currency_and_date"
            )
        ]
        indexes = [
            models.Index(fields=["last_modified", "id"], name="erp_rate_changes"),
        ]

    def __str__(self) -> str:
        return f"{self.currency_code} from {self.starting_date}"


class ErpSalesperson(models.Model):
    """An ERP salesperson."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    code = models.CharField(max_length=20, unique=True)
    name = models.CharField(max_length=100)
    email = models.CharField(max_length=200, blank=True)
    last_modified = models.DateTimeField(auto_now=True, db_index=True)

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class ErpCustomer(models.Model):
    """An ERP customer."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    number = models.CharField(max_length=20, unique=True)
    display_name = models.CharField(max_length=100)
    email = models.CharField(max_length=200, blank=True)
    phone_number = models.CharField("phone No.", max_length=30, blank=True)
    city = models.CharField(max_length=60, blank=True)
    country = models.CharField(max_length=60, blank=True)
    currency_code = models.CharField(max_length=10, blank=True)
    salesperson_code = models.CharField(max_length=20, blank=True)
    blocked = models.BooleanField(default=False)
    last_modified = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        # Pages are read in (modified, id) order (here and in every table of both apps):
        # each page is one range scan of this index.
        indexes = [
            models.Index(fields=["last_modified", "id"], name="erp_customer_changes"),
        ]

    def __str__(self) -> str:
        return f"{self.number} {self.display_name}"


class ErpContact(models.Model):
    """An ERP contact person."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    number = models.CharField(max_length=20, unique=True)
    display_name = models.CharField(max_length=100)
    email = models.CharField(max_length=200, blank=True)
    company_number = models.CharField(max_length=20, blank=True)
    last_modified = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        indexes = [
            models.Index(fields=["last_modified", "id"], name="erp_contact_changes"),
            models.Index(fields=["email"], name="erp_contact_email"),
        ]

    def __str__(self) -> str:
        return f"{self.number} {self.display_name}"


class ErpItem(models.Model):
    """An ERP item."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    number = models.CharField(max_length=20, unique=True)
    display_name = models.CharField(max_length=100)
    unit_price = models.DecimalField(max_digits=18, decimal_places=2, default=0)
    base_unit_of_measure = models.CharField(max_length=10, default="PCS")
    last_modified = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        indexes = [
            models.Index(fields=["last_modified", "id"], name="erp_item_changes"),
        ]

    def __str__(self) -> str:
        return f"{self.number} {self.display_name}"


class CrmTransactionCurrency(models.Model):
    """A CRM transaction currency."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    iso_currency_code = models.CharField(max_length=10, unique=True)
    currency_name = models.CharField(max_length=100, blank=True)
    exchange_rate = models.DecimalField(max_digits=18, decimal_places=6, null=True, blank=True)
    modified_on = models.DateTimeField(auto_now=True, db_index=True)

    def __str__(self) -> str:
        return self.iso_currency_code


class CrmSystemUser(models.Model):
    """A CRM user with security roles; the integration user is one of them."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    full_name = models.CharField(max_length=100)
    domain_name = models.CharField(max_length=200, unique=True)
    is_disabled = models.BooleanField(default=False)
    roles = models.JSONField(default=list, blank=True)
    # The demo signs its API users in with a plain password; a real tenant uses Entra ID.
    password = models.CharField(max_length=100, blank=True)
    password_change_required = models.BooleanField(default=False)
    modified_on = models.DateTimeField(auto_now=True, db_index=True)

    def __str__(self) -> str:
        return self.domain_name


class CrmAccount(models.Model):
    """A CRM account (a customer in the ERP)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=160)
    account_number = models.CharField(max_length=20, blank=True)
    email = models.CharField(max_length=200, blank=True)
    telephone = models.CharField(max_length=60, blank=True)
    city = models.CharField(max_length=60, blank=True)
    country = models.CharField(max_length=60, blank=True)
    transaction_currency_code = models.CharField(max_length=10, blank=True)
    modified_on = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        indexes = [
            models.Index(fields=["modified_on", "id"], name="crm_account_changes"),
            # The match field a synchronization couples by.
            models.Index(fields=["account_number"], name="crm_account_number"),
        ]

    def __str__(self) -> str:
        return self.name


class CrmContact(models.Model):
    """A CRM contact."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    full_name = models.CharField(max_length=160)
    email = models.CharField(max_length=200, blank=True)
    parent_account = models.ForeignKey(
        CrmAccount, null=True, blank=True, on_delete=models.SET_NULL, related_name="contacts"
    )
    modified_on = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        indexes = [
            models.Index(fields=["modified_on", "id"], name="crm_contact_changes"),
            models.Index(fields=["email"], name="crm_contact_email"),
        ]

    def __str__(self) -> str:
        return self.full_name


class CrmProduct(models.Model):
    """A CRM product (an item in the ERP)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100)
    product_number = models.CharField(max_length=20, blank=True)
    price = models.DecimalField(max_digits=18, decimal_places=2, default=0)
    default_unit = models.CharField(max_length=10, default="PCS")
    modified_on = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        indexes = [
            models.Index(fields=["modified_on", "id"], name="crm_product_changes"),
            models.Index(fields=["product_number"], name="crm_product_number"),
        ]

    def __str__(self) -> str:
        return self.name


class DemoFault(models.Model):
    """A failure the demo app's API is told to produce, to show how the sync copes."""

    class Mode(models.TextChoices):
        TIMEOUT = "timeout", "Answer too late (timeout)"
        SLOW = "slow", "Answer slowly, but answer"
        SERVER_ERROR = "server_error", "500 Internal Server Error"
        UNAVAILABLE = "unavailable", "503 Service Unavailable"
        THROTTLE = "throttle", "429 Too Many Requests"
        GARBAGE = "garbage", "Answer with broken JSON"

    app = models.CharField(max_length=3, choices=[("erp", "ERP"), ("crm", "CRM")])
    entity = models.CharField(max_length=50, blank=True, help_text="Empty: every table.")
    mode = models.CharField(max_length=20, choices=Mode.choices)
    remaining = models.PositiveIntegerField(
        null=True, blank=True, help_text="How many requests fail; empty: until deleted."
    )
    delay_seconds = models.FloatField(default=5)

    def __str__(self) -> str:
        return f"{self.app} {self.entity or '*'}: {self.get_mode_display()}"


class ErpSubscription(models.Model):
    """A webhook subscription of the demo ERP, as Business Central's API keeps them
    (`POST api/v2.0/subscriptions`): who is notified of changes to which resource, until
    when."""

    subscription_id = models.CharField(max_length=32, unique=True)
    notification_url = models.URLField(max_length=2048)
    resource = models.CharField(max_length=500)
    # The entity set of the resource (customers), for finding the subscribers of a change.
    entity = models.CharField(max_length=50, db_index=True)
    client_state = EncryptedTextField(blank=True)
    user_id = models.UUIDField()
    expiration = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    last_modified = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.resource} → {self.notification_url}"


class DemoWebhook(models.Model):
    """A webhook of the demo CRM: a service endpoint and step registered for the changes of
    one table, as an administrator registers one in Dataverse with the Plug-in Registration
    tool. (The demo ERP's subscriptions are ErpSubscription, made through its API.)"""

    app = models.CharField(max_length=3, choices=[("erp", "ERP"), ("crm", "CRM")])
    entity = models.CharField(max_length=50)
    notification_url = models.URLField(max_length=500)
    client_state = EncryptedTextField(blank=True)

    def __str__(self) -> str:
        return f"{self.app}/{self.entity} → {self.notification_url}"
