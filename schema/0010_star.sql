-- 0010_star.sql: RFC 8739 short-term, automatically renewed (STAR) orders
-- (issue 22). One row per STAR order beside its orders row: the
-- auto-renewal object as accepted, the CSR every renewal is issued from,
-- the renewal state and the lease a renewing RA holds.
--
-- status: active (renewals go on), canceled (RFC 8739 §3.1.2: no further
-- certificate, ever), ended (the last certificate reaches end-date, or the
-- series was stopped: order invalid, account deactivated, key blocked).
-- next_at: when the next certificate is due (its notBefore, §3.5); NULL
-- until the order is finalized and after the series stops.
-- lease_owner/lease_until: the RA renewing the order right now (claimed
-- with FOR UPDATE SKIP LOCKED, so several RAs never renew one order at
-- once; a lease left by a dead RA expires and another RA takes over).
-- The current certificate is not stored here: it is the order's
-- certificate with the latest notAfter (certificates.order_id).
CREATE TABLE star_orders (
	order_id	bigint PRIMARY KEY REFERENCES orders (id),
	account_id	bigint NOT NULL REFERENCES accounts (id),
	status		text NOT NULL DEFAULT 'active'
			CHECK (status IN ('active', 'canceled', 'ended')),
	start_date	timestamptz,
	end_date	timestamptz NOT NULL,
	lifetime	bigint NOT NULL CHECK (lifetime > 0),
	lifetime_adjust	bigint NOT NULL DEFAULT 0 CHECK (lifetime_adjust >= 0),
	allow_get	boolean NOT NULL DEFAULT false,
	csr		text,
	next_at		timestamptz,
	renewals	integer NOT NULL DEFAULT 0,
	lease_owner	text,
	lease_until	timestamptz,
	canceled_at	timestamptz,
	ended_reason	text,
	created		timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX star_orders_due_idx ON star_orders (next_at)
	WHERE status = 'active';
CREATE INDEX star_orders_account_idx ON star_orders (account_id);
