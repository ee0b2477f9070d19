-- 0005_authz_subdomain.sql: RFC 9444 subdomain authorizations. An authz with
-- subdomain_auth proves control of ident_value for every name below it (for
-- the same account); the RA looks such authzs up by the ancestors of a
-- requested name through authzs_reuse_idx.
ALTER TABLE authzs ADD COLUMN subdomain_auth boolean NOT NULL DEFAULT false;
