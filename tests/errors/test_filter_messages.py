"""A filter value that is not valid is answered in the page's own words: the filter named as
it is labelled, what to type, the value left in its box, and no claim that nothing matches.
A Sync user is offered only the categories they may open."""

import re

import pytest
from django.urls import reverse

from errors.models import SETUP_CATEGORIES, Category
from tests.factories import make_error

pytestmark = pytest.mark.django_db
LIST = reverse("errors:list")
PROBLEMS = reverse("errors:groups")


def box(html: str, name: str) -> str:
    """The <input> or <select> of a filter."""
    return re.search(rf'<(?:input|select)[^>]*name="{name}"[^>]*>', html).group(0)


def test_a_date_that_cannot_be_read_is_named_kept_and_explained(staff_client):
    make_error()
    response = staff_client.get(LIST, {"created_after": "2024-13-45", "category": "conflict"})
    assert response.status_code == 400
    html = response.content.decode()
    assert "Created from: enter a date as YYYY-MM-DD" in html
    assert "created:" not in html and "created_after:" not in html
    # The value stays in its box, as text (a date box would drop it), marked and described.
    field = box(html, "created_after")
    assert 'value="2024-13-45"' in field and 'type="text"' in field
    assert 'aria-invalid="true"' in field
    assert 'aria-describedby="id_created_after-error"' in field
    assert 'id="id_created_after-error"' in html
    # The other filters keep their values and their boxes.
    assert 'type="date"' in box(html, "created_before")
    assert 'value="conflict" selected' in html
    # Nothing claims that no entry matches: the filters were not applied.
    assert "The filters were not applied" in html
    summary = re.search(r'<p class="summary" id="result-count">(.*?)</p>', html, re.S).group(1)
    assert "match" not in summary and "0 entries" not in summary
    assert "No sync errors match" not in html


def test_each_wrong_value_is_named_by_its_label(staff_client):
    html = staff_client.get(
        LIST, {"category": "nonsense", "created_before": "soon", "q": "x" * 201}
    ).content.decode()
    assert "Category: select a valid choice." in html
    assert "Created to: enter a date as YYYY-MM-DD" in html
    assert "Search: ensure this value has at most 200 characters" in html
    assert 'value="soon"' in box(html, "created_before")


def test_the_labels_of_the_date_filters_name_their_boxes(staff_client):
    html = staff_client.get(LIST).content.decode()
    assert '<label for="id_created_after">Created from</label>' in html
    assert '<label for="id_created_before">Created to</label>' in html
    assert 'type="date"' in box(html, "created_after")


def test_the_problems_page_says_its_filters_were_not_applied(staff_client):
    make_error(category=Category.CONFLICT)
    response = staff_client.get(PROBLEMS, {"status": "gone"})
    assert response.status_code == 400
    html = response.content.decode()
    assert "Status: select a valid choice." in html
    assert "The filters were not applied" in html
    assert "problems match" not in html and "No problem matches" not in html


def test_the_audit_log_names_its_date_filters_too(staff_client):
    html = staff_client.get(reverse("audit:events"), {"since": "last week"}).content.decode()
    assert "From: enter a date as YYYY-MM-DD" in html
    assert 'value="last week"' in box(html, "since")


def category_choices(html: str) -> set[str]:
    select = re.search(r'<select name="category".*?</select>', html, re.S).group(0)
    return set(re.findall(r'<option value="(\w+)"', select))


@pytest.mark.parametrize("page", [LIST, PROBLEMS])
def test_a_sync_user_is_offered_only_the_categories_they_may_open(
    page, client, sync_user, staff_user
):
    client.force_login(staff_user)
    everything = {value for value, _ in Category.choices}
    assert category_choices(client.get(page).content.decode()) == everything

    client.force_login(sync_user)
    coupled = everything - SETUP_CATEGORIES
    assert category_choices(client.get(page).content.decode()) == coupled
    # A setup category asked for by hand is not one of theirs.
    response = client.get(page, {"category": Category.PERMISSION})
    assert response.status_code == 400
    assert "Category: select a valid choice." in response.content.decode()
