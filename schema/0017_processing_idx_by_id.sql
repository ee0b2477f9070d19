-- 0017_processing_idx_by_id.sql: the partial indexes of rows in processing
-- are keyed by id (issue 18). Keyed by began_processing / attempted_at, a
-- generic plan of a write to ONE processing row ("id = $1 AND status =
-- 'processing'", sa.add_certificate, sa.reserve_serial, ...) could pick
-- the partial index with id as a mere filter (small, fresh statistics) and
-- read every row in processing: O(clients) per call. Keyed by id, every
-- index such a plan can use looks the row up by id. The stale scans
-- (sa.get_stale_processing_orders / _authzs) read all processing rows and
-- filter on the time anyway: processing rows are few.
DROP INDEX orders_processing_idx;
CREATE INDEX orders_processing_idx ON orders (id)
	WHERE status = 'processing';
DROP INDEX challenges_processing_idx;
CREATE INDEX challenges_processing_idx ON challenges (authz_id, id)
	WHERE status = 'processing';
