-- 0011_bundle_eid_ident_type.sql: RFC 9891's identifier type "bundleEID"
-- (a DTN Node ID), validated by bp-nodeid-00.
INSERT INTO ident_types (name) VALUES ('bundleEID');
