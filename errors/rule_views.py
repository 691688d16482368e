"""The page that fixes a whole problem with a rule: the form, its dry run, and applying it."""

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from syncconsole.permissions import sync_admin_required
from triage import rules

from .models import ErrorGroup
from .rule_forms import RuleForm


def problem_url(problem: ErrorGroup) -> str:
    return reverse("errors:list") + f"?group={problem.pk}#problem"


@sync_admin_required
@require_http_methods(["GET", "POST"])
def problem_rule(request: HttpRequest, pk: int) -> HttpResponse:
    problem = get_object_or_404(ErrorGroup.objects.select_related("mapping__connection"), pk=pk)
    if problem.mapping is None:
        messages.error(request, "A rule transforms what a mapping writes: this problem has none.")
        return redirect(problem_url(problem))
    direction = rules.problem_direction(problem)
    fields = rules.written_fields(problem.mapping, direction) if direction else []
    data = request.POST if request.method == "POST" else None
    initial = {"kind": request.GET.get("kind") or "truncate"}
    form = RuleForm(data, fields=fields, initial=initial)
    preview = None
    status = 200
    if data is not None and form.is_valid():
        try:
            spec = rules.rule_spec(
                problem,
                field=form.cleaned_data["field"],
                kind=form.cleaned_data["kind"],
                params=form.params(),
                direction=direction,
            )
        except rules.RuleRefused as exc:
            for name, problems in (exc.fields or {"__all__": [str(exc)]}).items():
                for message in problems:
                    form.add_error(name if name in form.fields else None, message)
            status = 400
        else:
            if request.POST.get("action") == "apply":
                return _apply(request, problem, spec, keep=form.cleaned_data["keep"])
            preview = rules.preview_rule(problem, spec)
    elif data is not None:
        status = 400
    context = {"group": problem, "form": form, "preview": preview, "direction": direction}
    return render(request, "errors/rule.html", context, status=status)


def _apply(request: HttpRequest, problem: ErrorGroup, spec, *, keep: bool) -> HttpResponse:
    try:
        applied = rules.apply_rule(problem, spec, keep=keep, user=request.user)
    except rules.RuleRefused as exc:
        messages.error(request, str(exc))
        return redirect(problem_url(problem))
    how = "kept on the mapping" if keep else "used once"
    what = f"Rule {applied.version.description} on {spec.field} ({how})"
    if applied.job is None:
        messages.warning(request, f"{what} is saved, but no job was queued: {applied.refused}")
        return redirect(problem_url(problem))
    messages.success(
        request,
        f"{what} applied: job #{applied.job.pk} retries {applied.records} "
        f"record{'s' * (applied.records != 1)}.",
    )
    return redirect(problem_url(problem))
