-- +goose Up
-- Who asked for each diagnostics request (the principal's name and kind),
-- sent to the customer with the reason. Until now only the admin token
-- could ask, so that is who asked for the requests already here. Additive,
-- so the previous release still runs on this schema.
ALTER TABLE plane_diagnostics ADD COLUMN requested_by TEXT NOT NULL DEFAULT 'break-glass admin token';
ALTER TABLE plane_diagnostics ADD COLUMN requested_by_kind TEXT NOT NULL DEFAULT 'break-glass';
