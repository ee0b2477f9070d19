-- 0014_delegation.sql: RFC 9115 delegation (issue 22). A domain owner's
-- account (the IdO) delegates names to another account (the NDC): the
-- delegation carries the CSR template (RFC 9115 §4) every CSR of its orders
-- must match, and the CNAME map the owner installs (§2.3.2).
--
-- status: active (the NDC may order under it), canceled (the owner ended
-- it: no new order, no finalize, and the STAR orders made under it were
-- canceled in the same transaction).
-- orders.delegation_id: the delegation a (NDC's) order was made under; such
-- an order is linked to the owner's valid authorizations (order_authzs),
-- so it is ready at once and nothing is validated again.
CREATE TABLE delegations (
	id		bigserial PRIMARY KEY,
	owner_id	bigint NOT NULL REFERENCES accounts (id),
	ndc_id		bigint NOT NULL REFERENCES accounts (id),
	status		text NOT NULL DEFAULT 'active'
			CHECK (status IN ('active', 'canceled')),
	csr_template	text NOT NULL,
	cname_map	text,
	created		timestamptz NOT NULL DEFAULT now(),
	updated		timestamptz NOT NULL DEFAULT now(),
	canceled_at	timestamptz
);
CREATE INDEX delegations_ndc_idx ON delegations (ndc_id, id)
	WHERE status = 'active';
CREATE INDEX delegations_owner_idx ON delegations (owner_id, id);

ALTER TABLE orders ADD COLUMN delegation_id bigint REFERENCES delegations (id);
CREATE INDEX orders_delegation_idx ON orders (delegation_id)
	WHERE delegation_id IS NOT NULL;
