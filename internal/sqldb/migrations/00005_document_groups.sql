-- +goose Up
-- The groups a document is shared with (DOCSVC_OIDC_SHARED_GROUPS): those of
-- the configured shared groups its uploader's token listed at upload, each
-- stored as "<issuer> <group>". Expand only: an older binary neither reads
-- nor writes it, and shows each document to its owner alone.
CREATE TABLE document_groups (
    document_id TEXT NOT NULL,
    grp         TEXT NOT NULL,
    PRIMARY KEY (document_id, grp)
);
CREATE INDEX document_groups_grp ON document_groups (grp, document_id);

-- +goose Down
DROP TABLE document_groups;
