-- +goose Up
-- Only in the upgrade tests' second release (build tag upgradetest_v2): an
-- expand-only change, a nullable column older binaries never name.
ALTER TABLE documents ADD COLUMN upgradetest_note TEXT;

-- +goose Down
ALTER TABLE documents DROP COLUMN upgradetest_note;
