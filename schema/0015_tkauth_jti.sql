-- 0015_tkauth_jti.sql: the tkauth-01 Authority Tokens already spent (issue
-- 23). RFC 9447 §4: the "jti" "provides a convenient way to reliably track
-- when the same "atc" Authority Token is being used for multiple
-- challenges"; Anvil lets one token validate one challenge only. A jti is
-- unique per issuer (RFC 7519 §4.1.7), so the key is the Token Authority
-- (the signer certificate's subject) and the jti. account_id/challenge_id:
-- who spent it. expires: the token's "exp"; past it the token is refused
-- anyway, so such rows may be deleted.
CREATE TABLE tkauth_jtis (
	issuer		text NOT NULL,
	jti		text NOT NULL,
	account_id	bigint NOT NULL,
	challenge_id	bigint NOT NULL,
	expires		timestamptz NOT NULL,
	created		timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (issuer, jti)
);
CREATE INDEX tkauth_jtis_expires_idx ON tkauth_jtis (expires);
