-- 0006_orders_csr.sql: the CSR of an order being issued (base64url DER, as
-- the client sent it), kept while the order is processing so that crash
-- recovery can issue it again instead of failing the order (issue 19);
-- cleared when the order becomes valid or invalid.
ALTER TABLE orders ADD COLUMN csr text;
