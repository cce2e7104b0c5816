-- +goose Up
-- The highest egress-ledger head each install's heartbeats reported
-- (wire.LedgerHead), and the first evidence that its ledger went back or was
-- rewritten. Additive, with defaults, so the previous release still runs on
-- this schema.
ALTER TABLE plane_installs ADD COLUMN ledger_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE plane_installs ADD COLUMN ledger_sha256 TEXT NOT NULL DEFAULT ''; -- '' until a head is reported
ALTER TABLE plane_installs ADD COLUMN ledger_problem TEXT NOT NULL DEFAULT ''; -- '' while every head followed the last
ALTER TABLE plane_installs ADD COLUMN ledger_problem_at BIGINT;
