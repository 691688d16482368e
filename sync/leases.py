"""The lease a running job holds on its mapping, and the fence that keeps a job that lost it
from writing.

A job runs under its mapping's PostgreSQL session advisory lock (engine.mapping_lock). Should
the job's database session end while the job still works (a fail-over, a cut network, an
administrator ending it), PostgreSQL releases the lock and another job of the mapping may
start, while the first one, back on a new session, goes on. So each job also takes a lease
when it starts: the mapping's lease token (MappingLease), moved on by one. Every transaction
of the job that writes first reads the token with a row lock (`FOR SHARE`) and goes on only
while it is still the job's own: once a newer job moved it on, the old job's writes, whatever
they are (couplings, entries, counts, watermarks, its own status), are refused with LeaseLost.
The row lock orders the two: a newer job takes its lease only once the old job's transaction
has ended, and the old job's next transaction sees the new lease."""

import re
from contextlib import contextmanager

from django.db import connection, transaction
from psycopg2.extensions import TRANSACTION_STATUS_IDLE

# Statements that change data; reads go through unchecked.
_WRITES = re.compile(r"^\s*(INSERT|UPDATE|DELETE|MERGE|WITH|COPY|TRUNCATE)\b", re.IGNORECASE)


class LeaseLost(Exception):
    """A newer job of the mapping took its lease: the job must not write any more."""


def take(mapping_id: int) -> int:
    """Move the mapping's lease on and return it: the token of the job that starts (under the
    mapping's advisory lock)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO sync_mappinglease AS lease (mapping_id, token) VALUES (%s, 1) "
            "ON CONFLICT (mapping_id) DO UPDATE SET token = lease.token + 1 RETURNING token",
            [mapping_id],
        )
        return cursor.fetchone()[0]


class _Fence:
    """An execute wrapper: the first write of each transaction checks the lease."""

    def __init__(self, mapping_id: int, token: int):
        self.mapping_id = mapping_id
        self.token = token
        # The savepoint depth at which the running transaction checked the lease (None: not
        # checked). A savepoint rolled back also lets go of the row lock taken inside it.
        self.checked_at: int | None = None

    def __call__(self, execute, sql, params, many, context):
        db = context["connection"]
        if not db.in_atomic_block:
            self.checked_at = None
            if not _WRITES.match(sql):
                return execute(sql, params, many, context)
            # A statement on its own is a transaction on its own: the check goes with it.
            with transaction.atomic(using=db.alias):
                self.check(db, context["cursor"])
                return execute(sql, params, many, context)
        depth = len(db.savepoint_ids)
        if self.checked_at is not None and (depth < self.checked_at or not _in_transaction(db)):
            self.checked_at = None  # a new transaction, or the savepoint of the check is gone
        if self.checked_at is None and _WRITES.match(sql):
            self.check(db, context["cursor"])
            self.checked_at = depth
        return execute(sql, params, many, context)

    def check(self, db, cursor) -> None:
        # The driver's cursor, so that the check does not go through this wrapper again; its
        # errors made Django's, as the job's own statements' are (a connection lost during
        # the check interrupts the job like one lost anywhere else: engine.connection_lost).
        raw = cursor.cursor
        with db.wrap_database_errors:
            raw.execute(
                "SELECT token FROM sync_mappinglease WHERE mapping_id = %s FOR SHARE",
                [self.mapping_id],
            )
            row = raw.fetchone()
        if row is None or row[0] != self.token:
            raise LeaseLost(f"The lease {self.token} of mapping {self.mapping_id} was taken over.")


def _in_transaction(db) -> bool:
    """Whether the server has a transaction open on the connection (a statement of it ran)."""
    return db.connection.get_transaction_status() != TRANSACTION_STATUS_IDLE


@contextmanager
def fenced(mapping_id: int, token: int):
    """Run the block with every write transaction on the default connection checking that
    the mapping's lease token is still `token`; raises LeaseLost at the first one that finds it
    taken over."""
    with connection.execute_wrapper(_Fence(mapping_id, token)):
        yield
