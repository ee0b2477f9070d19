-- 0009_device_ident_types.sql: draft-ietf-acme-device-attest's identifier
-- types (§3 permanent-identifier, §4 hardware-module), validated by
-- device-attest-01.
INSERT INTO ident_types (name) VALUES ('permanent-identifier'),
	('hardware-module');
