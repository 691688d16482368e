"""What the Django admin's own changes record in the audit log: a mixin for ModelAdmins."""

from django.contrib import admin

from . import services
from .models import AuditEvent

Action = AuditEvent.Action
# What a change of these models is called in the log; any other model is an "admin change".
ACTIONS = {
    "sync.connection": Action.CONNECTION_CHANGED,
    "sync.tablemapping": Action.MAPPING_CHANGED,
    "errors.alertsubscription": Action.ALERTS_CHANGED,
}
DELETE_ACTIONS = {"errors.syncerror": Action.ENTRIES_DELETED}


class AuditedAdmin(admin.ModelAdmin):
    """Records each object added, changed or deleted through this admin page (and through
    its inlines), with the fields that changed: secrets by name only."""

    def audit_action(self, obj, changed: dict, deleted: bool = False) -> str:
        label = obj._meta.label_lower
        if deleted and label in DELETE_ACTIONS:
            return DELETE_ACTIONS[label]
        return ACTIONS.get(label, Action.ADMIN_CHANGE)

    def save_model(self, request, obj, form, change):
        before = services.snapshot(obj) if change else {}
        super().save_model(request, obj, form, change)
        # Many-to-many fields (a user's groups) are saved later, but the form knows them.
        columns = {f.name for f in obj._meta.concrete_fields}
        related = [name for name in form.changed_data if name not in columns]
        self.audit_saved(request, obj, before, change, related)

    def audit_saved(self, request, obj, before: dict, change: bool, related=()) -> None:
        changed = services.changes(before, obj)
        changed.update({name: "changed" for name in related})
        if change and not changed:
            return
        verb = "Changed" if change else "Added"
        name = obj._meta.verbose_name
        fields = ", ".join(changed) if change else ""
        services.record(
            self.audit_action(obj, changed),
            f"{verb} {name} {obj}" + (f": {fields}" if fields else "") + " (Django admin)",
            user=request.user,
            target=obj,
            details={"change": "changed" if change else "added", "fields": changed},
        )

    def save_formset(self, request, form, formset, change):
        before = {
            f.instance.pk: services.snapshot(f.instance)
            for f in formset.initial_forms
            if f.instance.pk is not None and f.has_changed()
        }
        super().save_formset(request, form, formset, change)
        for obj in formset.new_objects:
            self.audit_saved(request, obj, {}, change=False)
        for obj, _ in formset.changed_objects:
            self.audit_saved(request, obj, before.get(obj.pk, {}), change=True)
        for obj in formset.deleted_objects:
            self._audit_deleted(request, [obj])

    def delete_model(self, request, obj):
        self._audit_deleted(request, [obj])
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        objects = list(queryset[:1000])
        count = queryset.count()
        if count:
            self._audit_deleted(request, objects, count)
        super().delete_queryset(request, queryset)

    def _audit_deleted(self, request, objects, count: int | None = None) -> None:
        count = len(objects) if count is None else count
        model = type(objects[0])
        opts = model._meta
        name = opts.verbose_name if count == 1 else opts.verbose_name_plural
        shown = ", ".join(str(o) for o in objects[:5]) + (", …" if count > 5 else "")
        services.record(
            self.audit_action(objects[0], {}, deleted=True),
            f"Deleted {count} {name}: {shown} (Django admin)",
            user=request.user,
            target=objects[0] if count == 1 else None,
            object_type=opts.verbose_name,
            details={"change": "deleted", "count": count, "ids": [str(o.pk) for o in objects]},
        )
