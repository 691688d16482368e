"""The console's URLs and two views that raise, for the server error page's tests."""

from django.urls import path

from syncconsole.urls import handler404, handler500
from syncconsole.urls import urlpatterns as console_urls


def boom(request):
    raise RuntimeError("a bug")


urlpatterns = [path("boom/", boom), path("api/v1/boom/", boom), *console_urls]
__all__ = ["handler404", "handler500", "urlpatterns"]
