"""/healthz ahead of every other middleware: the answer that the process runs must not
depend on the Host header matching ALLOWED_HOSTS (a container's health check asks for
127.0.0.1), on an HTTPS redirect, on the session or on the database."""

from .views import healthz

PATH = "/healthz"


class LivenessMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path_info == PATH:
            return healthz(request)
        return self.get_response(request)
