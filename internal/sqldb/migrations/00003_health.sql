-- +goose Up
-- Component health reported by each docsvc process (the worker reports the AI
-- provider's circuit state here so the api's /readyz can show it).
CREATE TABLE component_health (
    component   TEXT PRIMARY KEY,
    status      TEXT   NOT NULL,   -- ok | degraded | down
    detail      TEXT   NOT NULL DEFAULT '', -- an error class, never content
    updated_at  BIGINT NOT NULL
);

-- +goose Down
DROP TABLE component_health;
