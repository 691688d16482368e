"""Field mappings: which value goes where, in which direction, transformed how."""

from decimal import Decimal

from sync.fields import FROM_DESTINATION, TO_DESTINATION, field_pairs, same_value

SPECS = [
    {"source": "displayName", "destination": "name"},
    {"source": "email", "destination": "emailaddress1", "transform": "lower"},
    {"source": "city", "destination": "address1_city", "direction": "to_destination"},
    {"source": "phoneNumber", "destination": "telephone1", "enabled": False},
    {"source": "country", "destination": "address1_country", "direction": "from_destination"},
    {"source": "", "destination": "customertypecode", "constant": 3},
]


def test_pairs_follow_direction_enabled_and_constants():
    forward = {p.write: p for p in field_pairs(SPECS, TO_DESTINATION)}
    assert set(forward) == {"name", "emailaddress1", "address1_city", "customertypecode"}
    backward = {p.write: p for p in field_pairs(SPECS, FROM_DESTINATION)}
    assert set(backward) == {"displayName", "email", "country"}  # constants go one way only
    record = {"displayName": "Fabrikam", "email": "Office@Fabrikam.Example", "city": "Oslo"}
    assert forward["emailaddress1"].value(record) == "office@fabrikam.example"
    assert forward["customertypecode"].value(record) == 3
    assert backward["displayName"].value({"name": "Contoso"}) == "Contoso"


def test_values_compare_as_the_apps_mean_them():
    assert same_value(12.5, "12.50") and same_value(Decimal("3"), 3)
    assert same_value(None, "") and not same_value("", "x")
    assert not same_value(True, 1) and same_value(False, False)
    assert not same_value("abc", 3)
