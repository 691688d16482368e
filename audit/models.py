"""The audit log: who deleted, resolved or changed what, and when."""

from django.conf import settings
from django.db import models


class AuditEvent(models.Model):
    """One deletion, resolution or change of a setting, by a person or by the system.
    Secrets are never kept: a changed secret is named, its value is not."""

    class Action(models.TextChoices):
        ENTRIES_DELETED = "entries_deleted", "Entries deleted"
        ENTRIES_RESOLVED = "entries_resolved", "Entries resolved"
        ENTRIES_IGNORED = "entries_ignored", "Entries ignored"
        ENTRIES_SNOOZED = "entries_snoozed", "Entries snoozed"
        ENTRIES_REOPENED = "entries_reopened", "Entries reopened"
        PROBLEM_RESOLVED = "problem_resolved", "Problem resolved"
        PROBLEM_IGNORED = "problem_ignored", "Problem ignored"
        PROBLEM_SNOOZED = "problem_snoozed", "Problem snoozed"
        PROBLEM_REOPENED = "problem_reopened", "Problem reopened"
        PROBLEM_ASSIGNED = "problem_assigned", "Problem assigned"
        PROBLEM_UNASSIGNED = "problem_unassigned", "Problem unassigned"
        PROBLEM_COMMENTED = "problem_commented", "Comment on a problem"
        PROBLEM_POLICY_CHANGED = "problem_policy_changed", "Problem's skip policy changed"
        OWNERSHIP_RULE_CHANGED = "ownership_rule_changed", "Ownership rule changed"
        BULK_ACTION = "bulk_action", "Bulk action on entries"
        JOBS_DELETED = "jobs_deleted", "Expired sync jobs deleted"
        COUPLING_REMOVED = "coupling_removed", "Coupling removed"
        BLOCKED_RETRIED = "blocked_retried", "Blocked records retried"
        RECORD_DELETED = "record_deleted", "Record deleted in an app"
        CONNECTION_CHANGED = "connection_changed", "Connection changed"
        MAPPING_CHANGED = "mapping_changed", "Table mapping changed"
        EVIDENCE_DOWNLOADED = "evidence_downloaded", "Evidence downloaded"
        MAPPING_PAUSED = "mapping_paused", "Table mapping paused"
        MAPPING_RESUMED = "mapping_resumed", "Table mapping resumed"
        LAG_PROBE_CHANGED = "lag_probe_changed", "Lag probe changed"
        ALERTS_CHANGED = "alerts_changed", "Alert subscription changed"
        TOKEN_CREATED = "token_created", "API token created"
        TOKEN_REVOKED = "token_revoked", "API token revoked"
        RULE_APPLIED = "rule_applied", "Rule applied to a problem"
        RULE_SWITCHED_OFF = "rule_switched_off", "Rule switched off"
        RULE_REVERTED = "rule_reverted", "Rule reverted"
        ADMIN_CHANGE = "admin_change", "Other change in the Django admin"
        ENTRY_VALUES_EDITED = "entry_values_edited", "Values of a record edited and retried"
        RECORD_EDITS_SETTLED = "record_edits_settled", "Edited values written or lapsed"

    at = models.DateTimeField(auto_now_add=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Empty for the system (a scheduled task, a job) or a deleted account.",
    )
    actor_label = models.CharField(
        max_length=150, help_text="The user name at the time, or what the system was doing."
    )
    action = models.CharField(max_length=30, choices=Action.choices)
    object_type = models.CharField(max_length=100, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    object_label = models.CharField(max_length=200, blank=True)
    summary = models.CharField(max_length=500)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = "audit event"
        indexes = [
            models.Index(fields=["-at", "-id"], name="audit_newest_first"),
            models.Index(fields=["action", "-at", "-id"], name="audit_action_newest_first"),
            models.Index(fields=["actor", "-at", "-id"], name="audit_actor_newest_first"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_label}: {self.summary}"
