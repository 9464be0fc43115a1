-- Coffer metadata, schema version 1. Mirrors the embedded store's tables (docs/metadata.md).
-- Records are JSON text (the records' serde form). Object keys are bytea: a key may hold
-- U+0000, which text cannot, and bytea compares bytewise, which is S3's listing order (the
-- order of text under COLLATE "C"). Names compared or sorted as text use COLLATE "C".
-- Plain SQL only (no extensions): YugabyteDB's PostgreSQL dialect runs it too.

CREATE TABLE buckets (
    name text COLLATE "C" PRIMARY KEY,
    record text NOT NULL
);

-- The current object of each key (the newest version, when it is an object).
CREATE TABLE objects (
    bucket text COLLATE "C" NOT NULL REFERENCES buckets (name),
    key bytea NOT NULL,
    record text NOT NULL,
    PRIMARY KEY (bucket, key)
);

-- Version numbers: higher is newer; a version id starts with its number in hex.
CREATE SEQUENCE version_seq;

-- Every other version: noncurrent objects and delete markers, newest (highest seq) first.
CREATE TABLE versions (
    bucket text COLLATE "C" NOT NULL REFERENCES buckets (name),
    key bytea NOT NULL,
    seq bigint NOT NULL,
    version_id text COLLATE "C",
    is_marker boolean NOT NULL,
    record text NOT NULL,
    PRIMARY KEY (bucket, key, seq)
);

CREATE TABLE uploads (
    upload_id text COLLATE "C" PRIMARY KEY,
    bucket text COLLATE "C" NOT NULL REFERENCES buckets (name),
    key bytea NOT NULL,
    record text NOT NULL
);
CREATE INDEX uploads_by_key ON uploads (bucket, key, upload_id);

CREATE TABLE parts (
    upload_id text COLLATE "C" NOT NULL REFERENCES uploads (upload_id),
    part_number bigint NOT NULL,
    record text NOT NULL,
    PRIMARY KEY (upload_id, part_number)
);

-- A blob is referenced by at most one record (object version or part).
CREATE TABLE blob_refs (
    blob text COLLATE "C" PRIMARY KEY
);

-- Blobs named but not referenced: being written, or released by a commit. The sweeper
-- deletes those older than its grace period, then their rows.
CREATE TABLE pending_blobs (
    blob text COLLATE "C" PRIMARY KEY,
    since_ms bigint NOT NULL
);
CREATE INDEX pending_blobs_by_age ON pending_blobs (since_ms);

CREATE TABLE users (
    name text COLLATE "C" PRIMARY KEY,
    record text NOT NULL
);

CREATE TABLE access_keys (
    access_key text COLLATE "C" PRIMARY KEY,
    user_name text COLLATE "C" NOT NULL REFERENCES users (name)
);
CREATE INDEX access_keys_by_user ON access_keys (user_name);
