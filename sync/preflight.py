"""The check before a job writes anything: whether both apps can be reached and signed in to,
and whether the integration user may do what the job needs. Shared by the engine and by the
circuit breaker, which runs it to decide whether a paused mapping may resume."""

from .connectors import Connector, ConnectorError
from .connectors.dataverse import PRIVILEGE
from .health import job_blockers
from .models import TableMapping


class JobFailure(Exception):
    """The whole job cannot go on (sign-in, setup, permission to read, connection)."""

    def __init__(
        self, error: ConnectorError, app_name: str, entity: str, category: str | None = None
    ):
        super().__init__(error.message)
        self.error = error
        self.app_name = app_name
        self.entity = entity
        self.category = category


def check_integration_users(
    mapping: TableMapping,
    source: Connector,
    destination: Connector,
    direction: str | None = None,
) -> None:
    """Refuse to run when an app cannot be reached or signed in to, as an integration user
    set up the way the apps warn against (disabled, no roles, an administrator, no
    integration role), or one without a privilege the job needs: each would fail every
    record the same way, so the job fails with one entry that says why."""
    blockers = job_blockers(mapping, direction or mapping.direction, source, destination)
    if not blockers:
        return
    first = blockers[0]
    app, side = first.app, first.side or "source"
    entity = getattr(mapping, f"{side}_entity")
    also = "".join(f"\n- {f.app}: {f.message} {f.remedy}".rstrip() for f in blockers[1:])
    if first.error is not None:
        error = first.error
        if also:
            error.detail = f"{error.detail}\n\nAlso found:{also}".strip()
        raise JobFailure(error, app, entity)
    if first.code == "missing_privilege":
        connector = source if side == "source" else destination
        user_id = getattr(connector, "user_id", "") or "unknown"
        # Dataverse names the table by its logical name, the privilege's noun in lower case.
        named = PRIVILEGE.fullmatch(first.privilege)
        logical = (named["table"] if named else first.privilege).lower()
        message = (
            f"Principal user (Id={user_id}, type=8) is missing {first.privilege} privilege "
            f"for entity '{logical}': mapping {mapping.name} needs it, so the job did not "
            "start."
        )
        raise JobFailure(
            ConnectorError(
                message,
                status=403,
                code=first.code,
                detail="\n".join(f"- {f.app}: {f.message} {f.remedy}".rstrip() for f in blockers),
            ),
            app,
            first.entity or entity,
            category=first.category,
        )
    raise JobFailure(
        ConnectorError(
            f"{app}: {first.message} {first.remedy}".strip(),
            code=first.code,
            detail=f"Also found:{also}" if also else "",
        ),
        app,
        entity,
        category=first.category,
    )
