-- 0008_ident_types.sql: identifier types become rows of a table instead of
-- a CHECK list, so that each extension adds its type with one INSERT in its
-- own migration (RFC 8823 email, RFC 9448 TNAuthList, ...) rather than by
-- rewriting one shared constraint.
CREATE TABLE ident_types (
	name		text PRIMARY KEY
);
INSERT INTO ident_types (name) VALUES ('dns'), ('ip'), ('email');
ALTER TABLE authzs DROP CONSTRAINT authzs_ident_type_check;
ALTER TABLE authzs ADD CONSTRAINT authzs_ident_type_fkey
	FOREIGN KEY (ident_type) REFERENCES ident_types (name);
