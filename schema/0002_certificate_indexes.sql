-- 0002_certificate_indexes.sql: let the per-account serial list and the
-- expiring-certificates search read in index order (index-only for the
-- former) instead of sorting every certificate of an account.
DROP INDEX certificates_account_idx;
CREATE INDEX certificates_account_idx ON certificates (account_id, not_after, serial);
DROP INDEX certificates_not_after_idx;
CREATE INDEX certificates_not_after_idx ON certificates (not_after, serial);
