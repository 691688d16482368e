from django.urls import path

from . import views

app_name = "sync"
urlpatterns = [
    path("mappings/", views.mapping_list, name="mappings"),
    path("mappings/<int:pk>/start/", views.mapping_start, name="mapping_start"),
    path("connections/", views.connection_list, name="connections"),
    path("connections/<int:pk>/health/", views.connection_health, name="connection_health"),
    path("mappings/<int:pk>/health/", views.mapping_health, name="mapping_health"),
    path("mappings/<int:pk>/resume/", views.mapping_resume, name="mapping_resume"),
    path("mappings/<int:pk>/lag-probe/", views.mapping_lag_probe, name="mapping_lag_probe"),
    path("rules/<int:pk>/switch-off/", views.rule_switch_off, name="rule_switch_off"),
    path("rules/<int:pk>/revert/", views.rule_revert, name="rule_revert"),
    path("jobs/", views.job_list, name="jobs"),
    path("jobs/<int:pk>/", views.job_detail, name="job"),
    path("couplings/", views.coupling_list, name="couplings"),
    path("skipped/", views.skipped_list, name="skipped"),
    path("skipped/action/", views.skipped_action, name="skipped_action"),
    path(
        "notifications/<int:connection_id>/<str:side>/",
        views.notification,
        name="notification",
    ),
]
