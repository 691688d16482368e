from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0002_problem_ownership_actions"),
    ]

    operations = [
        migrations.AlterField(
            model_name="auditevent",
            name="action",
            field=models.CharField(
                choices=[
                    ("entries_deleted", "Entries deleted"),
                    ("entries_resolved", "Entries resolved"),
                    ("entries_ignored", "Entries ignored"),
                    ("entries_snoozed", "Entries snoozed"),
                    ("entries_reopened", "Entries reopened"),
                    ("problem_resolved", "Problem resolved"),
                    ("problem_ignored", "Problem ignored"),
                    ("problem_snoozed", "Problem snoozed"),
                    ("problem_reopened", "Problem reopened"),
                    ("problem_assigned", "Problem assigned"),
                    ("problem_unassigned", "Problem unassigned"),
                    ("problem_commented", "Comment on a problem"),
                    ("problem_policy_changed", "Problem's skip policy changed"),
                    ("ownership_rule_changed", "Ownership rule changed"),
                    ("bulk_action", "Bulk action on entries"),
                    ("jobs_deleted", "Expired sync jobs deleted"),
                    ("coupling_removed", "Coupling removed"),
                    ("record_deleted", "Record deleted in an app"),
                    ("connection_changed", "Connection changed"),
                    ("mapping_changed", "Table mapping changed"),
                    ("mapping_paused", "Table mapping paused"),
                    ("mapping_resumed", "Table mapping resumed"),
                    ("alerts_changed", "Alert subscription changed"),
                    ("token_created", "API token created"),
                    ("token_revoked", "API token revoked"),
                    ("admin_change", "Other change in the Django admin"),
                ],
                max_length=30,
            ),
        ),
    ]
