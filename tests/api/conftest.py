import pytest
from django.test import Client

from api.models import ApiToken
from syncconsole.permissions import INTEGRATIONS
from tests.conftest import user_in_role


def token_client(user, *, integration: str = "") -> Client:
    _, key = ApiToken.issue(user, "tests", integration=integration)
    return Client(headers={"Authorization": f"Bearer {key}"})


@pytest.fixture
def admin_api(staff_user) -> Client:
    return token_client(staff_user)


@pytest.fixture
def user_api(sync_user) -> Client:
    return token_client(sync_user)


@pytest.fixture
def integration_api(db) -> Client:
    """Another integration's account: it may send errors and nothing else."""
    return token_client(user_in_role("shop-sync", INTEGRATIONS), integration="Shop ↔ ERP")
