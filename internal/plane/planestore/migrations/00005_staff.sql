-- +goose Up
-- Vendor staff, automation tokens and the audit log. Additive, so the
-- previous release still runs on this schema (its sessions are the admin
-- token's, which staff_id NULL means).

-- A member of the vendor's staff, known by the identity provider's issuer
-- and subject: the subject never changes or moves to another person, an
-- e-mail address can.
CREATE TABLE plane_staff (
    id            TEXT   PRIMARY KEY,
    issuer        TEXT   NOT NULL,
    subject       TEXT   NOT NULL,
    name          TEXT   NOT NULL,
    role          TEXT   NOT NULL,
    created_at    BIGINT NOT NULL,
    last_login_at BIGINT,
    UNIQUE (issuer, subject)
);

-- An automation token. Only the SHA-256 of its secret is kept.
CREATE TABLE plane_tokens (
    id           TEXT   PRIMARY KEY,
    name         TEXT   NOT NULL,
    role         TEXT   NOT NULL,
    secret_hash  TEXT   NOT NULL UNIQUE,
    created_at   BIGINT NOT NULL,
    created_by   TEXT   NOT NULL,
    expires_at   BIGINT,
    revoked_at   BIGINT,
    last_used_at BIGINT
);

-- The staff member a dashboard session belongs to; NULL is a session
-- opened with the admin token.
ALTER TABLE plane_sessions ADD COLUMN staff_id TEXT;

-- Every staff action, appended and never changed.
CREATE TABLE plane_audit (
    id         TEXT   PRIMARY KEY,
    at         BIGINT NOT NULL,
    actor_kind TEXT   NOT NULL,
    actor_id   TEXT   NOT NULL,
    actor_name TEXT   NOT NULL,
    actor_role TEXT   NOT NULL,
    action     TEXT   NOT NULL,
    customer   TEXT   NOT NULL,
    install_id TEXT   NOT NULL,
    target     TEXT   NOT NULL,
    reason     TEXT   NOT NULL
);
CREATE INDEX plane_audit_at ON plane_audit (at);
