"""The forms of a problem's owner, its discussion and the ownership rules: everything a person
posts is checked here first, then by errors.ownership."""

import re
from typing import cast

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from . import ownership
from .forms import scope_choices, scope_of
from .models import COMMENT_MAX_LENGTH, Category, OwnershipRule

ASSIGNEE = re.compile(r"(user|group):([1-9][0-9]{0,17})")


def assignee_choices() -> list:
    """Who a problem or a rule may be given to: the roles, then the people."""
    return [
        ("Role", [(f"group:{g.pk}", g.name) for g in ownership.assignable_groups()]),
        ("Person", [(f"user:{u.pk}", u.get_username()) for u in ownership.assignable_users()]),
    ]


def parse_assignee(value: str):
    """The person or role an "assignee" value names: (user, None) or (None, group); a value
    that names nobody there raises ValidationError."""
    match = ASSIGNEE.fullmatch(value or "")
    if match is None:
        raise forms.ValidationError("Choose a person or a role.")
    kind, pk = match.groups()
    if kind == "user":
        user = get_user_model().objects.filter(pk=int(pk)).first()
        if user is None:
            raise forms.ValidationError("There is no such person.")
        return user, None
    group = Group.objects.filter(pk=int(pk)).first()
    if group is None:
        raise forms.ValidationError("There is no such role.")
    return None, group


class AssignmentForm(forms.Form):
    """Assign to me, Unassign, or (Sync administrators) Assign to a person or a role."""

    action = forms.ChoiceField(
        choices=[("take", "Assign to me"), ("unassign", "Unassign"), ("assign", "Assign")]
    )
    assignee = forms.CharField(required=False, max_length=40)

    def clean(self):
        super().clean()
        data = self.cleaned_data
        data["user"] = data["group"] = None
        if data.get("action") == "assign":
            try:
                data["user"], data["group"] = parse_assignee(data.get("assignee", ""))
            except forms.ValidationError as exc:
                self.add_error("assignee", exc)
        return data


class CommentForm(forms.Form):
    text = forms.CharField(max_length=COMMENT_MAX_LENGTH, strip=True, label="Comment")

    def clean_text(self):
        try:
            return ownership.clean_comment(self.cleaned_data["text"])
        except ownership.OwnershipRefused as exc:
            raise forms.ValidationError(str(exc)) from exc


def error_text(form: forms.Form) -> str:
    return " ".join(str(message) for messages in form.errors.values() for message in messages)


class OwnershipRuleForm(forms.Form):
    """Where (every connection, one connection or one mapping), which category, to whom."""

    scope = forms.ChoiceField(required=False, label="Where")
    category = forms.ChoiceField(
        required=False, choices=[("", "Any category"), *Category.choices], label="Category"
    )
    assignee = forms.ChoiceField(label="Assign to")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["scope"]).choices = scope_choices()
        cast(forms.ChoiceField, self.fields["assignee"]).choices = assignee_choices()

    def clean(self):
        super().clean()
        data = self.cleaned_data
        connection_id, mapping_id = scope_of(data.get("scope"))
        rule = OwnershipRule(
            connection_id=connection_id,
            mapping_id=mapping_id,
            category=data.get("category") or "",
        )
        if data.get("assignee"):
            rule.user, rule.group = parse_assignee(data["assignee"])
        for problem in ownership.rule_problems(rule) if data.get("assignee") else []:
            self.add_error(None, problem)
        self.rule = rule
        return data


class OwnershipRuleAdminForm(forms.ModelForm):
    """The Django admin's form of a rule: the same checks as the console's."""

    class Meta:
        model = OwnershipRule
        fields = ["connection", "mapping", "category", "user", "group"]

    def clean(self):
        super().clean()
        data = self.cleaned_data
        rule = self.instance
        for name in self.Meta.fields:
            if name in data:
                setattr(rule, name, data[name])
        for problem in ownership.rule_problems(rule):
            self.add_error(None, problem)
        return data
