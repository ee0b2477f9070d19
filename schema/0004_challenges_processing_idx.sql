-- 0004_challenges_processing_idx.sql: find challenges left in processing
-- (sa.get_stale_processing_authzs, used by the RA to fail validations cut
-- short by a crash or an SA outage).
CREATE INDEX challenges_processing_idx ON challenges (attempted_at)
	WHERE status = 'processing';
