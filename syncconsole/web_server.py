"""Django's development server, answering without Nagle's delay.

The development server writes an answer's headers and its body in two sends. With Nagle's
algorithm on, the kernel holds the body back until the client has acknowledged the headers,
and a client on a kept-alive connection delays that acknowledgement by up to 40 ms: on
loopback a demo app's answer took some 45 ms where its view took 2. `make run` (the console
and the demo apps under `runserver`) and the tests' live server use these servers, which turn
the algorithm off for each connection they accept (TCP_NODELAY), as gunicorn does."""

import socket

from django.core.servers import basehttp


class _NoDelay:
    def get_request(self):
        connection, address = super().get_request()  # type: ignore[misc]
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return connection, address


class WSGIServer(_NoDelay, basehttp.WSGIServer):
    """runserver's server (it adds threading itself)."""


class ThreadedWSGIServer(_NoDelay, basehttp.ThreadedWSGIServer):
    """The live server's, in tests."""
