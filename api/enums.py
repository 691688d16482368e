"""Names of the API's choice sets in the OpenAPI description (SPECTACULAR_SETTINGS)."""

from audit.models import AuditEvent
from couplings.models import Coupling
from errors.models import BulkAction, EntryLogging, Status, SyncErrorCleanup
from sync.edits import KINDS as EDITED_VALUE_KINDS
from sync.models import Connection, MappingRule, ProbeDirection, SyncJob, TableMapping
from sync.transformations import KINDS as TRANSFORMATION_KINDS

STATUS = Status
BULK_ACTION = BulkAction.Action
# Bulk actions and clean-ups go through the same states.
WORK_STATE = BulkAction.State
CLEANUP_ACTION = SyncErrorCleanup.Action
JOB_STATUS = SyncJob.Status
# A job's kind and trigger, in the list and in the detail with its log.
JOB_KIND = SyncJob.Kind
JOB_TRIGGER = SyncJob.Trigger
FLAVOR = Connection.Flavor
COUPLING_RESULT = Coupling.Result
AUDIT_ACTION = AuditEvent.Action
# A mapping's (and a job's) direction, and the side a lag probe changes, both named
# "direction": named apart here.
MAPPING_DIRECTION = TableMapping.Direction
PROBE_DIRECTION = ProbeDirection
# The direction of the writes a rule changes; how a mapping or a problem logs failures; the
# kinds of value an edit takes and the kinds of rule, each named apart from the others.
RULE_DIRECTION = MappingRule.DIRECTIONS
ENTRY_LOGGING = EntryLogging
VALUE_KIND = list(EDITED_VALUE_KINDS)
RULE_KIND = list(TRANSFORMATION_KINDS.items())
