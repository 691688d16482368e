"""The form of a rule that fixes a problem: the field, what to do to it, and whether to keep
it on the mapping. Its parameters are checked by the rule's service (triage.rules)."""

from typing import Any, cast

from django import forms

from sync.transformations import (
    CLEAR,
    KINDS,
    MAP,
    MAX_MAP_ENTRIES,
    MAX_TEXT,
    REPLACE,
    SET,
    TRUNCATE,
)

MAP_HELP = "One value a line: the value, =, the value it becomes (NOK=EUR)."


class RuleForm(forms.Form):
    field = forms.ChoiceField(label="Field written")
    kind = forms.ChoiceField(label="Do", choices=list(KINDS.items()), initial=TRUNCATE)
    value = forms.CharField(label="Value", max_length=MAX_TEXT, required=False, strip=False)
    map = forms.CharField(
        label="Values to map",
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=MAX_MAP_ENTRIES * (2 * MAX_TEXT + 2),
        required=False,
        help_text=MAP_HELP,
    )
    length = forms.IntegerField(
        label="Length",
        min_value=1,
        max_value=100_000,
        required=False,
        help_text="Empty: the length the app's message names.",
    )
    find = forms.CharField(label="Find", max_length=MAX_TEXT, required=False, strip=False)
    replace = forms.CharField(
        label="Replace with", max_length=MAX_TEXT, required=False, strip=False
    )
    keep = forms.BooleanField(
        label="Keep on the mapping: records that arrive later are fixed too",
        required=False,
        initial=True,
    )

    def __init__(self, *args, fields: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["field"]).choices = [(name, name) for name in fields]

    def clean_map(self) -> dict[str, str]:
        table: dict[str, str] = {}
        for n, line in enumerate((self.cleaned_data.get("map") or "").splitlines(), 1):
            if not line.strip():
                continue
            if "=" not in line:
                raise forms.ValidationError(f"Line {n} has no =. {MAP_HELP}")
            old, new = line.split("=", 1)
            table[old.strip()] = new.strip()
        return table

    def params(self) -> dict[str, Any]:
        """The parameters of the kind chosen, from the fields that belong to it."""
        data = self.cleaned_data
        kind = data["kind"]
        if kind == SET:
            return {"value": data.get("value") or ""}
        if kind == MAP:
            return {"map": data.get("map") or {}}
        if kind == TRUNCATE:
            return {"length": data.get("length")}
        if kind == REPLACE:
            return {"find": data.get("find") or "", "replace": data.get("replace") or ""}
        assert kind == CLEAR
        return {}
