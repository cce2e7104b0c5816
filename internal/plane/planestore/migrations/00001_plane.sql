-- +goose Up
-- The vendor plane's schema, portable between SQLite and PostgreSQL: times
-- are Unix milliseconds, booleans INTEGER 0/1, keys and hashes TEXT.

-- A license the vendor issued. Only the SHA-256 of its activation token is
-- kept, so a database leak cannot activate anything.
CREATE TABLE plane_licenses (
    id                TEXT PRIMARY KEY,
    customer          TEXT    NOT NULL,
    issued_at         BIGINT  NOT NULL,
    expires_at        BIGINT  NOT NULL,
    grace_seconds     BIGINT  NOT NULL,
    channels          TEXT    NOT NULL,            -- comma-separated
    entitlements      TEXT    NOT NULL DEFAULT '{}', -- JSON object
    token_hash        TEXT    NOT NULL UNIQUE,     -- hex SHA-256 of the activation token
    activated_install TEXT,                        -- set once; a token activates one install
    created_at        BIGINT  NOT NULL
);

CREATE TABLE plane_installs (
    id                 TEXT PRIMARY KEY,
    license_id         TEXT    NOT NULL REFERENCES plane_licenses (id),
    public_key         TEXT    NOT NULL,           -- base64 Ed25519 public key
    agent_version      TEXT    NOT NULL DEFAULT '',
    revoked_at         BIGINT,
    first_seen_at      BIGINT  NOT NULL,
    last_seen_at       BIGINT  NOT NULL,           -- last heartbeat (or activation)
    heartbeats         BIGINT  NOT NULL DEFAULT 0, -- sequence of the last history row
    interval_seconds   BIGINT  NOT NULL,
    -- Derived from the last heartbeat so the fleet view needs no JSON parsing.
    version            TEXT    NOT NULL DEFAULT '',
    channel            TEXT    NOT NULL DEFAULT '',
    health             TEXT    NOT NULL DEFAULT 'unknown',
    prev_health        TEXT    NOT NULL DEFAULT 'unknown', -- health before the last heartbeat
    license_state      TEXT    NOT NULL DEFAULT '',
    last_heartbeat     TEXT    NOT NULL DEFAULT '', -- the validated wire.Heartbeat JSON
    stale              INTEGER NOT NULL DEFAULT 0   -- 1 once flagged stale (alert sent once)
);
CREATE INDEX plane_installs_license ON plane_installs (license_id);

-- Heartbeat history, bounded per install by pruning old sequence numbers.
CREATE TABLE plane_heartbeats (
    install_id  TEXT    NOT NULL REFERENCES plane_installs (id),
    seq         BIGINT  NOT NULL,
    at          BIGINT  NOT NULL,
    version     TEXT    NOT NULL,
    health      TEXT    NOT NULL,
    body        TEXT    NOT NULL,
    PRIMARY KEY (install_id, seq)
);

-- Request nonces, kept past the signing window so a restart cannot reopen
-- the replay window.
CREATE TABLE plane_nonces (
    install_id  TEXT    NOT NULL,
    nonce       TEXT    NOT NULL,
    expires_at  BIGINT  NOT NULL,
    PRIMARY KEY (install_id, nonce)
);
CREATE INDEX plane_nonces_expiry ON plane_nonces (expires_at);

-- Opt-in usage telemetry: the last report per install per UTC day.
CREATE TABLE plane_telemetry (
    install_id  TEXT    NOT NULL REFERENCES plane_installs (id),
    day         TEXT    NOT NULL,                  -- YYYY-MM-DD (UTC)
    body        TEXT    NOT NULL,
    received_at BIGINT  NOT NULL,
    reports     BIGINT  NOT NULL DEFAULT 1,
    PRIMARY KEY (install_id, day)
);

CREATE TABLE plane_diagnostics (
    id            TEXT PRIMARY KEY,
    install_id    TEXT    NOT NULL REFERENCES plane_installs (id),
    reason        TEXT    NOT NULL,
    status        TEXT    NOT NULL,                -- requested | uploaded
    requested_at  BIGINT  NOT NULL,
    uploaded_at   BIGINT,
    bundle_size   BIGINT  NOT NULL DEFAULT 0,
    bundle_sha256 TEXT    NOT NULL DEFAULT '',
    bundle_path   TEXT    NOT NULL DEFAULT ''      -- file name under <data-dir>/bundles
);
CREATE INDEX plane_diagnostics_install ON plane_diagnostics (install_id, status);

-- The alert outbox: one row per transition, delivered (with retries) by the
-- alerter, so a transition is announced once even across restarts.
CREATE TABLE plane_alerts (
    id              TEXT PRIMARY KEY,
    install_id      TEXT    NOT NULL,
    kind            TEXT    NOT NULL,              -- stale | health
    value           TEXT    NOT NULL,              -- the new health, or "stale"
    created_at      BIGINT  NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT  NOT NULL,
    sent_at         BIGINT,
    failed_at       BIGINT,                        -- set when retries were exhausted
    last_error      TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX plane_alerts_due ON plane_alerts (sent_at, failed_at, next_attempt_at);
