-- Coffer schema version 3: values every gateway must share and that the root key cannot
-- seal because it is derived from them, or that are sealed by it: the Argon2id salt of a
-- passphrase-derived root key (not secret), and the root credentials (sealed by the root key).
-- Each row is written once, by the first gateway, and read by every later one.
CREATE TABLE gateway_settings (
    name text COLLATE "C" PRIMARY KEY,
    value text NOT NULL,
    created_ms bigint NOT NULL
);
