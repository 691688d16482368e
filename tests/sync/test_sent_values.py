"""What an entry keeps of the values a failed write sent: bounded, without credentials."""

from sync.compare import MAX_FIELDS, MAX_VALUE_LENGTH, sent_values


def test_values_are_capped_in_number_and_length_and_credentials_are_dropped():
    sent = {"password": "hunter2", "apiKey": "k-123", "name": "x" * 5000}
    sent.update({f"field{n}": n for n in range(80)})
    stored = sent_values("create", "to_destination", sent, {"client_secret": "s", "name": "A"})

    assert len(stored["sent"]) == MAX_FIELDS
    assert "password" not in stored["sent"] and "apiKey" not in stored["sent"]
    assert stored["sent"]["name"] == "x" * MAX_VALUE_LENGTH
    assert stored["read"] == {"name": "A"}
    assert stored["truncated"] == ["name", "…"]


def test_values_that_are_not_plain_become_text():
    stored = sent_values("update", "from_destination", {"tags": ["a", "b"], "n": 1.5}, {})
    assert stored["sent"] == {"tags": '["a", "b"]', "n": 1.5}
    assert "held" not in stored
