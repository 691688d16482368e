"""Rules that fix a whole problem, for scripts: the dry run, applying one (kept on the
mapping or used once), a mapping's rules, switching one off and reverting it. The same
service as the problem page and the mapping page (triage.rules)."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from sync.models import MappingRule, TableMapping
from triage import rules

from .permissions import IsSyncAdmin
from .serializers import (
    MappingRuleSerializer,
    RuleAppliedSerializer,
    RuleApplySerializer,
    RulePreviewSerializer,
    RuleRequestSerializer,
)
from .views import CONFLICT, FIELD_MESSAGES, NOT_FOUND, Conflict, _problem, _valid, example

RULES = ["Rules"]
CUT_PHONE = {"field": "phoneNumber", "kind": "truncate", "params": {}}
MAP_CURRENCY = {"field": "currencyCode", "kind": "map", "params": {"map": {"NOK": "EUR"}}}


def _spec(problem, data: dict) -> rules.RuleSpec:
    try:
        return rules.rule_spec(
            problem,
            field=data["field"],
            kind=data["kind"],
            params=data.get("params"),
            direction=data.get("direction"),
        )
    except rules.RuleRefused as exc:
        # Well formed, but not a rule of this problem's mapping: a field it does not write,
        # parameters of another kind, a length its message does not name.
        raise Conflict(exc.fields or str(exc)) from exc


def _rule_of(mapping_id: int, pk: int) -> MappingRule:
    return get_object_or_404(MappingRule, mapping_id=mapping_id, pk=pk)


class ProblemRulePreviewView(APIView):
    """The dry run of a rule on the problem's open entries: each entry's value before and
    after, and how many records the job that applies it would write. Nothing is written
    (Sync administrators)."""

    permission_classes = [IsSyncAdmin]

    @extend_schema(
        tags=RULES,
        request=RuleRequestSerializer,
        examples=[
            example("Cut the phone to the ERP's length", CUT_PHONE),
            example("Map a currency", MAP_CURRENCY),
        ],
        responses={
            200: RulePreviewSerializer,
            400: FIELD_MESSAGES,
            404: NOT_FOUND,
            409: CONFLICT,
        },
    )
    def post(self, request, pk: int):
        problem = _problem(request, pk)
        spec = _spec(problem, _valid(RuleRequestSerializer, request))
        return Response(RulePreviewSerializer(rules.preview_rule(problem, spec)).data)


class ProblemRulesView(APIView):
    """Apply a rule to the problem: its open entries' records are retried as one job that
    applies it; `keep` keeps it on the mapping (a new version of the kept rule of the same
    field, if there is one), else it is used in that job only (Sync administrators)."""

    permission_classes = [IsSyncAdmin]

    @extend_schema(
        tags=RULES,
        request=RuleApplySerializer,
        examples=[example("Cut the phone, kept", {**CUT_PHONE, "keep": True})],
        responses={
            201: RuleAppliedSerializer,
            400: FIELD_MESSAGES,
            404: NOT_FOUND,
            409: CONFLICT,
        },
    )
    def post(self, request, pk: int):
        problem = _problem(request, pk)
        data = _valid(RuleApplySerializer, request)
        spec = _spec(problem, data)
        try:
            applied = rules.apply_rule(problem, spec, keep=data["keep"], user=request.user)
        except rules.RuleRefused as exc:
            raise Conflict(str(exc)) from exc
        return Response(RuleAppliedSerializer(applied).data, status=status.HTTP_201_CREATED)


class MappingRulesView(APIView):
    """A mapping's rules with their versions, newest first (Sync administrators)."""

    permission_classes = [IsSyncAdmin]

    @extend_schema(tags=RULES, responses={200: MappingRuleSerializer(many=True), 404: NOT_FOUND})
    def get(self, request, pk: int):
        mapping = get_object_or_404(TableMapping, pk=pk)
        found = (
            MappingRule.objects.filter(mapping=mapping)
            .select_related("current__made_by", "created_by")
            .prefetch_related("versions__made_by")
            .order_by("-pk")
        )
        return Response(MappingRuleSerializer(found, many=True).data)


class MappingRuleSwitchOffView(APIView):
    """Switch a kept rule off: later writes are no longer transformed (Sync administrators)."""

    permission_classes = [IsSyncAdmin]

    @extend_schema(
        tags=RULES,
        request=None,
        responses={200: MappingRuleSerializer, 404: NOT_FOUND, 409: CONFLICT},
    )
    def post(self, request, pk: int, rule_id: int):
        rule = _rule_of(pk, rule_id)
        try:
            rule = rules.switch_off(rule, request.user)
        except rules.RuleRefused as exc:
            raise Conflict(str(exc)) from exc
        return Response(MappingRuleSerializer(rule).data)


class MappingRuleRevertView(APIView):
    """Make the version before the current one current again, as a new version (Sync
    administrators)."""

    permission_classes = [IsSyncAdmin]

    @extend_schema(
        tags=RULES,
        request=None,
        responses={200: MappingRuleSerializer, 404: NOT_FOUND, 409: CONFLICT},
    )
    def post(self, request, pk: int, rule_id: int):
        rule = _rule_of(pk, rule_id)
        try:
            rules.revert(rule, request.user)
        except rules.RuleRefused as exc:
            raise Conflict(str(exc)) from exc
        rule.refresh_from_db()
        return Response(MappingRuleSerializer(rule).data)
