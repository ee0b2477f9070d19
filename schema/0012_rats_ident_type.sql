-- 0012_rats_ident_type.sql: draft-ietf-acme-rats §2.1's identifier type
-- "remote-attestation" (its value is a property hint, possibly empty),
-- validated by remote-attest-01.
INSERT INTO ident_types (name) VALUES ('remote-attestation');
