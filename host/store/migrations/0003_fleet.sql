-- A fleet: several instances on one PostgreSQL database (the tables exist
-- in SQLite too, where one instance is the whole fleet and they stay empty).
--
-- Every guest version pushed anywhere, with its component: an instance
-- that starts later, or has never seen it, loads it from here.
CREATE TABLE guest_versions (
    digest TEXT PRIMARY KEY,
    component BYTEA NOT NULL,
    source TEXT NOT NULL,
    size BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

-- Activations, in order (`id` is taken as MAX + 1 under an advisory lock):
-- the newest row is the fleet's active version. `action` is `start` (the
-- first instance's own guest, on an empty table), `push`, `rollback` or
-- `auto-rollback`.
CREATE TABLE guest_activations (
    id BIGINT PRIMARY KEY,
    digest TEXT NOT NULL REFERENCES guest_versions (digest),
    action TEXT NOT NULL,
    instance TEXT NOT NULL,
    at BIGINT NOT NULL
);

-- What each instance serves: `digest` the version it runs, `target` the
-- fleet's active version it last tried, `state` loaded/failed/draining/
-- stopped, `error` why it failed.
CREATE TABLE guest_instances (
    instance TEXT PRIMARY KEY,
    digest TEXT,
    target TEXT,
    state TEXT NOT NULL,
    error TEXT,
    updated_at BIGINT NOT NULL
);

-- The instance that served the call (NULL for calls recorded before).
ALTER TABLE calls ADD COLUMN instance TEXT;
