import pytest
from django.urls import reverse

from tests.factories import make_error

pytestmark = pytest.mark.django_db


def console_urls():
    error = make_error()
    return [
        reverse("home"),
        reverse("errors:list"),
        reverse("errors:groups"),
        reverse("errors:detail", args=[error.pk]),
        reverse("errors:cleanup_confirm", args=["older_than"]),
        reverse("errors:cleanup_confirm", args=["all"]),
    ]


def test_anonymous_visitors_are_sent_to_sign_in(client):
    for url in console_urls():
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("login") + "?next=")


def test_signed_in_users_without_a_role_are_refused(client, plain_user):
    client.force_login(plain_user)
    for url in console_urls():
        response = client.get(url)
        assert response.status_code == 403, url
        assert "Sync users and Sync administrators only" in response.content.decode()


def test_users_without_a_role_cannot_delete(client, plain_user):
    make_error()
    client.force_login(plain_user)
    response = client.post(reverse("errors:cleanup_confirm", args=["all"]))
    assert response.status_code == 403
    from errors.models import SyncError

    assert SyncError.objects.count() == 1


def test_sign_in_page_signs_staff_in(client, staff_user):
    from tests.conftest import PASSWORD

    response = client.post(
        reverse("login"), {"username": "triager", "password": PASSWORD, "next": "/errors/"}
    )
    assert response.status_code == 302
    assert client.get(reverse("errors:list")).status_code == 200


def test_sign_out_is_a_post(staff_client):
    assert staff_client.get(reverse("logout")).status_code == 405
    assert staff_client.post(reverse("logout")).status_code == 302
    assert staff_client.get(reverse("errors:list")).status_code == 302
