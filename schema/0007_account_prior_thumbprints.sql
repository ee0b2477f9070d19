-- 0007_account_prior_thumbprints.sql: dns-persist-01
-- (draft-ietf-acme-dns-persist §4.2) makes the CA retain the SHA-256 JWK
-- thumbprint of every key an account has used, so that a record computed
-- with a key that was since rolled over keeps validating. Newest first;
-- sa.key_change prepends the key it replaces.
ALTER TABLE accounts ADD COLUMN prior_thumbprints text[] NOT NULL
	DEFAULT '{}';
