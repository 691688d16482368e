"""The OData connector against the demo apps over real HTTP."""

import time
from datetime import timedelta

import pytest

from demo.models import CrmAccount, DemoFault, ErpCustomer
from sync.connectors import ConnectorError, connector_for
from sync.connectors.odata import ODataConnector, SideConfig

pytestmark = pytest.mark.django_db


def erp(demo_apps, **tuning):
    return (
        connector_for(demo_apps.connection, "source")
        if not tuning
        else ODataConnector(
            SideConfig(**{**demo_apps.connection.side_config("source").__dict__, **tuning})
        )
    )


def crm(demo_apps):
    return connector_for(demo_apps.connection, "destination")


def test_lists_every_record_page_by_page_oldest_first(demo_apps):
    pages = list(erp(demo_apps).list_changes("customers", None, page_size=5))
    assert [len(page) for page in pages] == [5, 5, 2]
    records = [record for page in pages for record in page]
    assert len({r.id for r in records}) == 12
    stamps = [r.modified_at for r in records]
    assert stamps == sorted(stamps)
    assert records[0].values["number"].startswith("C")


def test_lists_only_what_changed_after_a_moment(demo_apps):
    newest = ErpCustomer.objects.order_by("-last_modified").first().last_modified
    changed = ErpCustomer.objects.order_by("number").first()
    changed.city = "Aalborg"
    changed.save()
    pages = list(erp(demo_apps).list_changes("customers", newest))
    assert [r.id for page in pages for r in page] == [str(changed.pk)]


def test_get_create_update_find_and_delete(demo_apps):
    connector = crm(demo_apps)
    created = connector.create("accounts", {"name": "Tailspin Toys", "accountnumber": "C99999"})
    assert CrmAccount.objects.get(pk=created.id).name == "Tailspin Toys"
    assert connector.get("accounts", created.id).values["accountnumber"] == "C99999"
    connector.update("accounts", created.id, {"telephone1": "+45 1234"})
    assert CrmAccount.objects.get(pk=created.id).telephone == "+45 1234"
    assert [r.id for r in connector.find("accounts", "accountnumber", "C99999")] == [created.id]
    assert connector.find("accounts", "name", "O'Brien & Sons") == []
    with pytest.raises(ConnectorError) as refused:  # the integration role may not delete
        connector.delete("accounts", created.id)
    assert "is missing prvDeleteAccount privilege" in refused.value.message
    connector.config.username, connector.config.secret = "admin@demo-crm.example", "demo-admin"
    connector.delete("accounts", created.id)
    assert connector.get("accounts", created.id) is None


def test_update_of_a_missing_record_is_a_404_not_an_upsert(demo_apps):
    with pytest.raises(ConnectorError) as raised:
        crm(demo_apps).update("accounts", "00000000-0000-4000-8000-000000000001", {"name": "x"})
    assert raised.value.status == 404
    assert "Does Not Exist" in raised.value.message
    assert not CrmAccount.objects.filter(name="x").exists()


def test_a_missing_privilege_answers_as_dataverse_does(demo_apps):
    with pytest.raises(ConnectorError) as raised:
        crm(demo_apps).create("products", {"name": "Helmet"})
    error = raised.value
    assert error.status == 403
    assert "type=8" in error.message and "is missing prvCreateProduct privilege" in error.message
    assert error.code == "0x80040220"
    assert not error.transient


def test_wrong_credentials_are_a_sign_in_failure_and_the_secret_is_never_in_the_detail(demo_apps):
    demo_apps.connection.destination_secret = "wrong-secret-value"
    with pytest.raises(ConnectorError) as raised:
        list(crm(demo_apps).list_changes("accounts", None))
    assert raised.value.is_sign_in_failure
    assert "AADSTS7000215: Invalid client secret provided." in raised.value.message
    assert "wrong-secret-value" not in raised.value.detail


def test_wrong_basic_credentials_are_a_sign_in_failure_too(demo_apps):
    demo_apps.connection.auth_method = "basic"
    demo_apps.connection.destination_secret = "wrong-secret-value"
    with pytest.raises(ConnectorError) as raised:
        list(crm(demo_apps).list_changes("accounts", None))
    assert raised.value.is_sign_in_failure
    assert "user name or password is incorrect" in raised.value.message
    assert "wrong-secret-value" not in raised.value.detail


def test_throttling_is_retried_after_the_time_the_app_asks(demo_apps):
    demo_apps.fault("crm", DemoFault.Mode.THROTTLE, remaining=2)
    connector = connector_for(
        demo_apps.connection, "destination", max_retry_after=1, throttle_budget=5
    )
    started = time.monotonic()
    pages = list(connector.list_changes("accounts", None))
    assert time.monotonic() - started >= 2  # Retry-After: 1, twice
    assert sum(len(p) for p in pages) == CrmAccount.objects.count()
    assert DemoFault.objects.get().remaining == 0


def test_retries_are_bounded(demo_apps):
    demo_apps.fault("crm", DemoFault.Mode.UNAVAILABLE)
    with pytest.raises(ConnectorError) as raised:
        crm(demo_apps).get("accounts", "00000000-0000-4000-8000-000000000001")
    assert raised.value.status == 503 and raised.value.transient


def test_a_server_error_is_retried_then_reported(demo_apps):
    demo_apps.fault("erp", DemoFault.Mode.SERVER_ERROR, remaining=1)
    assert len(list(erp(demo_apps).list_changes("customers", None))[0]) == 12
    demo_apps.fault("erp", DemoFault.Mode.SERVER_ERROR)
    with pytest.raises(ConnectorError) as raised:
        list(erp(demo_apps).list_changes("customers", None))
    assert raised.value.status == 500


def test_broken_json_is_retried_then_a_clear_error(demo_apps):
    demo_apps.fault("erp", DemoFault.Mode.GARBAGE, remaining=1)
    assert len(list(erp(demo_apps).list_changes("customers", None))[0]) == 12
    demo_apps.fault("erp", DemoFault.Mode.GARBAGE)
    with pytest.raises(ConnectorError) as raised:
        list(erp(demo_apps).list_changes("customers", None))
    assert "not JSON" in raised.value.message and raised.value.transient
    assert '{"value": [{"id": ' in raised.value.detail


def test_a_create_is_not_sent_twice_when_the_answer_may_hide_a_created_record(demo_apps):
    fault = demo_apps.fault("crm", DemoFault.Mode.GARBAGE, remaining=2, entity="accounts")
    with pytest.raises(ConnectorError):
        crm(demo_apps).create("accounts", {"name": "Tailspin Toys"})
    fault.refresh_from_db()
    assert fault.remaining == 1  # one request, no retry


def test_an_app_that_answers_too_late_times_out(demo_apps):
    demo_apps.fault("erp", DemoFault.Mode.TIMEOUT, delay=1.5)
    connector = erp(demo_apps, timeout=0.3, max_retries=0)
    with pytest.raises(ConnectorError) as raised:
        connector.get("customers", str(ErpCustomer.objects.first().pk))
    assert raised.value.transient
    assert "timed out" in raised.value.message


def test_an_unreachable_app_is_a_transient_connection_error(demo_apps, unused_port):
    connector = erp(demo_apps, base_url=f"http://127.0.0.1:{unused_port}/api/", max_retries=1)
    with pytest.raises(ConnectorError) as raised:
        list(connector.list_changes("customers", None))
    assert raised.value.transient
    assert "Could not connect" in raised.value.message


def test_record_urls_follow_the_configured_template(demo_apps, client):
    record = ErpCustomer.objects.first()
    url = erp(demo_apps).record_url("customers", str(record.pk))
    assert url == f"{demo_apps.base_url}/demo/erp/customers/{record.pk}/"
    assert client.get(url.removeprefix(demo_apps.base_url)).status_code == 200


def test_setup_check_reports_an_administrator_integration_user(demo_apps):
    connector = crm(demo_apps)
    assert [f.severity for f in connector.check_setup()] == ["ok"]
    connector.config.username, connector.config.secret = "admin@demo-crm.example", "demo-admin"
    codes = {f.code: f for f in connector.check_setup()}
    assert codes["admin_user"].severity == "error"
    assert "System Administrator" in codes["admin_user"].message
    connector.config.username, connector.config.secret = "newhire@demo-crm.example", "demo-new"
    finding = connector.check_setup()[0]
    assert finding.severity == "error" and "must be changed" in finding.message


def test_modified_field_filter_uses_utc(demo_apps):
    moment = ErpCustomer.objects.order_by("last_modified").first().last_modified
    later = list(erp(demo_apps).list_changes("customers", moment - timedelta(hours=1)))
    assert sum(len(p) for p in later) == 12


def test_find_where_joins_conditions_and_quotes_every_value(demo_apps):
    wanted = CrmAccount.objects.create(name="Smith and O'Brien", account_number="C1", city="Oslo")
    CrmAccount.objects.create(name="Smith and O'Brien", account_number="C2", city="Bergen")
    connector = crm(demo_apps)
    found = connector.find_where(
        "accounts",
        {"name": "Smith and O'Brien", "accountnumber": "C1"},
        condition="address1_city eq 'Oslo'",
    )
    assert [r.id for r in found] == [str(wanted.pk)]
    assert connector.find_where("accounts", {"name": "x' or name eq 'y"}) == []
    with pytest.raises(ConnectorError, match="is not a field name"):
        connector.find_where("accounts", {"name eq 'x' or name": "y"})
