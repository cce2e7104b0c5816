-- +goose Up
-- State the plane's replicas share so any of them can answer any request:
-- dashboard sessions, short leases (one replica re-signs release metadata
-- at a time) and rate-limit counters. Additive, so the previous release
-- still runs on this schema.

-- A dashboard login. Only the SHA-256 of the cookie is kept, so a database
-- leak yields no usable session.
CREATE TABLE plane_sessions (
    id_hash    TEXT   PRIMARY KEY, -- hex SHA-256 of the session cookie value
    expires_at BIGINT NOT NULL
);

-- A named lease held by one replica until expires_at; renewed while the
-- work runs, taken over by another replica once it expires.
CREATE TABLE plane_leases (
    name       TEXT   PRIMARY KEY,
    holder     TEXT   NOT NULL,
    expires_at BIGINT NOT NULL
);

-- Fixed-window counters: count events of bucket since window_start.
CREATE TABLE plane_rate_limits (
    bucket       TEXT   PRIMARY KEY,
    window_start BIGINT NOT NULL,
    count        BIGINT NOT NULL
);
