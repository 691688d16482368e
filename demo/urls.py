from django.urls import path

from . import views

app_name = "demo"
urlpatterns = [
    path("<str:app>/", views.app_index, name="app_index"),
    path("<str:app>/<str:entity>/", views.record_list, name="record_list"),
    path("<str:app>/<str:entity>/<str:pk>/", views.record_detail, name="record"),
]
