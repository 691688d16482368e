"""Bulk messages to a Dataverse elastic table, which writes each record of a request apart:
a failure lists the records refused, and the others were written ("Use bulk operation
messages", On Error behavior with elastic tables:
https://learn.microsoft.com/power-apps/developer/data-platform/bulk-operations). The demo CRM
has no elastic table, so a small HTTP app answers as the page documents: 400 with the first
refusal's message and, when `Prefer: odata.include-annotations` asks for it, the annotation
`@Microsoft.PowerApps.CDS.ErrorDetails.Plugin.BulkApiErrorDetails`, a JSON text of
`[{"RequestIndex", "Id", "StatusCode"}]`."""

import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from sync.connectors import ConnectorError, RemoteRecord
from sync.connectors.odata import DATAVERSE, ODataConnector, SideConfig

ANNOTATION = "@Microsoft.PowerApps.CDS.ErrorDetails.Plugin.BulkApiErrorDetails"
MESSAGE = "A value of 'not a number' is not valid for the column contoso_reading."


class ElasticTable(BaseHTTPRequestHandler):
    """CreateMultiple and UpdateMultiple of `contoso_sensordatas`: a target whose reading is
    not a number is refused, the others are written."""

    requests: list[tuple[str, int, str]] = []
    written: list[dict] = []

    def do_POST(self):  # noqa: N802 (the http.server's name)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        targets = body["Targets"]
        action = self.path.rsplit(".", 1)[-1]
        type(self).requests.append((action, len(targets), self.headers.get("Prefer", "")))
        refused = [
            {"RequestIndex": i, "Id": t.get("contoso_sensordataid"), "StatusCode": 400}
            for i, t in enumerate(targets)
            if not isinstance(t.get("contoso_reading"), int)
        ]
        type(self).written += [t for t in targets if isinstance(t.get("contoso_reading"), int)]
        if not refused:
            ids = [str(uuid.uuid4()) for _ in targets]
            self.answer(200 if action == "CreateMultiple" else 204, {"Ids": ids})
            return
        error = {"code": "0x80040265", "message": MESSAGE}
        if "ErrorDetails" in self.headers.get("Prefer", ""):
            error[ANNOTATION] = json.dumps(refused)
        self.answer(400, {"error": error})

    def answer(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode() if status != 204 else b""
        self.send_response(status)
        self.send_header("Content-Type", "application/json; odata.metadata=minimal")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def elastic_app():
    ElasticTable.requests, ElasticTable.written = [], []
    server = ThreadingHTTPServer(("127.0.0.1", 0), ElasticTable)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    config = SideConfig(
        app_name="Dataverse",
        base_url=f"http://127.0.0.1:{server.server_port}/api/data/v9.2/",
        flavor=DATAVERSE,
        auth_method="bearer",
        secret="token",
        options={"key_fields": {"contoso_sensordatas": "contoso_sensordataid"}},
        max_retries=0,
    )
    connector = ODataConnector(config)
    yield connector
    connector.close()
    server.shutdown()
    server.server_close()


def readings(*values) -> list[dict]:
    return [{"contoso_name": f"Sensor {i}", "contoso_reading": v} for i, v in enumerate(values)]


def test_an_elastic_table_refusing_some_updates_wrote_the_others(elastic_app):
    ids = [str(uuid.uuid4()) for _ in range(4)]
    changes = [(i, v, None) for i, v in zip(ids, readings(1, "x", 3, "y"), strict=True)]

    outcomes = elastic_app.update_many("contoso_sensordatas", changes)

    # One request: never halved or sent again, which would write the others twice.
    assert [(a, n) for a, n, _ in ElasticTable.requests] == [("UpdateMultiple", 4)]
    assert "Microsoft.PowerApps.CDS.ErrorDetails" in ElasticTable.requests[0][2]
    assert [type(o) for o in outcomes] == [
        RemoteRecord,
        ConnectorError,
        RemoteRecord,
        ConnectorError,
    ]
    assert [o.id for o in outcomes if isinstance(o, RemoteRecord)] == [ids[0], ids[2]]
    first, second = outcomes[1], outcomes[3]
    assert first.message == MESSAGE and first.status == 400 and not first.transient
    assert second.message.startswith("Dataverse refused this record in UpdateMultiple (400)")
    assert MESSAGE in second.message


def test_an_elastic_table_refusing_some_creates_is_not_sent_them_again(elastic_app):
    outcomes = elastic_app.create_many("contoso_sensordatas", readings(1, "x", 3))

    assert [(a, n) for a, n, _ in ElasticTable.requests] == [("CreateMultiple", 3)]
    assert len(ElasticTable.written) == 2
    refused, created = outcomes[1], [outcomes[0], outcomes[2]]
    assert isinstance(refused, ConnectorError) and refused.message == MESSAGE
    # Created without their ids said: they fail as a lost answer would (worth a later run,
    # which finds them by their match field), never created twice.
    for outcome in created:
        assert isinstance(outcome, ConnectorError) and outcome.transient
        assert outcome.message == "Dataverse answered CreateMultiple without the ids created."
