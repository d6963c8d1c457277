-- Durable deadlines (minhu-deadlines). This row is the truth; the Redis sorted sets only
-- index it and are rebuilt from here on start and periodically. Added to a service's own
-- migrations by listing `minhu_deadlines::MIGRATOR` in `connect_and_migrate`.
CREATE TABLE minhu_deadlines (
    id              uuid        PRIMARY KEY,
    kind            text        NOT NULL,  -- which handler fires it, e.g. dispatch.sign
    subject         text        NOT NULL,  -- what it is about, e.g. a call id
    due_at          timestamptz NOT NULL,
    payload         jsonb       NOT NULL DEFAULT '{}',
    state           text        NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'fired', 'cancelled')),
    attempts        integer     NOT NULL DEFAULT 0,  -- firing attempts, failed ones included
    last_error      text,                            -- why the last failed attempt failed
    last_attempt_at timestamptz,                     -- with attempts, where the retry backoff resumes after a rebuild
    created_at      timestamptz NOT NULL,
    fired_at        timestamptz,
    cancelled_at    timestamptz
);

-- Serves firing re-checks and the keyset-paginated index rebuild (ORDER BY due_at, id);
-- partial, so fired and cancelled history costs the rebuild nothing.
CREATE INDEX minhu_deadlines_pending_due ON minhu_deadlines (due_at, id) WHERE state = 'pending';

-- One pending deadline per kind and subject: scheduling it again reschedules it.
CREATE UNIQUE INDEX minhu_deadlines_pending_kind_subject ON minhu_deadlines (kind, subject) WHERE state = 'pending';
