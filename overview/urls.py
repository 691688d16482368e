from django.urls import path

from . import views

# The console's home: no namespace, as `home` has always been.
urlpatterns = [
    path("", views.overview, name="home"),
    # For Prometheus: monitoring networks or the monitoring token only.
    path("metrics", views.metrics, name="metrics"),
]
