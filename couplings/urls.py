from django.urls import path

from . import views

app_name = "couplings"
urlpatterns = [
    path("couple/", views.couple, name="couple"),
    path("runs/<int:pk>/", views.run_detail, name="run"),
]
