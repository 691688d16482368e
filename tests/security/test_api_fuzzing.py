"""The API does what its OpenAPI description says, as an outside client finds it out:
schemathesis runs every phase (examples, coverage, fuzzing, stateful) with every check, on
the engine of `schemathesis run --phases=examples,coverage,fuzzing,stateful --checks=all`,
against the console in process through its WSGI application, with a Sync administrator's
token.

Valid requests by the description must be accepted (or refused for a reason of state: 404,
409), invalid ones refused, and every answer is described: its status code, its body and
its headers. The run is bounded and seeded, so that it sends the same requests every time,
and done in three parts (entries, problems, the rest), which the suite's workers run side by
side."""

import gc
import re
from dataclasses import dataclass, field

import pytest
import schemathesis
from drf_spectacular.generators import SchemaGenerator
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import Status, events, from_schema
from schemathesis.transport.wsgi import WSGITransport

from api.models import ApiToken
from sync.models import SyncJob
from syncconsole.wsgi import application
from tests.factories import make_error

from .conftest import HOSTILE, make_hostile_world

PHASES = ("examples", "coverage", "fuzzing", "stateful")
SEED = 20250605
# Enough cases that every kind of value and every link between operations is tried, few
# enough that the run stays short.
MAX_EXAMPLES = 12
MAX_STEPS = 6


def run_config(key: str, part: str) -> SchemathesisConfig:
    return SchemathesisConfig.from_dict(
        {
            "seed": SEED,
            # One worker thread: the requests of a case come in the order they are made.
            "workers": 1,
            "headers": {"Authorization": f"Bearer {key}"},
            "phases": {
                **{name: {"enabled": True} for name in PHASES},
                "stateful": {"enabled": True, "max-steps": MAX_STEPS},
            },
            "checks": {"enabled": True},
            "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
            # Nothing is kept between runs (schemathesis would write .schemathesis/ here).
            "cache": {"enabled": False},
            "operations": [
                # The operations of the other parts are switched off here, in the run's
                # configuration: a schema narrowed by include() is run whole as soon as the
                # configuration holds operation settings.
                {**left_out(part), "enabled": False},
                # A generated batch of ingestion holds up to 1,000 entries, each checked and
                # grouped: a few such batches find what a dozen would, at a third of the cost
                # (the examples and coverage phases still send every boundary of the batch).
                {
                    "include-path": "/api/v1/ingest/",
                    "phases": {"fuzzing": {"generation": {"max-examples": 4}}},
                },
            ],
        }
    )


@dataclass
class Run:
    cases: int = 0
    # The phases that ran to their end, whether they found anything or not.
    phases: set[str] = field(default_factory=set)
    found: list[str] = field(default_factory=list)
    # The operations that ran ("GET /api/v1/errors/"), the stateful phase's scenarios aside.
    operations: set[str] = field(default_factory=set)


def outcome_of(stream) -> Run:
    """What the run did and found: each failed check and each error."""
    run = Run()
    for event in stream:
        if isinstance(event, events.PhaseFinished) and event.status != Status.SKIP:
            run.phases.add(event.phase.name.value)
        elif isinstance(event, events.ScenarioFinished):
            run.cases += len(event.recorder.cases)
            if event.status != Status.SKIP and event.phase.value != "stateful":
                run.operations.add(event.recorder.label)
            for checks in event.recorder.checks.values():
                for check in checks:
                    if check.status == Status.FAILURE and check.failure_info is not None:
                        info = check.failure_info
                        run.found.append(
                            f"{event.recorder.label}: {check.name}: {info.failure.title}\n"
                            f"    {info.failure.message}\n    {info.code_sample[:600]}"
                        )
        elif isinstance(event, events.NonFatalError):
            run.found.append(f"{event.label}: error: {event.value!r}")
        elif isinstance(event, events.FatalError):
            run.found.append(f"fatal: {event.exception!r}")
    return run


@pytest.fixture
def in_process(monkeypatch):
    """The WSGI transport, as schemathesis uses it for a probe without credentials (the
    ignored_auth check), is handed the HTTP client's settings too, which werkzeug's test
    client does not take; they mean nothing in process.

    The requests are served in schemathesis's worker threads, each thread on a database
    connection of its own (so the test commits what it makes, and the live server that
    serves the demo apps sees it)."""
    send = WSGITransport.send

    def send_in_process(self, case, *, session=None, **kwargs):
        for name in ("max_redirects", "verify", "cert", "proxies"):
            kwargs.pop(name, None)
        return send(self, case, session=session, **kwargs)

    monkeypatch.setattr(WSGITransport, "send", send_in_process)
    yield
    # The worker threads are gone: their connections, unreferenced, are closed before the
    # test database is emptied.
    gc.collect()


# The operations, in parts that run side by side (each part's links between operations are
# followed in its stateful phase; a part is a family of resources that link to each other):
# the paths each part takes, "the rest" taking what no other part does.
PARTS = {
    "entries": r"^/api/v1/(errors|ingest)",
    "problems": r"^/api/v1/problems",
    "the rest": None,
}
TAKEN = "|".join(f"(?:{regex})" for regex in PARTS.values() if regex)


def in_part(part: str, path: str) -> bool:
    regex = PARTS[part]
    return bool(re.match(regex, path)) if regex else not re.match(TAKEN, path)


def left_out(part: str) -> dict[str, str]:
    """The run configuration's filter of the operations a part leaves out."""
    regex = PARTS[part]
    return {"exclude-path-regex": regex} if regex else {"include-path-regex": TAKEN}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("part", PARTS)
def test_the_api_does_what_its_description_says(
    in_process, demo_apps, staff_user, celery_queue, part, settings
):
    # The ignored_auth check sends wrong tokens from the one address all the cases come
    # from: the limit on wrong tokens (tests/api/test_token_lockout.py) would lock it out.
    settings.AXES_ENABLED = False
    # Couplings, entries, problems and jobs from a first synchronization of each mapping,
    # with apps that answer (an app that cannot be reached is a 502, a server error); an
    # entry of another integration with hostile text. The token names an integration, as
    # ingestion needs one.
    for mapping in demo_apps.connection.mappings.order_by("dependency_order"):
        demo_apps.run(mapping.name, SyncJob.Kind.FULL)
    make_error(integration=HOSTILE, message=HOSTILE, detail=HOSTILE, source_record_id=HOSTILE)
    _, key = ApiToken.issue(staff_user, "schemathesis", integration="Fuzzer")
    schema = schemathesis.openapi.from_wsgi(
        "/api/v1/schema/?format=json", application, config=run_config(key, part)
    )
    run = outcome_of(from_schema(schema).execute())
    assert not run.found, f"{len(run.found)} failures in {run.cases} cases:\n" + "\n".join(
        run.found
    )
    assert set(PHASES) <= run.phases and run.cases > 100, run
    # Each part runs its own operations, every one of them, and none of another part's.
    description = SchemaGenerator().get_schema(request=None, public=True)
    assert run.operations == {
        f"{method.upper()} {path}"
        for path, item in description["paths"].items()
        for method in item
        if in_part(part, path)
    }


def test_the_description_covers_every_endpoint():
    from tests.api.test_access import RULES

    description = SchemaGenerator().get_schema(request=None, public=True)
    described = {(path, method) for path, item in description["paths"].items() for method in item}
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
        assert response.json() == {
            "detail": "No such endpoint.",
            "request_id": response["X-Request-ID"],
        }
    # The console keeps its page.
    response = api.get("/errors/null/")
    assert response.status_code == 404 and response["Content-Type"].startswith("text/html")
