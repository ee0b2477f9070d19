#!/usr/bin/env bash
# Loads synthetic data into a migrated Anvil database for benchmarks:
# N orders (each with one valid authz + challenge) and N certificates with
# their serial, status (1% revoked), key hash, issued name and FQDN set,
# spread over 1000 accounts. Pure SQL (generate_series); each run uses a
# fresh tag so it can be repeated on the same database.
#   scripts/sa-loaddata.sh DSN [N=1000000]
set -euo pipefail
dsn=${1:?usage: sa-loaddata.sh DSN [N]}
n=${2:-1000000}
tag=$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')
start=$SECONDS

psql "$dsn" -v ON_ERROR_STOP=1 -q -v n="$n" -v tag="$tag" <<'SQL'
\timing off
-- Skip per-row foreign-key triggers while loading (superuser only; the
-- generated rows are consistent by construction). Ignored if not allowed.
\set ON_ERROR_STOP 0
SET session_replication_role = replica;
\set ON_ERROR_STOP 1
BEGIN;
INSERT INTO accounts (jwk, thumbprint, contact, tos_agreed)
SELECT '{"kty":"EC","crv":"P-256"}', 'load-' || :'tag' || '-' || g, '[]', true
FROM generate_series(1, 1000) g;
SELECT min(id) AS abase FROM accounts WHERE thumbprint LIKE 'load-' || :'tag' || '-%' \gset
SELECT COALESCE(max(id), 0) AS obase FROM orders \gset
SELECT COALESCE(max(id), 0) AS zbase FROM authzs \gset
SELECT COALESCE(max(id), 0) AS cbase FROM challenges \gset
COMMIT;

BEGIN;
INSERT INTO authzs (id, account_id, ident_type, ident_value, wildcard, status, expires, profile, created)
SELECT :zbase + g, :abase + (g % 1000), 'dns', 'h' || g || '.' || :'tag' || '.load.example', false,
       'valid', now() + interval '30 days', 'classic', now() - (g % 80) * interval '1 hour'
FROM generate_series(1, :n) g;
INSERT INTO challenges (id, authz_id, type, token, status, validated)
SELECT :cbase + g, :zbase + g, 'http-01', md5(:'tag' || g), 'valid', now() - (g % 80) * interval '1 hour'
FROM generate_series(1, :n) g;
INSERT INTO orders (id, account_id, status, expires, identifiers, profile, certificate_serial, created, began_processing)
SELECT :obase + g, :abase + (g % 1000), 'valid', now() + interval '7 days' - (g % 10) * interval '1 day',
       '[{"type":"dns","value":"h' || g || '.' || :'tag' || '.load.example"}]', 'classic',
       substr(md5(:'tag' || g), 1, 32) || '0000', now() - (g % 80) * interval '1 hour',
       now() - (g % 80) * interval '1 hour'
FROM generate_series(1, :n) g;
INSERT INTO order_authzs (order_id, authz_id, pos)
SELECT :obase + g, :zbase + g, 0 FROM generate_series(1, :n) g;
COMMIT;

BEGIN;
INSERT INTO serials (serial, account_id, created, expires)
SELECT substr(md5(:'tag' || g), 1, 32) || '0000', :abase + (g % 1000), now() - (g % 80) * interval '1 day',
       now() + interval '10 days' + (g % 80) * interval '1 day'
FROM generate_series(1, :n) g;
INSERT INTO certificates (serial, account_id, order_id, der, issuer_id, profile, identifiers,
                          not_before, not_after, issued, key_hash, shard)
SELECT substr(md5(:'tag' || g), 1, 32) || '0000', :abase + (g % 1000), :obase + g,
       decode(md5(g::text) || md5((g + 1)::text) || repeat(md5(:'tag' || g), 36), 'hex'),
       '00112233aabbccdd', 'classic',
       '[{"type":"dns","value":"h' || g || '.' || :'tag' || '.load.example"}]',
       now() - (g % 80) * interval '1 day', now() + interval '10 days' + (g % 80) * interval '1 day',
       now() - (g % 80) * interval '1 day', md5(g::text || :'tag') || md5(:'tag' || g::text), (g / 100) % 16
FROM generate_series(1, :n) g;
INSERT INTO certificate_status (serial, status, revoked_at, revoked_reason, issuer_id, shard, not_after)
SELECT substr(md5(:'tag' || g), 1, 32) || '0000',
       CASE WHEN g % 100 = 0 THEN 'revoked' ELSE 'good' END,
       CASE WHEN g % 100 = 0 THEN now() - interval '1 hour' END,
       CASE WHEN g % 100 = 0 THEN 1 END,
       '00112233aabbccdd', (g / 100) % 16, now() + interval '10 days' + (g % 80) * interval '1 day'
FROM generate_series(1, :n) g;
INSERT INTO key_hash_to_serial (key_hash, serial, not_after)
SELECT md5(g::text || :'tag') || md5(:'tag' || g::text), substr(md5(:'tag' || g), 1, 32) || '0000',
       now() + interval '10 days' + (g % 80) * interval '1 day'
FROM generate_series(1, :n) g;
INSERT INTO issued_names (reversed_name, issued, serial)
SELECT 'example.load.' || :'tag' || '.h' || g, now() - (g % 80) * interval '1 day',
       substr(md5(:'tag' || g), 1, 32) || '0000'
FROM generate_series(1, :n) g;
INSERT INTO fqdn_sets (set_hash, serial, issued, expires)
SELECT encode(sha256(convert_to('h' || g || '.' || :'tag' || '.load.example', 'UTF8')), 'hex'),
       substr(md5(:'tag' || g), 1, 32) || '0000', now() - (g % 80) * interval '1 day',
       now() + interval '10 days' + (g % 80) * interval '1 day'
FROM generate_series(1, :n) g;
COMMIT;

SELECT setval('orders_id_seq', (SELECT max(id) FROM orders)) \gset
SELECT setval('authzs_id_seq', (SELECT max(id) FROM authzs)) \gset
SELECT setval('challenges_id_seq', (SELECT max(id) FROM challenges)) \gset
ANALYZE;
SQL
echo "sa-loaddata: $n orders and certificates (tag $tag) loaded in $((SECONDS - start))s"
echo "LOAD_TAG=$tag"
