"""Every API operation, fuzzed from its OpenAPI description with a Sync administrator's token:
whatever arrives, the answer is never a server error and matches what the description says."""

import json

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.models import ApiToken
from syncconsole.wsgi import application

from .conftest import make_hostile_world

# The description as the server gives it out at /api/v1/schema/, made once at collection.
DESCRIPTION = json.loads(json.dumps(SchemaGenerator().get_schema(request=None, public=True)))
schema = schemathesis.openapi.from_dict(DESCRIPTION)
schema.app = application
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    response_schema_conformance,
    content_type_conformance,
    response_headers_conformance,
]
FUZZ = settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
    database=None,
)


@pytest.fixture
def requests_keep_the_test_transaction():
    """The WSGI application closes the database connection after each request, as a server
    does; here it must stay, with the test's transaction, as the Django test client keeps it."""
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


@pytest.fixture
def administrator_token(db, staff_user, unused_port, requests_keep_the_test_transaction):
    make_hostile_world(unused_port)
    _, key = ApiToken.issue(staff_user, "fuzzing", integration="Fuzzer")
    return {"Authorization": f"Bearer {key}"}


@schema.parametrize()
@FUZZ
def test_no_operation_answers_a_server_error(case, administrator_token):
    case.call_and_validate(headers=administrator_token, checks=CHECKS)


def test_the_description_covers_every_endpoint():
    from tests.api.test_access import RULES

    described = {(path, method) for path, item in DESCRIPTION["paths"].items() for method in item}
    # The description and its page are the two endpoints not described.
    assert len(described) == len(RULES) - 2


def test_coupling_by_hand_when_an_app_cannot_be_reached_is_a_bad_gateway(
    db, staff_user, unused_port
):
    from django.test import Client
    from django.urls import reverse

    world = make_hostile_world(unused_port)
    _, key = ApiToken.issue(staff_user, "script")
    response = Client(headers={"Authorization": f"Bearer {key}"}).post(
        reverse("api:couplings"),
        {"mapping": world.mapping.pk, "source_record_id": "S1", "destination_record_id": "D1"},
        content_type="application/json",
    )
    assert response.status_code == 502
    assert "Could not connect" in response.json()["detail"]


def test_a_path_no_endpoint_matches_answers_json_under_the_api(db, staff_user):
    from django.test import Client

    _, key = ApiToken.issue(staff_user, "script")
    api = Client(headers={"Authorization": f"Bearer {key}"})
    for path in ("/api/v1/errors/null,null/", "/api/v1/nothing/", "/api/v1/jobs/1x/"):
        response = api.get(path)
        assert response.status_code == 404, path
        assert response["Content-Type"] == "application/json"
        assert response.json() == {"detail": "No such endpoint."}
    # The console keeps its page.
    response = api.get("/errors/null/")
    assert response.status_code == 404 and response["Content-Type"].startswith("text/html")
