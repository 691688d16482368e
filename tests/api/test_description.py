"""The rules the API checks and the OpenAPI description gives are the same ones: a text
pattern reads alike in Python and in the description, every address the link pattern
allows becomes a link, and each request body lists its fields and forms exactly."""

import re
import sys

import yaml
from django.test import Client
from django.urls import reverse
from hypothesis import given, settings
from hypothesis import strategies as st

from api.fields import LINK_PATTERN, WHITESPACE, char_class, text_pattern
from errors.links import safe_link


def test_whitespace_is_what_strip_takes():
    assert set(WHITESPACE) == {c for c in map(chr, range(sys.maxunicode + 1)) if c.isspace()}


def test_a_character_class_is_written_in_escapes():
    assert char_class("ab\x00c\x7f") == "[\\u0000\\u0061-\\u0063\\u007f]"
    assert re.fullmatch(text_pattern("\x00", blank=False), " x ")
    assert not re.fullmatch(text_pattern("\x00", blank=False), " \u3000\t")
    assert not re.fullmatch(text_pattern("\x00", blank=True), "a\x00")


@settings(max_examples=200, derandomize=True, database=None)
@given(st.from_regex(LINK_PATTERN, fullmatch=True))
def test_every_address_the_link_pattern_allows_becomes_a_link(address):
    assert safe_link(address) is not None or not address.strip()


def description() -> dict:
    return yaml.safe_load(Client().get(reverse("api:schema")).content)


def test_request_bodies_take_only_the_fields_they_describe():
    schemas = description()["components"]["schemas"]
    bodies = {name: schema for name, schema in schemas.items() if name.endswith("Request")}
    assert bodies
    for name, schema in bodies.items():
        forms = schema.get("oneOf", [schema])
        assert all(form["additionalProperties"] is False for form in forms), name
    cleanup = [form["required"] for form in schemas["CleanupRequestRequest"]["oneOf"]]
    assert cleanup == [["days"], ["all"]]


def test_removing_a_coupling_is_described_as_it_answers():
    removal = description()["paths"]["/api/v1/couplings/{id}/"]["delete"]["responses"]
    assert removal["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Removed"
    }
    assert "204" not in removal


def test_ids_cursors_and_days_are_described_as_checked():
    operation = description()["paths"]["/api/v1/errors/"]["get"]
    parameters = {p["name"]: p["schema"] for p in operation["parameters"]}
    assert parameters["mapping"] == {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}
    assert parameters["before"]["pattern"] == "^[A-Za-z0-9_-]+$"
    assert parameters["created_after"] == {"type": "string", "format": "date"}
    assert "404" in operation["responses"]
