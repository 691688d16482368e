-- A deleted job leaves no entry naming it, even one written while it was being deleted:
-- the entries' job_id has no foreign-key constraint (its check cost every entry written a
-- lookup), so this does what ON DELETE SET NULL would, after the DELETE statement. Django's
-- collector did it beforehand from a snapshot taken before the delete waited for the writer's
-- FOR KEY SHARE lock (errors.entries.check_references), so an entry committed in between kept
-- the id of a row that was gone. Once per statement, with the ids deleted as an array so that
-- each day partition is read through its index on the key; a delete that found nothing reads
-- nothing.
CREATE OR REPLACE FUNCTION errors_forget_deleted_sync_syncjob() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    gone_ids bigint[] := ARRAY(SELECT id FROM gone);
BEGIN
    IF cardinality(gone_ids) = 0 THEN
        RETURN NULL;
    END IF;
    UPDATE errors_syncerror SET job_id = NULL WHERE job_id = ANY (gone_ids);
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER errors_forget_deleted_sync_syncjob AFTER DELETE ON sync_syncjob
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION errors_forget_deleted_sync_syncjob();
