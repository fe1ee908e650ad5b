-- The state store's schema, as in SQLite (src/tasksync/sync/state.py, schema 1). Values stay
-- JSON text and times ISO-8601 text so that both stores read and order them the same way.
-- plans.ord replaces SQLite's rowid as the insertion-order tie-break.
CREATE TABLE field_state (
    board TEXT NOT NULL, task_id TEXT NOT NULL, field TEXT NOT NULL,
    value TEXT, plan_id TEXT, written_at TEXT NOT NULL,
    owner TEXT NOT NULL DEFAULT 'tasksync',  -- 'person' once someone changed it by hand
    PRIMARY KEY (board, task_id, field)
);
CREATE TABLE plans (
    id TEXT PRIMARY KEY, board TEXT NOT NULL, kind TEXT NOT NULL, status TEXT NOT NULL,
    created_at TEXT NOT NULL, applied_at TEXT, base_fingerprint TEXT NOT NULL, body TEXT NOT NULL,
    ord BIGSERIAL NOT NULL
);
CREATE INDEX plans_board ON plans (board, created_at);
CREATE INDEX plans_board_status ON plans (board, status);
CREATE TABLE journal (
    plan_id TEXT NOT NULL, seq INTEGER NOT NULL, op TEXT NOT NULL,
    task_id TEXT, field TEXT, key TEXT, before TEXT, after TEXT,
    status TEXT NOT NULL, error TEXT, updated_at TEXT NOT NULL,
    PRIMARY KEY (plan_id, seq)
);
CREATE TABLE created (
    board TEXT NOT NULL, key TEXT NOT NULL, task_id TEXT NOT NULL, plan_id TEXT NOT NULL,
    PRIMARY KEY (board, key)
);
CREATE TABLE kv (
    board TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (board, key)
);
