-- 0001_init.sql: Anvil storage authority, initial schema.
-- Applied by anvil-sa --migrate inside one transaction; recorded in
-- schema_migrations by the migrator (not here).
-- Times are timestamptz (UTC). Serials and key hashes are lowercase hex text.
-- JSON documents (JWK, contact, identifiers, problems, validation records)
-- are stored as text written by anvil-sa itself.

CREATE TABLE accounts (
	id		bigserial PRIMARY KEY,
	jwk		text NOT NULL,
	thumbprint	text NOT NULL,
	contact		text NOT NULL DEFAULT '[]',
	status		text NOT NULL DEFAULT 'valid'
			CHECK (status IN ('valid', 'deactivated', 'revoked')),
	eab_kid		text,
	tos_agreed	boolean NOT NULL DEFAULT false,
	created		timestamptz NOT NULL DEFAULT now(),
	CONSTRAINT accounts_thumbprint_key UNIQUE (thumbprint)
);

CREATE TABLE eab_keys (
	kid		text PRIMARY KEY,
	hmac_key	bytea NOT NULL,
	comment		text NOT NULL DEFAULT '',
	created		timestamptz NOT NULL DEFAULT now(),
	revoked		boolean NOT NULL DEFAULT false,
	account_id	bigint REFERENCES accounts (id)
);

-- Stored status: pending, processing, valid or invalid. The status clients
-- see is derived on read (see docs/storage.md).
CREATE TABLE orders (
	id		bigserial PRIMARY KEY,
	account_id	bigint NOT NULL REFERENCES accounts (id),
	status		text NOT NULL DEFAULT 'pending'
			CHECK (status IN ('pending', 'processing', 'valid', 'invalid')),
	expires		timestamptz NOT NULL,
	identifiers	text NOT NULL,
	not_before	timestamptz,
	not_after	timestamptz,
	profile		text NOT NULL DEFAULT '',
	error		text,
	replaces	text,
	certificate_serial text,
	began_processing timestamptz,
	created		timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX orders_account_id_idx ON orders (account_id, id);
CREATE INDEX orders_processing_idx ON orders (began_processing)
	WHERE status = 'processing';

CREATE TABLE authzs (
	id		bigserial PRIMARY KEY,
	account_id	bigint NOT NULL REFERENCES accounts (id),
	ident_type	text NOT NULL CHECK (ident_type IN ('dns', 'ip')),
	ident_value	text NOT NULL,
	wildcard	boolean NOT NULL DEFAULT false,
	status		text NOT NULL DEFAULT 'pending'
			CHECK (status IN ('pending', 'valid', 'invalid',
			    'deactivated', 'revoked')),
	expires		timestamptz NOT NULL,
	profile		text NOT NULL DEFAULT '',
	created		timestamptz NOT NULL DEFAULT now(),
	attempted_at	timestamptz
);
-- Authorization reuse: valid authzs of one account for one identifier.
CREATE INDEX authzs_reuse_idx ON authzs
	(account_id, ident_type, ident_value, status, expires);

CREATE TABLE challenges (
	id		bigserial PRIMARY KEY,
	authz_id	bigint NOT NULL REFERENCES authzs (id) ON DELETE CASCADE,
	type		text NOT NULL,
	token		text NOT NULL,
	status		text NOT NULL DEFAULT 'pending'
			CHECK (status IN ('pending', 'processing', 'valid',
			    'invalid')),
	validated	timestamptz,
	attempted_at	timestamptz,
	error		text,
	validation_record text,
	CONSTRAINT challenges_authz_type_key UNIQUE (authz_id, type)
);

CREATE TABLE order_authzs (
	order_id	bigint NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
	authz_id	bigint NOT NULL REFERENCES authzs (id),
	pos		integer NOT NULL,
	PRIMARY KEY (order_id, authz_id)
);
CREATE INDEX order_authzs_authz_idx ON order_authzs (authz_id);

-- Reserved by the CA before signing: a serial is used at most once.
CREATE TABLE serials (
	serial		text PRIMARY KEY,
	account_id	bigint NOT NULL REFERENCES accounts (id),
	created		timestamptz NOT NULL DEFAULT now(),
	expires		timestamptz NOT NULL
);
CREATE INDEX serials_account_idx ON serials (account_id, expires);

CREATE TABLE certificates (
	serial		text PRIMARY KEY REFERENCES serials (serial),
	account_id	bigint NOT NULL REFERENCES accounts (id),
	order_id	bigint REFERENCES orders (id),
	der		bytea NOT NULL,
	issuer_id	text NOT NULL,
	profile		text NOT NULL DEFAULT '',
	identifiers	text NOT NULL,
	not_before	timestamptz NOT NULL,
	not_after	timestamptz NOT NULL,
	issued		timestamptz NOT NULL DEFAULT now(),
	key_hash	text NOT NULL,
	shard		integer NOT NULL DEFAULT 0
);
CREATE INDEX certificates_account_idx ON certificates (account_id, not_after);
CREATE INDEX certificates_not_after_idx ON certificates (not_after);

CREATE TABLE certificate_status (
	serial		text PRIMARY KEY REFERENCES certificates (serial),
	status		text NOT NULL DEFAULT 'good'
			CHECK (status IN ('good', 'revoked')),
	revoked_at	timestamptz,
	revoked_reason	integer,
	-- copies of certificate columns for the CRL query
	issuer_id	text NOT NULL,
	shard		integer NOT NULL,
	not_after	timestamptz NOT NULL
);
CREATE INDEX certificate_status_crl_idx ON certificate_status
	(issuer_id, shard, not_after) WHERE status = 'revoked';

CREATE TABLE key_hash_to_serial (
	key_hash	text NOT NULL,
	serial		text NOT NULL REFERENCES certificates (serial),
	not_after	timestamptz NOT NULL,
	PRIMARY KEY (key_hash, serial)
);
CREATE INDEX key_hash_to_serial_na_idx ON key_hash_to_serial
	(key_hash, not_after);

CREATE TABLE blocked_keys (
	key_hash	text PRIMARY KEY,
	added		timestamptz NOT NULL DEFAULT now(),
	source		text NOT NULL DEFAULT '',
	comment		text NOT NULL DEFAULT ''
);

-- One row per name per certificate; reversed_name is "com.example.www".
CREATE TABLE issued_names (
	reversed_name	text COLLATE "C" NOT NULL,
	issued		timestamptz NOT NULL,
	serial		text NOT NULL REFERENCES certificates (serial),
	PRIMARY KEY (reversed_name, issued, serial)
);

-- SHA-256 (hex) of the sorted, de-duplicated identifier set of a cert.
CREATE TABLE fqdn_sets (
	set_hash	text NOT NULL,
	serial		text NOT NULL REFERENCES certificates (serial),
	issued		timestamptz NOT NULL,
	expires		timestamptz NOT NULL,
	PRIMARY KEY (set_hash, issued, serial)
);

-- ARI: which order replaces which certificate (one live order per serial).
CREATE TABLE replacement_orders (
	serial		text PRIMARY KEY,
	order_id	bigint NOT NULL REFERENCES orders (id) ON DELETE CASCADE
);
CREATE INDEX replacement_orders_order_idx ON replacement_orders (order_id);

-- GCRA buckets: theoretical arrival time in epoch milliseconds.
CREATE TABLE rate_limit_buckets (
	key		text PRIMARY KEY,
	tat_ms		bigint NOT NULL,
	updated		timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE crl_shards (
	issuer_id	text NOT NULL,
	shard		integer NOT NULL,
	last_number	bigint NOT NULL DEFAULT 0,
	number		bigint,
	der		bytea,
	this_update	timestamptz,
	next_update	timestamptz,
	PRIMARY KEY (issuer_id, shard)
);

CREATE TABLE ocsp_responses (
	serial		text PRIMARY KEY REFERENCES certificates (serial),
	der		bytea NOT NULL,
	this_update	timestamptz NOT NULL,
	next_update	timestamptz NOT NULL
);
