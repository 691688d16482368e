"""The last migration of each app that was reviewed by hand before the migration checker
(`syncconsole.migration_safety`) existed: these and the ones before them are history, applied
everywhere already, and some of them rewrite tables (errors 0010 partitions the entries). Every
migration after them, in these apps and in any app not listed, is checked.

Move an app's name forward only when a migration the checker refuses cannot be written in a
safe form and has been run under traffic by hand (see docs/operations/upgrades.md); prefer
`reviewed_unsafe` on the migration itself, which says why.
"""

REVIEWED = {
    "admin": "0003_logentry_add_action_flag_choices",
    "api": "0002_schedule_forget_ingestion_requests",
    "audit": "0006_actions_of_edits_rules_probes_and_root_causes",
    "auth": "0012_alter_user_first_name_max_length",
    "axes": "0010_accessattemptexpiration",
    "contenttypes": "0002_remove_content_type_name",
    "couplings": "0008_coupling_skipped_after_coupling_skipped_by_problem",
    "demo": "0014_names_in_the_admin",
    "django_celery_beat": "0019_alter_periodictasks_options",
    "errors": "0028_blocked_by",
    "sessions": "0001_initial",
    "sync": "0022_syncjob_trigger_root_cause",
    "syncconsole": "0001_initial",
}
