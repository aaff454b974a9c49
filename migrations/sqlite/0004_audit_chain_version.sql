-- How each audit row's hash was computed: 1 = sha256(prev ‖ row), as rekey wrote before this
-- migration (existing rows); 2 = HMAC-SHA256 under the chain key derived from the installation
-- key. New rows are written with 2.
ALTER TABLE audit_events ADD COLUMN chain BIGINT NOT NULL DEFAULT 1;
