from django.contrib.staticfiles.management.commands.runserver import Command as RunServer

from syncconsole.web_server import WSGIServer


class Command(RunServer):
    """Django's runserver (with the static files), on a server without Nagle's delay."""

    server_cls = WSGIServer
