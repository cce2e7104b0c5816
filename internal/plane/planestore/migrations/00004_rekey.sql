-- +goose Up
-- When an install last replaced its identity key (POST /v1/rekey); NULL
-- while it signs with the key it activated with. Additive, so the previous
-- release still runs on this schema.
ALTER TABLE plane_installs ADD COLUMN rekeyed_at BIGINT;
