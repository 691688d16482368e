"""What every page of the console shares: each menu entry leads to a page titled as the entry,
a link to skip the menu, named landmarks, and a Django admin in the console's name with the
plural of every model spelled right."""

import re
from html.parser import HTMLParser

import pytest
from django.contrib import admin
from django.urls import reverse

from syncconsole.permissions import SYNC_ADMINISTRATORS, SYNC_USERS
from tests.conftest import user_in_role

pytestmark = pytest.mark.django_db


class Outline(HTMLParser):
    """The menu's links, the first <h1>, the <title>, and the landmarks of a page."""

    def __init__(self, html: str):
        super().__init__()
        self.menu: list[tuple[str, str]] = []
        self.h1 = self.title = ""
        self.landmarks: list[tuple[str, str]] = []
        self.first_link = ""
        self._in = {"menu": 0, "h1": False, "title": False, "a": None}
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("nav", "main", "header"):
            self.landmarks.append((tag, attrs.get("aria-label", "")))
        if tag == "a" and not self.first_link:
            self.first_link = attrs.get("href", "")
        if tag == "nav" and "mainnav" in attrs.get("class", ""):
            self._in["menu"] = 1
        elif tag == "a" and self._in["menu"]:
            self._in["a"] = [attrs["href"], ""]
        elif tag == "h1" and not self.h1:
            self._in["h1"] = True
        elif tag == "title":
            self._in["title"] = True

    def handle_endtag(self, tag):
        if tag == "nav":
            self._in["menu"] = 0
        elif tag == "a" and self._in["a"]:
            href, text = self._in["a"]
            self.menu.append((href, " ".join(text.split())))
            self._in["a"] = None
        elif tag == "h1":
            self._in["h1"] = False
        elif tag == "title":
            self._in["title"] = False

    def handle_data(self, data):
        if self._in["a"] is not None:
            self._in["a"][1] += data
        if self._in["h1"]:
            self.h1 += data
        if self._in["title"]:
            self.title += data


def outline(client, url: str) -> Outline:
    response = client.get(url)
    assert response.status_code == 200, url
    return Outline(response.content.decode())


MENU = {
    SYNC_ADMINISTRATORS: [
        "Overview",
        "Problems",
        "Sync errors",
        "Jobs",
        "Couplings",
        "Skipped",
        "Table mappings",
        "Connections",
        "Alerts",
        "Audit log",
        "Admin",
    ],
    SYNC_USERS: [
        "Overview",
        "Problems",
        "Sync errors",
        "Jobs",
        "Couplings",
        "Skipped",
        "Table mappings",
    ],
}


@pytest.mark.parametrize("role", [SYNC_ADMINISTRATORS, SYNC_USERS])
def test_every_menu_entry_leads_to_a_page_titled_as_the_entry(client, role):
    client.force_login(user_in_role("person", role, is_staff=role == SYNC_ADMINISTRATORS))
    menu = outline(client, reverse("errors:groups")).menu
    assert [text for _, text in menu] == MENU[role]
    for href, text in menu:
        page = outline(client, href)
        assert " ".join(page.h1.split()).startswith(text), (href, page.h1)
        assert " ".join(page.title.split()).startswith(text), (href, page.title)


def test_every_page_starts_with_a_link_past_the_menu_and_names_its_landmarks(staff_client):
    for url in (reverse("errors:groups"), reverse("errors:list"), reverse("sync:jobs")):
        page = outline(staff_client, url)
        assert page.first_link == "#content"
        assert ("main", "") in page.landmarks
        navigations = [label for tag, label in page.landmarks if tag == "nav"]
        assert navigations and all(navigations), (url, navigations)
        assert len(set(navigations)) == len(navigations), (url, navigations)
    html = staff_client.get(reverse("errors:list")).content.decode()
    assert '<main id="content" tabindex="-1">' in html


def test_the_admin_speaks_in_the_consoles_name(admin_client):
    html = admin_client.get(reverse("admin:index")).content.decode()
    assert "Sync Console administration" in html
    assert "Django administration" not in html
    page = Outline(html)
    assert page.title.startswith("Administration | Sync Console administration")
    assert page.h1 == "Administration"


# A plural Django made by adding "s" to a word that does not take one.
WRONG_PLURAL = re.compile(r"(?:[^aeiou]ys|persons|ss)$")
ACRONYMS = re.compile(r"\b(erp|crm|api)\b", re.IGNORECASE)


def test_every_model_in_the_admin_has_a_proper_plural_name():
    names = {
        model._meta.label: (str(model._meta.verbose_name), str(model._meta.verbose_name_plural))
        for model in admin.site._registry
    }
    assert names["demo.ErpCurrency"] == ("ERP currency", "ERP currencies")
    assert names["demo.CrmTransactionCurrency"][1] == "CRM transaction currencies"
    assert names["demo.ErpSalesperson"][1] == "ERP salespeople"
    for label, (singular, plural) in names.items():
        assert not WRONG_PLURAL.search(plural), (label, plural)
        for name in (singular, plural):
            for acronym in ACRONYMS.findall(name):
                assert acronym.isupper(), (label, name)


def test_the_admin_index_lists_the_demo_tables_by_their_plurals(admin_client):
    html = admin_client.get(reverse("admin:index")).content.decode()
    assert "ERP currencies" in html and "CRM transaction currencies" in html
    assert "currencys" not in html.lower() and "Erp " not in html
