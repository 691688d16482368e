"""Triage: the fixes of an entry and the actions on many entries, which act through the
couplings and the sync engine. It sits above `couplings`, `sync` and the recording of entries
in `errors`, and is called by the pages, the API, the admin and Celery tasks."""
