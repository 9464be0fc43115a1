-- Coffer schema version 2: the embedded KMS's keystore, the service master key ring and the
-- root-key check, shared by every gateway (docs/kms.md, "The PostgreSQL keystore"). Every
-- secret here was sealed by the root key before it reached PostgreSQL; the root key itself
-- never does. Plain SQL only (no extensions): YugabyteDB's PostgreSQL dialect runs it too.

-- Revisions of keystore records and of the service key ring. One sequence for all, so a
-- revision is never handed out twice: a record deleted and created again cannot be swapped by
-- a writer still holding the old one's revision.
CREATE SEQUENCE kms_revision_seq;

-- One row per KMS record: a key under its key id, an alias under `alias/…`. `record` is the
-- record's serde JSON (secrets in it are sealed); NULL marks a deleted record (a tombstone with
-- a fresh revision, so that a reader polling for revisions above a mark sees deletes too).
CREATE TABLE kms_keys (
    id text COLLATE "C" PRIMARY KEY,
    revision bigint NOT NULL,
    record text
);
CREATE INDEX kms_keys_by_revision ON kms_keys (revision);

-- The KMS audit log: one JSON line per call, in append order.
CREATE TABLE kms_audit (
    seq bigserial PRIMARY KEY,
    at_ms bigint NOT NULL,
    line text NOT NULL
);

-- The service master key ring (SSE-S3 / SSE-OSS): the same JSON document as
-- `<data-dir>/service-keys.json`, one row, swapped whole by revision.
CREATE TABLE service_keys (
    name text COLLATE "C" PRIMARY KEY,
    revision bigint NOT NULL,
    document text NOT NULL
);

-- A random value sealed by the root key of the first gateway that used this database: a
-- gateway whose root key does not open it refuses to start.
CREATE TABLE kms_root_check (
    name text COLLATE "C" PRIMARY KEY,
    sealed text NOT NULL,
    created_ms bigint NOT NULL
);
