-- As SQLite's schema 3: rep overrides (`tasksync reps away|back|capacity|quota`) and the record of
-- the card comments each plan's apply sent. One PostgreSQL store serves many teams, so an
-- override belongs to one (`team`: the board's key in cluster.toml, its config path); comments
-- are keyed by plan, and plan ids are unique across boards.
CREATE TABLE rep_overrides (
    team TEXT NOT NULL, rep_id TEXT NOT NULL, setting TEXT NOT NULL, value TEXT NOT NULL,
    until TEXT, set_at TEXT NOT NULL,
    PRIMARY KEY (team, rep_id, setting)
);
CREATE TABLE card_comments (
    plan_id TEXT NOT NULL, task_id TEXT NOT NULL, status TEXT NOT NULL, error TEXT,
    PRIMARY KEY (plan_id, task_id)
);
