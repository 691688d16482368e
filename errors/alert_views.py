"""The page where Sync administrators choose the problems they are e-mailed about, and see
the alerts the mail server has not taken yet."""

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from syncconsole.permissions import sync_admin_required

from .forms import AlertSubscriptionForm
from .models import AlertDelivery, AlertSubscription
from .subscriptions import save_subscription, unsubscribe

NEW_PREFIX = "new"
UNDELIVERED_SHOWN = 20


def _prefix(subscription: AlertSubscription) -> str:
    return f"s{subscription.pk}"


@sync_admin_required
@require_http_methods(["GET", "POST"])
def alert_list(request: HttpRequest) -> HttpResponse:
    # Bound on every POST, an empty one too (every box unticked): it gets its messages.
    data = request.POST if request.method == "POST" else None
    form = AlertSubscriptionForm(data, user=request.user, prefix=NEW_PREFIX)
    if request.method == "POST":
        if save_subscription(form, request.user):
            messages.success(request, f"Subscribed: {form.instance.scope_label}.")
            return redirect("errors:alerts")
        return _page(request, new_form=form, status=400)
    return _page(request, new_form=form)


@sync_admin_required
@require_POST
def alert_change(request: HttpRequest, pk: int) -> HttpResponse:
    subscription = get_object_or_404(AlertSubscription, pk=pk, user=request.user)
    form = AlertSubscriptionForm(
        request.POST, instance=subscription, user=request.user, prefix=_prefix(subscription)
    )
    if save_subscription(form, request.user):
        messages.success(request, f"Saved: {form.instance.scope_label}.")
        return redirect("errors:alerts")
    return _page(request, bound=form, status=400)


@sync_admin_required
@require_POST
def alert_delete(request: HttpRequest, pk: int) -> HttpResponse:
    subscription = get_object_or_404(AlertSubscription, pk=pk, user=request.user)
    label = unsubscribe(subscription, request.user)
    messages.success(request, f"Unsubscribed: {label}.")
    return redirect("errors:alerts")


def _page(request, new_form=None, bound=None, status: int = 200) -> HttpResponse:
    subscriptions = request.user.alert_subscriptions.select_related(
        "connection", "mapping__connection"
    )
    rows = [
        (
            subscription,
            bound
            if bound is not None and bound.instance.pk == subscription.pk
            else AlertSubscriptionForm(
                instance=subscription, user=request.user, prefix=_prefix(subscription)
            ),
        )
        for subscription in subscriptions
    ]
    if new_form is None:
        new_form = AlertSubscriptionForm(user=request.user, prefix=NEW_PREFIX)
    return render(
        request,
        "errors/alerts.html",
        {
            "rows": rows,
            "new_form": new_form,
            "email": request.user.email,
            "undelivered": undelivered(request.user),
        },
        status=status,
    )


def undelivered(user) -> list[AlertDelivery]:
    """The person's alerts whose sending failed: waiting for their next try, or given up."""
    return list(
        AlertDelivery.objects.filter(user=user, attempts__gt=0, claim=None)
        .filter(state__in=[AlertDelivery.State.PENDING, AlertDelivery.State.FAILED])
        .select_related("group")
        .order_by("-created_at")[:UNDELIVERED_SHOWN]
    )
