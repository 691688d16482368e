"""The development server (`make run`'s web process) and the tests' live server answer
without Nagle's delay: each connection they accept sends at once (TCP_NODELAY)."""

import socket
from wsgiref.simple_server import WSGIRequestHandler

import pytest
from django.core.management import get_commands, load_command_class

from syncconsole import web_server


@pytest.mark.parametrize("server_class", [web_server.WSGIServer, web_server.ThreadedWSGIServer])
def test_each_accepted_connection_sends_at_once(server_class):
    server = server_class(("127.0.0.1", 0), WSGIRequestHandler)
    try:
        with socket.create_connection(server.server_address[:2]):
            connection, _ = server.get_request()
            with connection:
                assert connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    finally:
        server.server_close()


def test_manage_py_runserver_serves_on_the_server_without_the_delay():
    app = get_commands()["runserver"]
    assert app == "syncconsole"
    command = load_command_class(app, "runserver")
    assert command.server_cls is web_server.WSGIServer
    # Django's static files are still served by it (runconsole's web process relies on it).
    assert command.get_handler(use_static_handler=True, insecure_serving=True) is not None


def test_the_live_server_of_the_tests_too(live_server):
    assert isinstance(live_server.thread.httpd, web_server.ThreadedWSGIServer)
