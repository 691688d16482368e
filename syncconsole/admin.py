"""The Django admin, in the console's name."""

from django.contrib import admin

admin.site.site_header = "Sync Console administration"
admin.site.site_title = "Sync Console administration"
admin.site.index_title = "Administration"
