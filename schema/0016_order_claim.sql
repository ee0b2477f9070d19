-- 0016_order_claim.sql: the finalize claim (issue 25). Two RAs may both
-- work on one processing order: the one that claimed it (finalize) and the
-- other one's recovery once the order looks stale. So that only one of them
-- can get a certificate signed and stored for it, the claim carries a token:
--
-- claim       the token of the RA that holds the order (sa.set_order_processing
--             sets it; sa.reclaim_order replaces it once claimed_at is older
--             than the recovery bound). sa.reserve_serial and
--             sa.add_certificate for the order succeed only with it.
-- claimed_at  when the holder last showed it is alive: set with the claim,
--             refreshed by each sa.reserve_serial under the claim.
ALTER TABLE orders ADD COLUMN claim text;
ALTER TABLE orders ADD COLUMN claimed_at timestamptz;
