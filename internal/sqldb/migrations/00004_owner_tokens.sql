-- +goose Up
-- Expand only (older binaries keep working on this schema): documents are
-- looked up by owner, now "user:<issuer> <subject>" for people (docsvc
-- migrate rewrites the older "oidc:<subject>" rows, see auth.MigrateOwners);
-- API tokens gain an optional expiry and a last-used time, so a token added
-- by `docsvc tokens add` can end by itself and an unused one can be found.
CREATE INDEX documents_owner ON documents (owner, created_at DESC, id DESC);
ALTER TABLE api_tokens ADD COLUMN expires_at BIGINT;
ALTER TABLE api_tokens ADD COLUMN last_used_at BIGINT;

-- +goose Down
ALTER TABLE api_tokens DROP COLUMN last_used_at;
ALTER TABLE api_tokens DROP COLUMN expires_at;
DROP INDEX documents_owner;
