"""Names of the API's choice sets in the OpenAPI description (SPECTACULAR_SETTINGS)."""

from audit.models import AuditEvent
from couplings.models import Coupling
from errors.models import BulkAction, Status, SyncErrorCleanup
from sync.models import Connection, ProbeDirection, SyncJob, TableMapping

STATUS = Status
BULK_ACTION = BulkAction.Action
# Bulk actions and clean-ups go through the same states.
WORK_STATE = BulkAction.State
CLEANUP_ACTION = SyncErrorCleanup.Action
JOB_STATUS = SyncJob.Status
FLAVOR = Connection.Flavor
COUPLING_RESULT = Coupling.Result
AUDIT_ACTION = AuditEvent.Action
# A mapping's (and a job's) direction, and the side a lag probe changes, both named
# "direction": named apart here.
MAPPING_DIRECTION = TableMapping.Direction
PROBE_DIRECTION = ProbeDirection
