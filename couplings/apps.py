from django.apps import AppConfig


class CouplingsConfig(AppConfig):
    name = "couplings"
