from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from . import views

urlpatterns = [
    path("", include("overview.urls")),
    path("errors/", include("errors.urls")),
    path("sync/", include("sync.urls")),
    path("couplings/", include("couplings.urls")),
    path("api/v1/", include("api.urls")),
    path("audit/", include("audit.urls")),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/profile/", views.profile, name="profile"),
    path("admin/", admin.site.urls),
    # Monitoring (docs/operations/monitoring.md); /healthz is answered by
    # syncconsole.liveness.LivenessMiddleware before the other middleware.
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
]

# A path no URL matches answers JSON under /api/, like the API's own 404s.
handler404 = "api.views.not_found"
# The error page names the request id; it reads neither the database nor the user.
handler500 = "api.views.server_error"

if settings.DEMO_APPS_ENABLED:
    urlpatterns.append(path("demo/", include("demo.urls")))
