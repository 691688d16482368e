"""The tables of the two demo business apps: an ERP modelled on Business Central and a CRM
modelled on Dynamics 365 Sales (Dataverse)."""

import re
import uuid

from django.db import models, transaction
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

    def save(self, *args, **kwargs) -> None:
        """As Business Central does when its marketing setup names a business relation code
        for customers and a number series for contacts: a new customer gets its company
        contact, linked to it by a contact business relation."""
        if not self._state.adding:
            super().save(*args, **kwargs)
            return
        with transaction.atomic():
            super().save(*args, **kwargs)
            create_company_contacts([self])


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
        """As Business Central does: a new contact without a number takes the next one of the
        contacts' number series, a company contact is its own company, and a person's
        company name is that of the company contact its company number names."""
        if not self.number:
            (self.number,) = ErpNumberSeries.take(ErpNumberSeries.CONTACTS)
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


class ErpNumberSeries(models.Model):
    """A number series, as Business Central keeps one (No. Series and its line): the numbers
    it gives out start at `starting_number` and go up by one, the digits at the end counted
    on (Business Central's IncStr); a number some record already holds is passed over."""

    CONTACTS = "CONT"
    # The series the demo ERP starts with: its contacts' (Marketing Setup, Contact Nos.).
    STARTING_NUMBERS = {CONTACTS: "CT000001"}

    code = models.CharField(max_length=20, unique=True)
    starting_number = models.CharField(max_length=20)
    last_number_used = models.CharField(max_length=20, blank=True)

    class Meta:
        verbose_name = "ERP number series"
        verbose_name_plural = "ERP number series"

    def __str__(self) -> str:
        return f"{self.code} from {self.starting_number}"

    @classmethod
    def take(cls, code: str, count: int = 1) -> list[str]:
        """The next `count` numbers of the series `code`; the series goes on after them."""
        with transaction.atomic():
            cls.objects.get_or_create(
                code=code, defaults={"starting_number": cls.STARTING_NUMBERS[code]}
            )
            series = cls.objects.select_for_update().get(code=code)
            numbers: list[str] = []
            number = series.last_number_used
            while len(numbers) < count:
                wanted: list[str] = []
                while len(numbers) + len(wanted) < count:
                    number = increment(number) if number else series.starting_number
                    wanted.append(number)
                # Numbers given by hand are passed over, as the next free ones are taken.
                held = set(
                    ErpContact.objects.filter(number__in=wanted).values_list("number", flat=True)
                )
                numbers += [n for n in wanted if n not in held]
            series.last_number_used = number
            series.save(update_fields=["last_number_used"])
        return numbers


DIGITS_AT_THE_END = re.compile(r"(\d+)(\D*)$")


def increment(number: str) -> str:
    """The number after `number`: its last digits plus one, as wide as they were."""
    match = DIGITS_AT_THE_END.search(number)
    if match is None:
        raise ValueError(f"The number {number!r} has no digits to count on.")
    digits = match.group(1)
    return number[: match.start(1)] + str(int(digits) + 1).zfill(len(digits)) + match.group(2)


class ErpContactBusinessRelation(models.Model):
    """What links a company contact to its customer in Business Central (table Contact
    Business Relation, "Link to Table" Customer and the customer's number): the contact is the
    customer's, and the customer's contacts are that company's. A customer has one company
    contact; deleting the customer leaves the contact and drops the relation."""

    class LinkToTable(models.TextChoices):
        CUSTOMER = "Customer", "Customer"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    contact = models.ForeignKey(
        ErpContact, on_delete=models.CASCADE, related_name="business_relations"
    )
    link_to_table = models.CharField(
        max_length=20, choices=LinkToTable.choices, default=LinkToTable.CUSTOMER
    )
    customer = models.ForeignKey(
        ErpCustomer, on_delete=models.CASCADE, related_name="contact_business_relations"
    )

    class Meta:
        verbose_name = "ERP contact business relation"
        verbose_name_plural = "ERP contact business relations"
        constraints = [
            models.UniqueConstraint(fields=["customer"], name="erp_one_contact_per_customer"),
            models.UniqueConstraint(
                fields=["contact", "link_to_table"], name="erp_one_customer_per_contact"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.contact.number} is customer {self.customer.number}"


def create_company_contacts(customers: list[ErpCustomer]) -> list[ErpContact]:
    """Each customer's company contact, numbered from the contacts' series and linked to it
    by a business relation (Business Central's CustCont-Update, run when a customer is
    inserted); many in a few statements."""
    numbers = ErpNumberSeries.take(ErpNumberSeries.CONTACTS, len(customers))
    contacts = ErpContact.objects.bulk_create(
        ErpContact(
            number=number,
            type=ErpContact.Type.COMPANY,
            display_name=customer.display_name,
            email=customer.email,
            company_number=number,
            company_name=customer.display_name,
        )
        for number, customer in zip(numbers, customers, strict=True)
    )
    ErpContactBusinessRelation.objects.bulk_create(
        ErpContactBusinessRelation(contact=contact, customer=customer)
        for contact, customer in zip(contacts, customers, strict=True)
    )
    return contacts


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
    language; the privileges are the `prv<Verb><Table>` names the role grants, each with its
    access level (Basic, Local, Deep or Global: User, Business Unit, Parent: Child Business
    Units or Organization), as `{"prvReadAccount": "Global", ...}`."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100)
    business_unit = models.ForeignKey(
        CrmBusinessUnit, on_delete=models.CASCADE, related_name="roles"
    )
    role_template_id = models.UUIDField("role template", null=True, blank=True)
    parent_root_role = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="copies"
    )
    privileges = models.JSONField(default=dict, blank=True)
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
    # Accounts are owned by users (ownerid): whoever created one through the API. A record
    # without an owner belongs to the root business unit (demo/security.py).
    owner = models.ForeignKey(
        CrmSystemUser, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
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
    # Owned by a user, as accounts are.
    owner = models.ForeignKey(
        CrmSystemUser, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
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


class CrmServiceEndpoint(models.Model):
    """A Dataverse service endpoint (table `serviceendpoint`): where the event framework posts
    the execution context of the steps registered on it. A webhook is one with contract 8
    and an http(s) `url`; its authentication (`authtype`) says how its key (`authvalue`,
    which the API never reads back) is sent: WebhookKey as the `code` query parameter."""

    class Contract(models.IntegerChoices):
        ONE_WAY = 1, "OneWay"
        QUEUE = 2, "Queue"
        REST = 3, "Rest"
        TWO_WAY = 4, "TwoWay"
        TOPIC = 5, "Topic"
        QUEUE_PERSISTENT = 6, "Queue (Persistent)"
        EVENT_HUB = 7, "Event Hub"
        WEBHOOK = 8, "Webhook"
        EVENT_GRID = 9, "Event Grid"
        MANAGED_DATA_LAKE = 10, "Managed Data Lake"

    class AuthType(models.IntegerChoices):
        ACS = 1, "ACS"
        SAS_KEY = 2, "SAS Key"
        SAS_TOKEN = 3, "SAS Token"
        WEBHOOK_KEY = 4, "Webhook Key"
        HTTP_HEADER = 5, "Http Header"
        HTTP_QUERY_STRING = 6, "Http Query String"
        CONNECTION_STRING = 7, "Connection String"
        ACCESS_KEY = 8, "Access Key"

    class ConnectionMode(models.IntegerChoices):
        NORMAL = 1, "Normal"
        FEDERATED = 2, "Federated"

    class MessageFormat(models.IntegerChoices):
        BINARY_XML = 1, "Binary XML"
        JSON = 2, "Json"
        TEXT_XML = 3, "Text XML"

    class UserClaim(models.IntegerChoices):
        NONE = 1, "None"
        USER_ID = 2, "UserId"
        USER_INFO = 3, "UserInfo"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=256)
    description = models.CharField(max_length=2000, blank=True)
    contract = models.IntegerField(choices=Contract.choices)
    auth_type = models.IntegerField(choices=AuthType.choices, null=True, blank=True)
    # A shared secret: kept encrypted, and never answered by the API.
    auth_value = EncryptedTextField(blank=True)
    url = models.CharField(max_length=2000, blank=True)
    connection_mode = models.IntegerField(
        choices=ConnectionMode.choices, default=ConnectionMode.NORMAL
    )
    message_format = models.IntegerField(choices=MessageFormat.choices, null=True, blank=True)
    user_claim = models.IntegerField(choices=UserClaim.choices, default=UserClaim.NONE)
    modified_on = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        verbose_name = "CRM service endpoint"
        verbose_name_plural = "CRM service endpoints"

    def __str__(self) -> str:
        return f"{self.name} ({self.url or self.get_contract_display()})"


class CrmSdkMessageProcessingStep(models.Model):
    """A step registered with the Dataverse event framework (table
    `sdkmessageprocessingstep`): on a message (`sdkmessageid`), for one table (its message
    filter, `sdkmessagefilterid`; none: every table), at a stage of the pipeline, run
    synchronously or asynchronously, by its event handler: here a service endpoint, whose
    steps are deleted with it."""

    class Stage(models.IntegerChoices):
        PRE_VALIDATION = 10, "Pre-validation"
        PRE_OPERATION = 20, "Pre-operation"
        POST_OPERATION = 40, "Post-operation"

    class Mode(models.IntegerChoices):
        SYNCHRONOUS = 0, "Synchronous"
        ASYNCHRONOUS = 1, "Asynchronous"

    class SupportedDeployment(models.IntegerChoices):
        SERVER_ONLY = 0, "Server Only"
        OUTLOOK_CLIENT_ONLY = 1, "Microsoft Dynamics 365 Client for Outlook Only"
        BOTH = 2, "Both"

    class InvocationSource(models.IntegerChoices):
        INTERNAL = -1, "Internal"
        PARENT = 0, "Parent"
        CHILD = 1, "Child"

    class State(models.IntegerChoices):
        ENABLED = 0, "Enabled"
        DISABLED = 1, "Disabled"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=256)
    description = models.CharField(max_length=256, blank=True)
    service_endpoint = models.ForeignKey(
        CrmServiceEndpoint, on_delete=models.CASCADE, related_name="steps"
    )
    # The message and its filter are Dataverse's own rows (demo/dataverse_messages.py):
    # their names are kept beside their ids, so a change finds its steps in one query.
    sdk_message_id = models.UUIDField()
    message_name = models.CharField(max_length=100)
    sdk_message_filter_id = models.UUIDField(null=True, blank=True)
    primary_entity = models.CharField(
        max_length=100, blank=True, help_text="The table's logical name; empty: every table."
    )
    stage = models.IntegerField(choices=Stage.choices)
    mode = models.IntegerField(choices=Mode.choices)
    rank = models.IntegerField(default=1)
    supported_deployment = models.IntegerField(
        choices=SupportedDeployment.choices, default=SupportedDeployment.SERVER_ONLY
    )
    invocation_source = models.IntegerField(
        choices=InvocationSource.choices, default=InvocationSource.PARENT
    )
    async_auto_delete = models.BooleanField(default=False)
    filtering_attributes = models.TextField(blank=True)
    state = models.IntegerField(choices=State.choices, default=State.ENABLED)
    modified_on = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        verbose_name = "CRM SDK message processing step"
        verbose_name_plural = "CRM SDK message processing steps"
        indexes = [
            models.Index(fields=["message_name", "primary_entity"], name="crm_step_event"),
        ]

    def __str__(self) -> str:
        return self.name
