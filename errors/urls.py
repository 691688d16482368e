from django.urls import path

from . import alert_views, ownership_views, rule_views, views

app_name = "errors"
urlpatterns = [
    path("", views.error_list, name="list"),
    path("export.csv", views.error_export, name="export"),
    path("groups/", views.group_list, name="groups"),
    path("groups/<int:pk>/status/", views.group_set_status, name="group_set_status"),
    path(
        "groups/<int:pk>/assignment/",
        ownership_views.problem_assignment,
        name="group_assignment",
    ),
    path("groups/<int:pk>/evidence/", views.group_evidence, name="group_evidence"),
    path("groups/<int:pk>/comments/", ownership_views.problem_comment, name="group_comment"),
    path("groups/<int:pk>/policy/", ownership_views.problem_policy, name="group_policy"),
    path("groups/<int:pk>/rule/", rule_views.problem_rule, name="group_rule"),
    path("ownership/", ownership_views.ownership_rules, name="ownership_rules"),
    path(
        "ownership/<int:pk>/delete/",
        ownership_views.ownership_rule_delete,
        name="ownership_rule_delete",
    ),
    path("<int:pk>/", views.error_detail, name="detail"),
    path("<int:pk>/status/", views.error_set_status, name="set_status"),
    path("<int:pk>/evidence/", views.error_evidence, name="evidence"),
    path("<int:pk>/fix/", views.error_fix, name="fix"),
    path("<int:pk>/edit/", views.error_edit, name="edit"),
    path("delete/<str:action>/", views.cleanup_confirm, name="cleanup_confirm"),
    path("cleanups/<int:pk>/", views.cleanup_progress, name="cleanup"),
    path("bulk/", views.bulk_action, name="bulk"),
    path("bulk/<int:pk>/", views.bulk_progress, name="bulk_progress"),
    path("alerts/", alert_views.alert_list, name="alerts"),
    path("alerts/<int:pk>/", alert_views.alert_change, name="alert_change"),
    path("alerts/<int:pk>/delete/", alert_views.alert_delete, name="alert_delete"),
]
