"""Who may read the monitoring endpoints: a caller on MONITORING_NETWORKS, or one sending
MONITORING_TOKEN; nobody else, whatever X-Forwarded-For says."""

from django.core.checks import run_checks
from django.http import HttpResponse
from django.test import RequestFactory

from syncconsole.monitoring import monitoring_only


@monitoring_only
def figures(request):
    return HttpResponse("figures")


def ask(address: str, **headers) -> int:
    request = RequestFactory().get("/metrics", REMOTE_ADDR=address, **headers)
    return figures(request).status_code


def test_loopback_is_allowed_by_default():
    assert ask("127.0.0.1") == 200
    assert ask("::1") == 200
    assert ask("10.1.2.3") == 403


def test_networks_are_cidr(settings):
    settings.MONITORING_NETWORKS = ["10.0.0.0/8"]
    assert ask("10.200.0.9") == 200
    assert ask("11.0.0.1") == 403
    assert ask("127.0.0.1") == 403


def test_a_forwarded_header_proves_nothing_without_trusted_proxies(settings):
    settings.MONITORING_NETWORKS = ["10.0.0.0/8"]
    assert ask("192.0.2.7", HTTP_X_FORWARDED_FOR="10.0.0.1") == 403
    settings.TRUSTED_PROXY_COUNT = 1
    assert ask("192.0.2.7", HTTP_X_FORWARDED_FOR="10.0.0.1") == 200


def test_the_token_lets_any_network_in(settings):
    settings.MONITORING_NETWORKS = []
    settings.MONITORING_TOKEN = "s3cret-monitoring-token"
    assert ask("203.0.113.5", HTTP_AUTHORIZATION="Bearer s3cret-monitoring-token") == 200
    assert ask("203.0.113.5", HTTP_AUTHORIZATION="Bearer wrong") == 403
    assert ask("203.0.113.5") == 403


def test_no_token_set_means_no_token_accepted(settings):
    settings.MONITORING_NETWORKS = []
    settings.MONITORING_TOKEN = ""
    assert ask("203.0.113.5", HTTP_AUTHORIZATION="Bearer ") == 403


def test_a_network_that_is_not_one_fails_the_checks(settings):
    settings.MONITORING_NETWORKS = ["10.0.0.0/8", "not-a-network"]
    ids = [message.id for message in run_checks()]
    assert "syncconsole.E006" in ids
