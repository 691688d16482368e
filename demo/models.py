"""The tables of the two demo business apps: an ERP modelled on Business Central and a CRM
modelled on Dynamics 365 Sales (Dataverse)."""

import uuid

from django.db import models
from django.db.models.functions import Upper

from syncconsole.encryption import EncryptedTextField


class ErpCurrency(models.Model):
    """An ERP currency. As in Business Central, it has no exchange rate of its own: its rates
    are the currency exchange rates, each from a starting date."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    code = models.CharField(max_length=10, unique=True)
    description = models.CharField(max_length=100, blank=True)
    last_modified = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        verbose_name = "ERP currency"
        verbose_name_plural = "ERP currencies"

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
        verbose_name = "ERP currency exchange rate"
        verbose_name_plural = "ERP currency exchange rates"
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

    class Meta:
        verbose_name = "ERP salesperson"
        verbose_name_plural = "ERP salespeople"

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
        verbose_name = "ERP customer"
        verbose_name_plural = "ERP customers"
        # Pages are read in (modified, id) order (here and in every table of both apps):
        # each page is one range scan of this index.
        indexes = [
            models.Index(fields=["last_modified", "id"], name="erp_customer_changes"),
        ]

    def __str__(self) -> str:
        return f"{self.number} {self.display_name}"


class ErpContact(models.Model):
    """An ERP contact: a person, or a company the people work for (Business Central's
    contact types). A person's company is the company contact its company number names."""

    class Type(models.TextChoices):
        COMPANY = "Company", "Company"
        PERSON = "Person", "Person"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    number = models.CharField(max_length=20, unique=True)
    type = models.CharField(max_length=10, choices=Type.choices, default=Type.PERSON)
    display_name = models.CharField(max_length=100)
    email = models.CharField(max_length=200, blank=True)
    company_number = models.CharField(max_length=20, blank=True)
    company_name = models.CharField(max_length=100, blank=True)
    last_modified = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        verbose_name = "ERP contact"
        verbose_name_plural = "ERP contacts"
        indexes = [
            models.Index(fields=["last_modified", "id"], name="erp_contact_changes"),
            models.Index(fields=["email"], name="erp_contact_email"),
        ]

    def __str__(self) -> str:
        return f"{self.number} {self.display_name}"

    def save(self, *args, **kwargs) -> None:
        """As Business Central does: a company contact is its own company, and a person's
        company name is that of the company contact its company number names."""
        if self.type == self.Type.COMPANY:
            self.company_number, self.company_name = self.number, self.display_name
        elif not self.company_number:
            self.company_name = ""
        else:
            company = (
                ErpContact.objects.filter(number=self.company_number, type=self.Type.COMPANY)
                .exclude(pk=self.pk)
                .values_list("display_name", flat=True)
                .first()
            )
            if company is not None:
                self.company_name = company
        super().save(*args, **kwargs)


class ErpItem(models.Model):
    """An ERP item."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    number = models.CharField(max_length=20, unique=True)
    display_name = models.CharField(max_length=100)
    unit_price = models.DecimalField(max_digits=18, decimal_places=2, default=0)
    base_unit_of_measure = models.CharField(max_length=10, default="PCS")
    last_modified = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        verbose_name = "ERP item"
        verbose_name_plural = "ERP items"
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

    class Meta:
        verbose_name = "CRM transaction currency"
        verbose_name_plural = "CRM transaction currencies"

    def __str__(self) -> str:
        return self.iso_currency_code


class CrmBusinessUnit(models.Model):
    """A Dataverse business unit: the root one is the organization, the others its branches.
    Security roles and teams belong to one."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=160, unique=True)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    modified_on = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        verbose_name = "CRM business unit"
        verbose_name_plural = "CRM business units"

    def __str__(self) -> str:
        return self.name


class CrmRoleManager(models.Manager):
    def get_queryset(self):
        # A role reads as "name (business unit)" wherever it is listed.
        return super().get_queryset().select_related("business_unit")


class CrmRole(models.Model):
    """A Dataverse security role (table `role`).

    A role made in the root business unit is copied into every other business unit: each copy
    has its own `roleid`, the same role template (`roletemplateid`, set on the roles Dataverse
    ships, such as System Administrator) and points back at the root role (`parentrootroleid`;
    the root role points at itself). The names are what the organization calls them, in its
    language; the privileges are the `prv<Verb><Table>` names the role grants."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100)
    business_unit = models.ForeignKey(
        CrmBusinessUnit, on_delete=models.CASCADE, related_name="roles"
    )
    role_template_id = models.UUIDField("role template", null=True, blank=True)
    parent_root_role = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="copies"
    )
    privileges = models.JSONField(default=list, blank=True)
    modified_on = models.DateTimeField(auto_now=True, db_index=True)

    objects = CrmRoleManager()

    class Meta:
        verbose_name = "CRM security role"
        verbose_name_plural = "CRM security roles"
        ordering = ["name", "business_unit__name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.business_unit.name})"

    def save(self, *args, **kwargs) -> None:
        super().save(*args, **kwargs)
        if self.parent_root_role_id == self.pk:
            # The copies of a root role follow it, as in Dataverse.
            self.copies.exclude(pk=self.pk).update(
                name=self.name,
                role_template_id=self.role_template_id,
                privileges=self.privileges,
                modified_on=self.modified_on,
            )


class CrmSystemUser(models.Model):
    """A CRM user with security roles, held directly or through its teams; the integration
    user is one of them."""

    class AccessMode(models.IntegerChoices):
        # Dataverse's systemuser.accessmode choices.
        READ_WRITE = 0, "Read-Write"
        ADMINISTRATIVE = 1, "Administrative"
        READ = 2, "Read"
        SUPPORT_USER = 3, "Support User"
        NON_INTERACTIVE = 4, "Non-interactive"
        DELEGATED_ADMIN = 5, "Delegated Admin"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    full_name = models.CharField(max_length=100)
    domain_name = models.CharField(max_length=200, unique=True)
    business_unit = models.ForeignKey(
        CrmBusinessUnit, null=True, blank=True, on_delete=models.PROTECT, related_name="users"
    )
    access_mode = models.IntegerField(choices=AccessMode.choices, default=AccessMode.READ_WRITE)
    is_licensed = models.BooleanField(default=True)
    is_disabled = models.BooleanField(default=False)
    roles = models.ManyToManyField(CrmRole, blank=True, related_name="users")
    # The demo signs its API users in with a plain password; a real tenant uses Entra ID.
    password = models.CharField(max_length=100, blank=True)
    password_change_required = models.BooleanField(default=False)
    modified_on = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        verbose_name = "CRM system user"
        verbose_name_plural = "CRM system users"

    def __str__(self) -> str:
        return self.domain_name


class CrmTeam(models.Model):
    """A Dataverse team: its members hold the team's security roles too. Every business unit
    has a default team with all its users."""

    class TeamType(models.IntegerChoices):
        OWNER = 0, "Owner"
        ACCESS = 1, "Access"
        ENTRA_SECURITY_GROUP = 2, "Microsoft Entra ID Security Group"
        ENTRA_OFFICE_GROUP = 3, "Microsoft Entra ID Office Group"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=160)
    business_unit = models.ForeignKey(
        CrmBusinessUnit, on_delete=models.CASCADE, related_name="teams"
    )
    team_type = models.IntegerField(choices=TeamType.choices, default=TeamType.OWNER)
    is_default = models.BooleanField(default=False)
    roles = models.ManyToManyField(CrmRole, blank=True, related_name="teams")
    members = models.ManyToManyField(CrmSystemUser, blank=True, related_name="teams")
    modified_on = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        verbose_name = "CRM team"
        verbose_name_plural = "CRM teams"

    def __str__(self) -> str:
        return self.name


class CrmAccount(models.Model):
    """A CRM account (a customer in the ERP)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=160)
    account_number = models.CharField(max_length=20, blank=True)
    email = models.CharField(max_length=200, blank=True)
    telephone = models.CharField(max_length=60, blank=True)
    city = models.CharField(max_length=60, blank=True)
    country = models.CharField(max_length=60, blank=True)
    # A lookup, as in Dataverse: the API sets it with transactioncurrencyid@odata.bind and
    # reads it back as _transactioncurrencyid_value.
    transaction_currency = models.ForeignKey(
        CrmTransactionCurrency,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="accounts",
    )
    modified_on = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        verbose_name = "CRM account"
        verbose_name_plural = "CRM accounts"
        indexes = [
            models.Index(fields=["modified_on", "id"], name="crm_account_changes"),
            # The match field a synchronization couples by, compared without regard to case
            # as Dataverse compares text.
            models.Index(Upper("account_number"), name="crm_account_number"),
        ]

    def __str__(self) -> str:
        return self.name


class CrmContact(models.Model):
    """A CRM contact. Its company is Dataverse's customer lookup parentcustomerid, which
    refers to an account or to another contact: one of the two keys is set at most."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    full_name = models.CharField(max_length=160)
    email = models.CharField(max_length=200, blank=True)
    parent_account = models.ForeignKey(
        CrmAccount, null=True, blank=True, on_delete=models.SET_NULL, related_name="contacts"
    )
    parent_contact = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="child_contacts"
    )
    modified_on = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        verbose_name = "CRM contact"
        verbose_name_plural = "CRM contacts"
        indexes = [
            models.Index(fields=["modified_on", "id"], name="crm_contact_changes"),
            models.Index(Upper("email"), name="crm_contact_email"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(parent_account__isnull=True)
                | models.Q(parent_contact__isnull=True),
                name="crm_contact_one_parent_customer",
            )
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
        verbose_name = "CRM product"
        verbose_name_plural = "CRM products"
        indexes = [
            models.Index(fields=["modified_on", "id"], name="crm_product_changes"),
            models.Index(Upper("product_number"), name="crm_product_number"),
        ]

    def __str__(self) -> str:
        return self.name


class DemoFault(models.Model):
    """A failure the demo app's API is told to produce, to show how the sync copes."""

    class Mode(models.TextChoices):
        TIMEOUT = "timeout", "Answer too late (504 Gateway Timeout)"
        REQUEST_TIMEOUT = "request_timeout", "408 Request Timeout (operation timeout)"
        SLOW = "slow", "Answer slowly, but answer"
        SERVER_ERROR = "server_error", "500 Internal Server Error"
        UNAVAILABLE = "unavailable", "503 Service Unavailable"
        THROTTLE = "throttle", "429 Too Many Requests (number of requests)"
        THROTTLE_EXECUTION_TIME = "throttle_time", "429 Too Many Requests (execution time)"
        THROTTLE_CONCURRENCY = "throttle_concurrency", "429 Too Many Requests (concurrent requests)"
        GARBAGE = "garbage", "Answer with broken JSON"

    app = models.CharField(max_length=3, choices=[("erp", "ERP"), ("crm", "CRM")])
    entity = models.CharField(max_length=50, blank=True, help_text="Empty: every table.")
    mode = models.CharField(max_length=20, choices=Mode.choices)
    remaining = models.PositiveIntegerField(
        null=True, blank=True, help_text="How many requests fail; empty: until deleted."
    )
    delay_seconds = models.FloatField(default=5)
    retry_after = models.PositiveIntegerField(
        null=True,
        blank=True,
        default=1,
        help_text="Seconds the Retry-After header of a 429 or 503 asks for; empty: no "
        "Retry-After (Business Central may answer 429 without one).",
    )

    class Meta:
        verbose_name = "demo fault"
        verbose_name_plural = "demo faults"

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

    class Meta:
        verbose_name = "ERP subscription"
        verbose_name_plural = "ERP subscriptions"

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

    class Meta:
        verbose_name = "demo webhook"
        verbose_name_plural = "demo webhooks"

    def __str__(self) -> str:
        return f"{self.app}/{self.entity} → {self.notification_url}"
