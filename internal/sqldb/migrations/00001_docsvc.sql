-- +goose Up
-- The document service's first schema. Portable between SQLite and
-- PostgreSQL: times are Unix milliseconds, booleans are INTEGER 0/1.

CREATE TABLE documents (
    id          TEXT PRIMARY KEY,
    status      TEXT    NOT NULL,            -- queued | processing | succeeded | failed
    filename    TEXT    NOT NULL DEFAULT '', -- shown to the owner only; never logged
    media_type  TEXT    NOT NULL,
    size_bytes  BIGINT  NOT NULL,
    blob_key    TEXT    NOT NULL,
    error       TEXT    NOT NULL DEFAULT '',
    attempts    INTEGER NOT NULL DEFAULT 0,
    enqueued    INTEGER NOT NULL DEFAULT 0,  -- 1 once the job message was sent (outbox)
    owner       TEXT    NOT NULL DEFAULT '',
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL
);
CREATE INDEX documents_created ON documents (created_at DESC, id DESC);
CREATE INDEX documents_status ON documents (status, enqueued);

CREATE TABLE results (
    document_id TEXT PRIMARY KEY REFERENCES documents (id) ON DELETE CASCADE,
    text        TEXT    NOT NULL,
    summary     TEXT    NOT NULL,
    keywords    TEXT    NOT NULL,            -- JSON array of strings
    pages       INTEGER NOT NULL,
    provider    TEXT    NOT NULL,
    model       TEXT    NOT NULL DEFAULT '',
    created_at  BIGINT  NOT NULL
);

CREATE TABLE api_tokens (
    id          TEXT PRIMARY KEY,
    name        TEXT    NOT NULL,
    hash        TEXT    NOT NULL UNIQUE,     -- hex SHA-256 of the secret part
    created_at  BIGINT  NOT NULL,
    revoked_at  BIGINT
);

-- The durable job queue of the embedded default (SQS semantics).
CREATE TABLE jobs (
    id            TEXT PRIMARY KEY,
    queue         TEXT    NOT NULL,
    body          TEXT    NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0,
    visible_at    BIGINT  NOT NULL,
    receipt       TEXT    NOT NULL DEFAULT '',
    created_at    BIGINT  NOT NULL,
    dead_at       BIGINT                     -- set when moved to the dead-letter queue
);
CREATE INDEX jobs_ready ON jobs (queue, dead_at, visible_at);

-- +goose Down
-- Down migrations are never run in production (rollback relies on
-- expand/contract); these exist for tests only.
DROP TABLE jobs;
DROP TABLE api_tokens;
DROP TABLE results;
DROP TABLE documents;
