"""A problem's owner and discussion, and the ownership rules page: each view checks what was
posted and calls errors.ownership."""

import re

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from syncconsole.permissions import is_sync_admin, sync_admin_required, sync_user_required

from . import ownership, policies
from .models import (
    MAX_RETRY_DELAY_SECONDS,
    SKIP_AFTER_LIMITS,
    TRANSIENT_RETRIES_MAX,
    EntryLogging,
    ErrorGroup,
    OwnershipRule,
)
from .ownership_forms import (
    AssignmentForm,
    CommentForm,
    OwnershipRuleForm,
    assignee_choices,
    error_text,
)

# A path of this site, as the pages write it: nothing that could end a header or leave it.
LOCAL_PATH = re.compile(r"/(?![/\\])[\x21-\x7e]{0,2000}")


def _back(request: HttpRequest, problem: ErrorGroup, anchor: str = "") -> HttpResponse:
    """Back where the person was (the problems list, say), else to the problem's page."""
    target = request.POST.get("next", "")
    if LOCAL_PATH.fullmatch(target) and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(target)
    return redirect(problem.get_absolute_url() + anchor)


def _problem(request: HttpRequest, pk: int) -> ErrorGroup:
    problem = get_object_or_404(
        ErrorGroup.objects.select_related("assigned_user", "assigned_group"), pk=pk
    )
    if not ownership.may_see(request.user, problem):
        raise PermissionDenied(ownership.SEE_IT)
    return problem


@sync_user_required
@require_POST
def problem_assignment(request: HttpRequest, pk: int) -> HttpResponse:
    """Assign to me, Unassign, or Assign to a person or a role."""
    problem = _problem(request, pk)
    form = AssignmentForm(request.POST)
    if not form.is_valid():
        messages.error(request, error_text(form))
        return _back(request, problem, "#owner")
    data = form.cleaned_data
    try:
        if data["action"] == "take":
            problem = ownership.take(problem, request.user)
        elif data["action"] == "unassign":
            problem = ownership.unassign(problem, request.user)
        else:
            problem = ownership.assign(
                problem, request.user, to_user=data["user"], to_group=data["group"]
            )
    except ownership.OwnershipRefused as exc:
        if exc.forbidden:
            raise PermissionDenied(str(exc)) from exc
        messages.error(request, str(exc))
        return _back(request, problem, "#owner")
    owner = problem.assignee_label
    messages.success(
        request,
        f"Problem #{problem.pk} is assigned to {owner}."
        if owner
        else f"Problem #{problem.pk} is unassigned.",
    )
    return _back(request, problem, "#owner")


@sync_user_required
@require_POST
def problem_comment(request: HttpRequest, pk: int) -> HttpResponse:
    problem = _problem(request, pk)
    form = CommentForm(request.POST)
    if not form.is_valid():
        messages.error(request, error_text(form))
        return redirect(problem.get_absolute_url() + "#discussion")
    try:
        ownership.comment(problem, request.user, form.cleaned_data["text"])
    except ownership.OwnershipRefused as exc:
        if exc.forbidden:
            raise PermissionDenied(str(exc)) from exc
        messages.error(request, str(exc))
    else:
        messages.success(request, "Your comment is added.")
    return redirect(problem.get_absolute_url() + "#discussion")


def problem_ownership(user, problem: ErrorGroup) -> dict:
    """What the problem's page shows of its owner and discussion, and what this person may
    do there."""
    administrator = is_sync_admin(user)
    mine = problem.assigned_user_id == user.pk
    return {
        "comments": list(ownership.comments_of(problem).select_related("author")),
        "may_take": not mine,
        "may_unassign": bool(problem.assignee_label) and (mine or administrator),
        "assignees": assignee_choices() if administrator else [],
        "comment_max_length": ownership.COMMENT_MAX_LENGTH,
        "may_set_policy": administrator,
        "skip_limits": SKIP_AFTER_LIMITS,
        "entry_logging_choices": EntryLogging.choices,
        "retry_limits": (TRANSIENT_RETRIES_MAX, MAX_RETRY_DELAY_SECONDS),
    }


@sync_admin_required
@require_POST
def problem_policy(request: HttpRequest, pk: int) -> HttpResponse:
    """Set or clear the problem's skip and logging policies (Sync administrators); a field
    the form does not send is left as it is."""
    problem = _problem(request, pk)
    low, high = SKIP_AFTER_LIMITS
    said = []
    try:
        if "skip_after_failures" in request.POST:
            text = request.POST["skip_after_failures"].strip()
            if text and not (text.isascii() and text.isdigit() and len(text) <= 2):
                raise policies.PolicyRefused(
                    f"Skip after a number of failures from {low} to {high}."
                )
            problem = policies.set_skip_after(problem, request.user, int(text) if text else None)
            said.append(
                f"couplings are skipped after {problem.skip_after_failures} identical failures "
                "in a row"
                if problem.skip_after_failures is not None
                else "couplings are skipped by the policy of its mapping"
            )
        if "transient_retries" in request.POST or "retry_delay_seconds" in request.POST:
            retries = _whole_number(request.POST.get("transient_retries", ""), "Automatic retries")
            delay = _whole_number(request.POST.get("retry_delay_seconds", ""), "First retry after")
            problem = policies.set_retries(problem, request.user, retries, delay)
            said.append(
                "transient failures are retried by the policy of its mapping"
                if problem.transient_retries is None and problem.retry_delay_seconds is None
                else "its retry policy is set"
            )
        if "entry_logging" in request.POST:
            logging = request.POST["entry_logging"].strip()
            problem = policies.set_entry_logging(problem, request.user, logging)
            said.append(
                f"{EntryLogging(logging).label.lower()}"
                if logging
                else "entries are logged by the policy of its mapping"
            )
    except policies.PolicyRefused as exc:
        messages.error(request, str(exc))
        return _back(request, problem, "#owner")
    if said:
        messages.success(request, f"Problem #{problem.pk}: " + "; ".join(said) + ".")
    return _back(request, problem, "#owner")


def _whole_number(text: str, label: str) -> int | None:
    """A policy number as typed in a form: empty is None (the mapping's)."""
    text = text.strip()
    if not text:
        return None
    if not (text.isascii() and text.isdigit() and len(text) <= 6):
        raise policies.PolicyRefused(f"{label}: a whole number, or empty for the mapping's.")
    return int(text)


@sync_admin_required
@require_http_methods(["GET", "POST"])
def ownership_rules(request: HttpRequest) -> HttpResponse:
    """The ownership rules, and a form to add one (Sync administrators)."""
    form = OwnershipRuleForm(request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                rule = ownership.save_rule(form.rule, request.user)
            except ownership.OwnershipRefused as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, f"Added: {rule}.")
                return redirect("errors:ownership_rules")
        status = 400
    rules = sorted(
        OwnershipRule.objects.select_related(
            "connection", "mapping__connection", "user", "group", "created_by"
        ),
        key=lambda rule: (-rule.specificity, rule.pk),
    )
    return render(
        request, "errors/ownership_rules.html", {"rules": rules, "form": form}, status=status
    )


@sync_admin_required
@require_POST
def ownership_rule_delete(request: HttpRequest, pk: int) -> HttpResponse:
    rule = get_object_or_404(
        OwnershipRule.objects.select_related("connection", "mapping", "user", "group"), pk=pk
    )
    label = ownership.delete_rule(rule, request.user)
    messages.success(request, f"Deleted: {label}.")
    return redirect("errors:ownership_rules")
