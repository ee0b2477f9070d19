-- 0013_tnauthlist_ident_type.sql: RFC 9448 §3's identifier type
-- "TNAuthList" (the base64url of a DER TNAuthList, RFC 8226 §9), validated
-- by tkauth-01 (RFC 9447).
INSERT INTO ident_types (name) VALUES ('TNAuthList');
