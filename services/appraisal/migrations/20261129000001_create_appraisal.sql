-- Appraisal (绩效考评). Two kinds of tables:
-- * derived from dispatch's event feed (feed_cursor, consumed_events, call_records,
--   task_records, rating_records, rating_history, incidents): rebuilt by replay;
-- * owned here (periods, period_scores, annual_weights, referrals, referral_recipients,
--   referral_evidence): never touched by a rebuild.

-- The consumer's cursor: the last event applied. One row; advanced in the same
-- transaction as each event's effect, so every event takes effect exactly once.
CREATE TABLE feed_cursor (
    id              boolean PRIMARY KEY DEFAULT true CHECK (id),
    last_sequence   bigint NOT NULL,
    last_event_time timestamptz,
    last_apply_time timestamptz
);
INSERT INTO feed_cursor (id, last_sequence) VALUES (true, 0);

-- Every event consumed, reduced to what KPIs and evidence checks need.
CREATE TABLE consumed_events (
    sequence       bigint PRIMARY KEY,
    event_type     text NOT NULL,
    case_id        text NOT NULL,
    street_id      text NOT NULL,
    call_id        text NOT NULL,
    department_id  text NOT NULL,
    person_id      text NOT NULL,
    -- decline reason, task kind, 'ALONE' for a case solved by the street alone
    qualifier      text NOT NULL,
    -- sign duration in milliseconds, shortfall count
    amount         bigint NOT NULL,
    occur_time     timestamptz NOT NULL,
    trail_sequence bigint NOT NULL,
    trail_hash     text NOT NULL
);
CREATE INDEX consumed_events_trail ON consumed_events (case_id, trail_sequence);
CREATE INDEX consumed_events_time ON consumed_events (occur_time);

-- One row per call (a call goes to exactly one department): the unit every response and
-- completion figure counts.
CREATE TABLE call_records (
    call_id              text PRIMARY KEY,
    case_id              text NOT NULL,
    street_id            text NOT NULL,
    department_id        text NOT NULL,
    start_time           timestamptz NOT NULL,
    withdrawn            boolean NOT NULL DEFAULT false,
    sign_deadline        timestamptz,
    -- UNSIGNED, ON_TIME, LATE
    sign_state           text NOT NULL DEFAULT 'UNSIGNED',
    sign_overdue         boolean NOT NULL DEFAULT false,
    sign_lateness_secs   bigint NOT NULL DEFAULT 0,
    check_in_closed      boolean NOT NULL DEFAULT false,
    on_time_count        integer NOT NULL DEFAULT 0,
    late_count           integer NOT NULL DEFAULT 0,
    absent_count         integer NOT NULL DEFAULT 0,
    shortfall_count      integer NOT NULL DEFAULT 0,
    inaction_count       integer NOT NULL DEFAULT 0,
    -- PENDING, RESPONDED, NOT_SIGNED, SIGNED_LATE, CHECK_IN_ABSENT, CHECK_IN_LATE
    response_outcome     text NOT NULL DEFAULT 'PENDING',
    response_sequences   bigint[] NOT NULL DEFAULT '{}',
    -- PENDING, ON_TIME, LATE, NOT_COMPLETED
    completion_outcome   text NOT NULL DEFAULT 'PENDING',
    completion_sequences bigint[] NOT NULL DEFAULT '{}',
    update_time          timestamptz NOT NULL
);
CREATE INDEX call_records_period ON call_records (start_time, department_id);
CREATE INDEX call_records_case ON call_records (case_id, department_id);
-- The drill-down: one department's records, newest first.
CREATE INDEX call_records_department ON call_records (department_id, start_time DESC, call_id DESC);

-- Regular tasks (rectification tasks do not count for completion).
CREATE TABLE task_records (
    task_id    text PRIMARY KEY,
    call_id    text NOT NULL,
    -- OPEN, ON_TIME, LATE
    state      text NOT NULL DEFAULT 'OPEN',
    overdue    boolean NOT NULL DEFAULT false
);
CREATE INDEX task_records_call ON task_records (call_id);

-- One row per (case, department): the current rating (一事一评; a re-rating replaces it).
CREATE TABLE rating_records (
    case_id             text NOT NULL,
    department_id       text NOT NULL,
    street_id           text NOT NULL,
    first_call_id       text NOT NULL,
    -- the department's first call's CALL_STARTED time: the period it counts in
    start_time          timestamptz NOT NULL,
    rating_id           text NOT NULL DEFAULT '',
    -- PENDING, SATISFIED, BASICALLY_SATISFIED, DISSATISFIED
    satisfaction        text NOT NULL DEFAULT 'PENDING',
    rectification_count integer NOT NULL DEFAULT 0,
    sequences           bigint[] NOT NULL DEFAULT '{}',
    update_time         timestamptz NOT NULL,
    PRIMARY KEY (case_id, department_id)
);
CREATE INDEX rating_records_period ON rating_records (start_time, department_id);
CREATE INDEX rating_records_department ON rating_records (department_id, start_time DESC);

-- Every rating given, replaced ones included.
CREATE TABLE rating_history (
    rating_id            text PRIMARY KEY,
    case_id              text NOT NULL,
    department_id        text NOT NULL,
    satisfaction         text NOT NULL,
    supersedes_rating_id text NOT NULL,
    sequence             bigint NOT NULL,
    occur_time           timestamptz NOT NULL
);

-- Non-performance occurrences (不到位、慢到位、到位不作为) for referral suggestions;
-- person_id empty for department-level ones (sign overdue, shortfall, task overdue).
CREATE TABLE incidents (
    sequence       bigint PRIMARY KEY,
    kind           text NOT NULL,
    case_id        text NOT NULL,
    call_id        text NOT NULL,
    street_id      text NOT NULL,
    department_id  text NOT NULL,
    person_id      text NOT NULL,
    occur_time     timestamptz NOT NULL,
    trail_sequence bigint NOT NULL,
    trail_hash     text NOT NULL
);
CREATE INDEX incidents_pattern ON incidents (kind, department_id, person_id, occur_time);

CREATE TABLE periods (
    id            uuid PRIMARY KEY,
    name          text NOT NULL,
    kind          text NOT NULL,
    start_time    timestamptz NOT NULL,
    end_time      timestamptz NOT NULL,
    response_bp   integer NOT NULL,
    completion_bp integer NOT NULL,
    satisfaction_bp integer NOT NULL,
    closed        boolean NOT NULL DEFAULT false,
    create_time   timestamptz NOT NULL,
    update_time   timestamptz NOT NULL,
    close_time    timestamptz,
    -- the cursor when closed: the frozen figures' as_of_sequence
    frozen_sequence bigint
);
CREATE INDEX periods_start ON periods (start_time DESC, id);

-- Figures of closed periods as they stood at closing, per street ('' = all streets).
CREATE TABLE period_scores (
    period_id     uuid NOT NULL REFERENCES periods (id),
    street_id     text NOT NULL,
    department_id text NOT NULL,
    counts        jsonb NOT NULL,
    PRIMARY KEY (period_id, street_id, department_id)
);

CREATE TABLE annual_weights (
    year        integer PRIMARY KEY,
    weight_bp   integer NOT NULL CHECK (weight_bp BETWEEN 3000 AND 10000),
    updated_by  jsonb NOT NULL,
    update_time timestamptz NOT NULL
);

CREATE TABLE referrals (
    id            uuid PRIMARY KEY,
    street_id     text NOT NULL,
    case_id       text NOT NULL,
    call_id       text NOT NULL,
    department_id text NOT NULL,
    person_ids    text[] NOT NULL,
    kind          text NOT NULL,
    facts         text NOT NULL,
    created_by    jsonb NOT NULL,
    create_time   timestamptz NOT NULL,
    update_time   timestamptz NOT NULL
);
CREATE INDEX referrals_newest ON referrals (create_time DESC, id DESC);

CREATE TABLE referral_recipients (
    referral_id  uuid NOT NULL REFERENCES referrals (id),
    recipient    text NOT NULL,
    -- SENT, RECEIVED, HANDLED
    state        text NOT NULL,
    receive_time timestamptz,
    handle_time  timestamptz,
    outcome      text NOT NULL DEFAULT '',
    handled_by   jsonb,
    PRIMARY KEY (referral_id, recipient)
);

CREATE TABLE referral_evidence (
    referral_id    uuid NOT NULL REFERENCES referrals (id),
    position       integer NOT NULL,
    case_id        text NOT NULL,
    trail_sequence bigint NOT NULL,
    trail_hash     text NOT NULL,
    event_sequence bigint NOT NULL,
    PRIMARY KEY (referral_id, position)
);
