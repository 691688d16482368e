from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from . import audit_views, rule_views, sync_views, views

app_name = "api"
urlpatterns = [
    path("errors/", views.ErrorListView.as_view(), name="errors"),
    path("errors/export.csv", views.ErrorExportView.as_view(), name="errors_export"),
    path("errors/actions/", views.ErrorActionsView.as_view(), name="error_actions"),
    path("errors/<int:pk>/", views.ErrorDetailView.as_view(), name="error"),
    path("errors/<int:pk>/status/", views.ErrorStatusView.as_view(), name="error_status"),
    path("errors/<int:pk>/evidence/", views.ErrorEvidenceView.as_view(), name="error_evidence"),
    path("errors/<int:pk>/fixes/", views.ErrorFixesView.as_view(), name="error_fixes"),
    path("errors/<int:pk>/edit/", views.ErrorEditView.as_view(), name="error_edit"),
    path("bulk-actions/<int:pk>/", views.BulkActionDetailView.as_view(), name="bulk_action"),
    path("problems/", views.ProblemListView.as_view(), name="problems"),
    path("problems/<int:pk>/", views.ProblemDetailView.as_view(), name="problem"),
    path(
        "problems/<int:pk>/evidence/", views.ProblemEvidenceView.as_view(), name="problem_evidence"
    ),
    path("problems/<int:pk>/status/", views.ProblemStatusView.as_view(), name="problem_status"),
    path(
        "problems/<int:pk>/assignment/",
        views.ProblemAssignmentView.as_view(),
        name="problem_assignment",
    ),
    path("problems/<int:pk>/policy/", views.ProblemPolicyView.as_view(), name="problem_policy"),
    path(
        "problems/<int:pk>/comments/", views.ProblemCommentsView.as_view(), name="problem_comments"
    ),
    path(
        "problems/<int:pk>/rules/preview/",
        rule_views.ProblemRulePreviewView.as_view(),
        name="problem_rule_preview",
    ),
    path("problems/<int:pk>/rules/", rule_views.ProblemRulesView.as_view(), name="problem_rules"),
    path("jobs/", views.JobListView.as_view(), name="jobs"),
    path("jobs/<int:pk>/", views.JobDetailView.as_view(), name="job"),
    path("cleanups/", views.CleanupView.as_view(), name="cleanups"),
    path("cleanups/<int:pk>/", views.CleanupDetailView.as_view(), name="cleanup"),
    path("ingest/", views.IngestView.as_view(), name="ingest"),
    path("mappings/", sync_views.MappingListView.as_view(), name="mappings"),
    path(
        "mappings/<int:pk>/resume/", sync_views.MappingResumeView.as_view(), name="mapping_resume"
    ),
    path("mappings/<int:pk>/lag/", sync_views.MappingLagView.as_view(), name="mapping_lag"),
    path("mappings/<int:pk>/rules/", rule_views.MappingRulesView.as_view(), name="mapping_rules"),
    path(
        "mappings/<int:pk>/rules/<int:rule_id>/switch-off/",
        rule_views.MappingRuleSwitchOffView.as_view(),
        name="mapping_rule_switch_off",
    ),
    path(
        "mappings/<int:pk>/rules/<int:rule_id>/revert/",
        rule_views.MappingRuleRevertView.as_view(),
        name="mapping_rule_revert",
    ),
    path("connections/", sync_views.ConnectionListView.as_view(), name="connections"),
    path(
        "connections/<int:pk>/check/",
        sync_views.ConnectionCheckView.as_view(),
        name="connection_check",
    ),
    path("couplings/", sync_views.CouplingListView.as_view(), name="couplings"),
    path("couplings/<int:pk>/", sync_views.CouplingDetailView.as_view(), name="coupling"),
    path("couplings/match/", sync_views.CoupleByMatchView.as_view(), name="couple_by_match"),
    path("couplings/retry/", sync_views.CouplingRetryView.as_view(), name="couplings_retry"),
    path(
        "couplings/find-deleted/",
        sync_views.FindForDeletedView.as_view(),
        name="couplings_find_deleted",
    ),
    path(
        "coupling-runs/<int:pk>/", sync_views.CouplingRunDetailView.as_view(), name="coupling_run"
    ),
    path("audit/", audit_views.AuditEventListView.as_view(), name="audit_events"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
]
