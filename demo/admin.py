from django.contrib import admin

from .entities import ENTITIES

for entity in ENTITIES.values():
    admin.site.register(
        entity.model,
        list_display=["id", *[f for f in entity.fields if f not in ("roles", "parent_account")]],
        search_fields=[
            f for f in entity.fields
            if entity.model._meta.get_field(f).get_internal_type() == "CharField"
        ],
    )  # fmt: skip
