"""The Alerts page: Sync administrators manage their own subscriptions; changes need a POST
with its CSRF token."""

import pytest
from django.test import Client
from django.urls import reverse

from errors.models import AlertDelivery, AlertSubscription, Category
from syncconsole.permissions import SYNC_ADMINISTRATORS
from tests.conftest import user_in_role
from tests.factories import make_connection, make_error, make_mapping

pytestmark = pytest.mark.django_db

PAGE = reverse("errors:alerts")


def subscribe(client, **fields):
    data = {
        "new-new_problems": "on",
        "new-regressions": "on",
        "new-setup_errors": "on",
        "new-scope": "",
    }
    data.update(fields)
    return client.post(PAGE, {key: value for key, value in data.items() if value is not None})


def test_an_administrator_subscribes_to_one_mapping(staff_client, staff_user):
    mapping = make_mapping(name="CUSTOMER")
    response = subscribe(
        staff_client, **{"new-regressions": None, "new-scope": f"mapping:{mapping.pk}"}
    )
    assert response.status_code == 302
    subscription = AlertSubscription.objects.get()
    assert (subscription.user, subscription.mapping, subscription.connection) == (
        staff_user,
        mapping,
        None,
    )
    assert subscription.events == {"new", "setup"}
    page = staff_client.get(PAGE).content.decode()
    assert "Table mapping CUSTOMER" in page
    assert "Alerts go to <strong>triager@example.com</strong>" in page


def test_a_subscription_needs_an_event_and_a_known_place(staff_client):
    response = subscribe(
        staff_client,
        **{"new-new_problems": None, "new-regressions": None, "new-setup_errors": None},
    )
    assert response.status_code == 400
    assert "Choose at least one kind of event." in response.content.decode()
    assert subscribe(staff_client, **{"new-scope": "mapping:987654"}).status_code == 400
    assert subscribe(staff_client, **{"new-scope": "everything"}).status_code == 400
    assert not AlertSubscription.objects.exists()


def test_the_same_place_twice_is_refused(staff_client):
    connection = make_connection()
    assert (
        subscribe(staff_client, **{"new-scope": f"connection:{connection.pk}"}).status_code == 302
    )
    response = subscribe(staff_client, **{"new-scope": f"connection:{connection.pk}"})
    assert response.status_code == 400
    assert "You already have a subscription for this" in response.content.decode()
    assert AlertSubscription.objects.count() == 1


def test_an_administrator_changes_and_removes_a_subscription(staff_client, staff_user):
    connection = make_connection(name="Production")
    subscription = AlertSubscription.objects.create(user=staff_user)
    prefix = f"s{subscription.pk}"
    response = staff_client.post(
        reverse("errors:alert_change", args=[subscription.pk]),
        {f"{prefix}-setup_errors": "on", f"{prefix}-scope": f"connection:{connection.pk}"},
    )
    assert response.status_code == 302
    subscription.refresh_from_db()
    assert subscription.events == {"setup"} and subscription.connection == connection

    response = staff_client.post(reverse("errors:alert_delete", args=[subscription.pk]))
    assert response.status_code == 302
    assert not AlertSubscription.objects.exists()


def test_nobody_changes_another_administrators_subscriptions(staff_client):
    theirs = AlertSubscription.objects.create(user=user_in_role("other", SYNC_ADMINISTRATORS))
    change = reverse("errors:alert_change", args=[theirs.pk])
    assert staff_client.post(change, {f"s{theirs.pk}-scope": ""}).status_code == 404
    assert staff_client.post(reverse("errors:alert_delete", args=[theirs.pk])).status_code == 404
    theirs.refresh_from_db()
    assert theirs.events == {"new", "regression", "setup"}
    assert "You are not subscribed to any alerts." in staff_client.get(PAGE).content.decode()


def test_sync_users_may_not_subscribe_nor_see_the_link(sync_user_client):
    assert sync_user_client.get(PAGE).status_code == 403
    assert subscribe(sync_user_client).status_code == 403
    assert not AlertSubscription.objects.exists()
    assert PAGE not in sync_user_client.get(reverse("errors:groups")).content.decode()


def test_administrators_find_the_page_in_the_navigation(staff_client):
    assert f'href="{PAGE}"' in staff_client.get(reverse("errors:groups")).content.decode()


def test_changes_need_the_csrf_token(staff_user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff_user)
    assert subscribe(client).status_code == 403
    assert not AlertSubscription.objects.exists()

    client.get(PAGE)
    token = client.cookies["csrftoken"].value
    response = subscribe(client, csrfmiddlewaretoken=token)
    assert response.status_code == 302
    subscription = AlertSubscription.objects.get()
    assert client.post(reverse("errors:alert_delete", args=[subscription.pk])).status_code == 403
    assert AlertSubscription.objects.exists()


def test_an_account_without_an_address_is_told(client):
    admin = user_in_role("noaddress", SYNC_ADMINISTRATORS)
    admin.email = ""
    admin.save()
    client.force_login(admin)
    page = client.get(PAGE).content.decode()
    assert "Your account has no e-mail address, so no alert can be sent to you." in page


def test_subscriptions_are_in_the_django_admin(staff_client, staff_user, sync_user):
    AlertSubscription.objects.create(user=staff_user)
    listing = staff_client.get(reverse("admin:errors_alertsubscription_changelist"))
    assert listing.status_code == 200 and "triager@example.com" in listing.content.decode()
    response = staff_client.post(
        reverse("admin:errors_alertsubscription_add"),
        {"user": sync_user.pk, "new_problems": "on"},
    )
    assert response.status_code == 200
    assert "Only Sync administrators receive alerts." in response.content.decode()
    assert AlertSubscription.objects.count() == 1


def test_alerts_the_mail_server_refused_are_shown_with_their_attempts(
    staff_client, staff_user, superuser
):
    group = make_error(category=Category.AUTHENTICATION, message="Sign-in <refused>").group
    mine = AlertDelivery.objects.create(
        key="mine", user=staff_user, group=group, events=["new"], attempts=2,
        last_error="SMTPServerDisconnected: Connection unexpectedly closed",
    )  # fmt: skip
    AlertDelivery.objects.create(key="sent", user=staff_user, group=group, state="sent")
    AlertDelivery.objects.create(
        key="theirs", user=superuser, group=group, attempts=1, last_error="Not mine"
    )
    page = staff_client.get(PAGE).content.decode()
    assert "Alerts not sent yet" in page
    assert "SMTPServerDisconnected: Connection unexpectedly closed" in page
    assert "Sign-in &lt;refused&gt;" in page and "Not mine" not in page
    assert f'<td class="num">{mine.attempts}</td>' in page

    AlertDelivery.objects.filter(pk=mine.pk).update(state="failed")
    assert "given up" in staff_client.get(PAGE).content.decode()
    listing = staff_client.get(reverse("admin:errors_alertdelivery_changelist"))
    assert listing.status_code == 200 and "SMTPServerDisconnected" in listing.content.decode()


def test_nothing_undelivered_shows_no_table(staff_client):
    assert "Alerts not sent yet" not in staff_client.get(PAGE).content.decode()
