-- A deleted coupling leaves no entry naming it, even one written while it was being deleted:
-- the entries' coupling_id has no foreign-key constraint (its check cost every entry written a
-- lookup), so this does what ON DELETE SET NULL would, after the DELETE statement. Django's
-- collector did it beforehand from a snapshot taken before the delete waited for the writer's
-- FOR KEY SHARE lock (errors.entries.check_references), so an entry committed in between kept
-- the id of a row that was gone. Once per statement, with the ids deleted as an array so that
-- each day partition is read through its index on the key; a delete that found nothing reads
-- nothing.
CREATE OR REPLACE FUNCTION errors_forget_deleted_couplings_coupling() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    gone_ids bigint[] := ARRAY(SELECT id FROM gone);
BEGIN
    IF cardinality(gone_ids) = 0 THEN
        RETURN NULL;
    END IF;
    UPDATE errors_syncerror SET coupling_id = NULL WHERE coupling_id = ANY (gone_ids);
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER errors_forget_deleted_couplings_coupling AFTER DELETE ON couplings_coupling
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION errors_forget_deleted_couplings_coupling();
