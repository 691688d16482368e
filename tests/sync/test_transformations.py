"""What each kind of rule makes of a value, and the parameters each kind refuses."""

import pytest

from sync.transformations import (
    RuleInvalid,
    Rules,
    Step,
    apply,
    cleaned,
    describe,
    length_from_message,
)


@pytest.mark.parametrize(
    "kind, params, value, result",
    [
        ("set", {"value": "EUR"}, "NOK", "EUR"),
        ("set", {"value": ""}, None, ""),
        ("map", {"map": {"NOK": "EUR", "SEK": "EUR"}}, "NOK", "EUR"),
        ("map", {"map": {"NOK": "EUR"}}, "DKK", "DKK"),
        ("map", {"map": {"1": "one"}}, 1, "one"),
        ("truncate", {"length": 5}, "+45 3333 4444", "+45 3"),
        ("truncate", {"length": 30}, "short", "short"),
        ("truncate", {"length": 3}, None, None),
        ("truncate", {"length": 3}, 12345, 12345),
        ("replace", {"find": " ext. ", "replace": " x"}, "+45 33 ext. 55", "+45 33 x55"),
        ("replace", {"find": "-", "replace": ""}, "12-34-56", "123456"),
        ("clear", {}, "anything", None),
    ],
)
def test_each_kind(kind, params, value, result):
    assert apply(kind, cleaned(kind, params), value) == result


@pytest.mark.parametrize(
    "kind, params, problem",
    [
        ("cut", {}, "The kind must be one of set, map, truncate, replace, clear."),
        ("set", [], "The parameters must be an object."),
        ("set", {"value": 5}, "The value must be text."),
        ("set", {"value": "x" * 1001}, "The value can be at most 1000 characters."),
        ("truncate", {}, "The length must be a whole number from 1 to 100000."),
        ("truncate", {"length": True}, "The length must be a whole number from 1 to 100000."),
        ("truncate", {"length": "٣"}, "The length must be a whole number from 1 to 100000."),
        ("truncate", {"length": 100_001}, "The length must be a whole number from 1 to 100000."),
        ("replace", {"find": "", "replace": "x"}, "Enter the text to find."),
        (
            "map",
            {"map": ["NOK"]},
            "Give at least one value to map, from value to value (NOK to EUR).",
        ),
        ("map", {"map": {"": "EUR"}}, "Enter the value mapped from."),
        ("clear", {"length": 3}, "A rule that does clear takes no length."),
    ],
)
def test_parameters_refused_with_a_clear_message(kind, params, problem):
    with pytest.raises(RuleInvalid) as refused:
        cleaned(kind, params)
    assert refused.value.problems == [problem]


def test_a_length_given_as_text_is_taken():
    assert cleaned("truncate", {"length": "30"}) == {"length": 30}


def test_the_length_an_app_names_in_its_refusal():
    assert length_from_message("Phone No. must not exceed 30 characters.") == 30
    assert length_from_message("", "exceeded the maximum allowed length of '100'.") == 100
    assert length_from_message("Currency NOK has no exchange rate.") is None


def test_rules_apply_in_order_to_the_fields_they_name():
    rules = Rules(
        [
            Step("phoneNumber", "replace", {"find": " ext. ", "replace": " x"}),
            Step("phoneNumber", "truncate", {"length": 10}),
            Step("fax", "clear", {}),
        ]
    )
    values = {"phoneNumber": "+45 33 ext. 5555 reception", "city": "Vejle"}
    assert rules.apply(values) == {"phoneNumber": "+45 33 x55", "city": "Vejle"}
    assert values["phoneNumber"] == "+45 33 ext. 5555 reception"  # the values read stay


def test_a_rule_in_words():
    assert describe("truncate", {"length": 30}) == "cut to 30 characters"
    assert describe("map", {"map": {"NOK": "EUR"}}) == "map NOK to EUR"
    assert describe("replace", {"find": "a", "replace": "b"}) == 'replace "a" with "b"'
