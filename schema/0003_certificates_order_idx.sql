-- 0003_certificates_order_idx.sql: find the certificate of an order
-- (sa.get_certificates with order_id, used to finish orders left in
-- processing by a crash).
CREATE INDEX certificates_order_idx ON certificates (order_id);
