"""Connections and table mappings in the Django admin: secrets stay hidden, field mappings
are validated, and Test Connection asks the apps."""

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from sync.fields import field_mapping_problems
from sync.models import Connection, TableMapping
from tests.factories import make_connection

SECRET = "s3cr3t-never-shown"


@pytest.fixture
def admin_client(client, superuser):
    client.force_login(superuser)
    return client


def connection_form(connection: Connection, **changes) -> dict:
    data = {
        "name": connection.name,
        "source_app": connection.source_app,
        "source_base_url": connection.source_base_url,
        "destination_app": connection.destination_app,
        "destination_base_url": connection.destination_base_url,
        "source_flavor": connection.source_flavor,
        "destination_flavor": connection.destination_flavor,
        "auth_method": connection.auth_method,
        "integration_user": connection.integration_user,
        "source_username": "erp-user",
        "source_secret": "",
        "source_authority": "https://login.microsoftonline.com/contoso.onmicrosoft.com",
        "source_scope": "",
        "destination_username": "crm-user",
        "destination_secret": "",
        "destination_authority": "https://login.microsoftonline.com/contoso.onmicrosoft.com",
        "destination_scope": "",
        "source_settings": "{}",
        "destination_settings": "{}",
        "is_enabled": "on",
        "disabled_reason": "",
        "mappings-TOTAL_FORMS": "0",
        "mappings-INITIAL_FORMS": "0",
        "mappings-MIN_NUM_FORMS": "0",
        "mappings-MAX_NUM_FORMS": "1000",
    }
    data.update(changes)
    return data


@pytest.mark.django_db
def test_connection_secrets_are_never_shown_and_kept_when_left_blank(admin_client):
    connection = make_connection(source_secret=SECRET, destination_secret=SECRET)
    url = reverse("admin:sync_connection_change", args=[connection.pk])
    assert SECRET not in admin_client.get(url).content.decode()
    assert (
        SECRET not in admin_client.get(reverse("admin:sync_connection_changelist")).content.decode()
    )

    response = admin_client.post(url, connection_form(connection, destination_secret="new-one"))
    assert response.status_code == 302, response.content.decode()[:2000]
    connection.refresh_from_db()
    assert (connection.source_secret, connection.destination_secret) == (SECRET, "new-one")


@pytest.mark.django_db
def test_field_mappings_are_validated_with_clear_messages(admin_client):
    assert field_mapping_problems([{"source": "city", "destination": "address1_city"}]) == []
    problems = field_mapping_problems(
        [
            {
                "source": "",
                "destination": "x",
                "direction": "sideways",
                "transform": "shout",
                "enabled": "yes",
                "colour": "red",
            },
            "name",
        ]
    )
    assert problems == [
        "Field mapping 1 needs a source field name.",
        "Field mapping 1: direction must be one of bidirectional, to_destination, "
        "from_destination.",
        "Field mapping 1: transform must be one of upper, lower, trim.",
        "Field mapping 1: enabled must be true or false.",
        "Field mapping 1: unknown setting colour.",
        "Field mapping 2 must be an object.",
    ]
    assert field_mapping_problems({"source": "a"}) == ["Field mappings must be a list of objects."]

    connection = make_connection()
    response = admin_client.post(
        reverse("admin:sync_tablemapping_add"),
        {
            "connection": connection.pk,
            "name": "CUSTOMER",
            "source_entity": "customers",
            "destination_entity": "accounts",
            "direction": "bidirectional",
            "field_mappings": '[{"source": "city"}]',
            "update_conflict_resolution": "none",
            "deletion_conflict_resolution": "none",
            "dependency_order": 30,
            "sync_only_coupled_records": "on",
            "is_enabled": "on",
        },
    )
    assert response.status_code == 200
    assert "Field mapping 1 needs a destination field name." in response.content.decode()
    assert not TableMapping.objects.exists()


@pytest.mark.django_db
def test_test_connection_reports_what_the_apps_say(demo_apps, admin_client):
    changelist = reverse("admin:sync_connection_changelist")
    action = {"action": "test_connection", "_selected_action": [demo_apps.connection.pk]}
    response = admin_client.post(changelist, action)
    said = [str(m) for m in get_messages(response.wsgi_request)]
    assert any("Business Central: The integration user can sign in." in m for m in said)
    assert any("Dynamics 365 Sales: The integration user can sign in." in m for m in said)

    demo_apps.connection.destination_username = "admin@demo-crm.example"
    demo_apps.connection.destination_secret = "demo-admin"
    demo_apps.connection.source_secret = "wrong"
    demo_apps.connection.save()
    response = admin_client.post(changelist, action)
    said = " ".join(str(m) for m in get_messages(response.wsgi_request))
    assert "holds the System Administrator role" in said
    assert "AADSTS7000215: Invalid client secret provided." in said
    assert "demo-admin" not in said


@pytest.mark.django_db
def test_a_new_connection_signs_in_with_oauth_and_needs_an_authority_it_cannot_derive(
    admin_client,
):
    add = reverse("admin:sync_connection_add")
    page = admin_client.get(add).content.decode()
    assert '<option value="oauth2" selected>' in page
    assert 'name="destination_authority"' in page and 'name="source_scope"' in page

    data = connection_form(
        Connection(
            name="Contoso",
            source_app="Business Central",
            source_base_url="https://api.businesscentral.dynamics.com/v2.0/contoso.com/"
            "production/api/v2.0/companies(1)/",
            destination_app="Dynamics 365 Sales",
            destination_base_url="https://contoso.crm.dynamics.com/api/data/v9.2/",
            source_flavor="business_central",
            destination_flavor="dataverse",
            auth_method="oauth2",
        ),
        source_authority="",
        destination_authority="",
        source_secret="client-secret",
        destination_secret="client-secret",
    )
    refused = admin_client.post(add, data)
    assert refused.status_code == 200
    errors = refused.context["adminform"].form.errors
    assert list(errors) == ["destination_authority"]  # the ERP's address names its tenant

    data["destination_authority"] = "https://login.microsoftonline.com/contoso.com"
    assert admin_client.post(add, data).status_code == 302
    config = Connection.objects.get(name="Contoso").side_config("source")
    assert config.token_url == "https://login.microsoftonline.com/contoso.com/oauth2/v2.0/token"
    assert config.token_scope == "https://api.businesscentral.dynamics.com/.default"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("policy", "saved"),
    [
        ({"skip_after_failures": "5", "transient_retries": "10"}, (5, 10, None, "every_attempt")),
        ({"retry_delay_seconds": "600", "transient_retries": "0"}, (2, 0, 600, "every_attempt")),
        ({"entry_logging": "once"}, (2, 2, None, "once")),
        ({"entry_logging": "sometimes"}, None),
        ({"skip_after_failures": "21"}, None),
        ({"skip_after_failures": "0"}, None),
        ({"transient_retries": "11"}, None),
        ({"retry_delay_seconds": "21601"}, None),
    ],
)
def test_the_policies_of_a_mapping_are_edited_within_their_range(admin_client, policy, saved):
    connection = make_connection()
    response = admin_client.post(
        reverse("admin:sync_tablemapping_add"),
        {
            "connection": connection.pk,
            "name": "CUSTOMER",
            "source_entity": "customers",
            "destination_entity": "accounts",
            "direction": "bidirectional",
            "field_mappings": '[{"source": "city", "destination": "address1_city"}]',
            "update_conflict_resolution": "none",
            "deletion_conflict_resolution": "none",
            "dependency_order": 30,
            "sync_only_coupled_records": "on",
            "is_enabled": "on",
            "skip_after_failures": "2",
            "transient_retries": "2",
            "entry_logging": "every_attempt",
            **policy,
        },
    )
    mapping = TableMapping.objects.first()
    if saved is None:
        assert response.status_code == 200
        refusal = "Select a valid choice" if "entry_logging" in policy else "Ensure this value is"
        assert refusal in response.content.decode()
        assert mapping is None
    else:
        assert response.status_code == 302, response.content.decode()[-3000:]
        assert mapping is not None
        assert (
            mapping.skip_after_failures,
            mapping.transient_retries,
            mapping.retry_delay_seconds,
            mapping.entry_logging,
        ) == saved
