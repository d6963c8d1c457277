-- Consultation (规划参与/决策建议). Each aggregate (plan, decision) is one row holding its
-- document (the domain type as JSON) beside the columns lists filter on; its opinions are
-- rows of their own. Every change appends a hash-chained trail entry and one event to the
-- outbox, in the change's transaction.

CREATE TABLE plans (
    id            uuid PRIMARY KEY,
    department_id text NOT NULL,
    street_ids    text[] NOT NULL,
    stage         text NOT NULL,
    kind          text NOT NULL,
    pending       boolean NOT NULL,
    create_time   timestamptz NOT NULL,
    doc           jsonb NOT NULL,
    trail_length  bigint NOT NULL DEFAULT 0,
    trail_head    text NOT NULL DEFAULT '0000000000000000000000000000000000000000000000000000000000000000'
);
CREATE INDEX plans_department ON plans (department_id, create_time DESC, id DESC);
CREATE INDEX plans_streets ON plans USING gin (street_ids);

CREATE TABLE plan_opinions (
    id          uuid PRIMARY KEY,
    plan_id     uuid NOT NULL REFERENCES plans (id),
    street_id   text NOT NULL,
    stage       text NOT NULL,
    create_time timestamptz NOT NULL,
    doc         jsonb NOT NULL
);
CREATE INDEX plan_opinions_plan ON plan_opinions (plan_id, create_time, id);

CREATE TABLE decisions (
    id            uuid PRIMARY KEY,
    department_id text NOT NULL,
    street_ids    text[] NOT NULL,
    state         text NOT NULL,
    kind          text NOT NULL,
    create_time   timestamptz NOT NULL,
    doc           jsonb NOT NULL,
    trail_length  bigint NOT NULL DEFAULT 0,
    trail_head    text NOT NULL DEFAULT '0000000000000000000000000000000000000000000000000000000000000000'
);
CREATE INDEX decisions_department ON decisions (department_id, create_time DESC, id DESC);
CREATE INDEX decisions_streets ON decisions USING gin (street_ids);

CREATE TABLE decision_opinions (
    id          uuid PRIMARY KEY,
    decision_id uuid NOT NULL REFERENCES decisions (id),
    street_id   text NOT NULL,
    answered    boolean NOT NULL,
    create_time timestamptz NOT NULL,
    doc         jsonb NOT NULL
);
CREATE INDEX decision_opinions_decision ON decision_opinions (decision_id, street_id, create_time, id);

-- Escalations (督办): a deadline passed; addressed to leaders and the district. About a
-- decision (a silent street, an unanswered item) or a plan (an unanswered item).
CREATE TABLE escalations (
    id            uuid PRIMARY KEY,
    kind          text NOT NULL,
    decision_id   uuid REFERENCES decisions (id),
    plan_id       uuid REFERENCES plans (id),
    department_id text NOT NULL,
    street_id     text NOT NULL,
    escalate_time timestamptz NOT NULL,
    doc           jsonb NOT NULL
);
CREATE INDEX escalations_time ON escalations (escalate_time, id);

-- The trail (留痕) of every plan and decision; subject_id is the aggregate's id.
CREATE TABLE trail_entries (
    subject_id     text NOT NULL,
    sequence       bigint NOT NULL,
    event_type     text NOT NULL,
    event_sequence bigint NOT NULL,
    actor_json     text NOT NULL,
    occur_time     timestamptz NOT NULL,
    before_json    text NOT NULL,
    after_json     text NOT NULL,
    prev_hash      text NOT NULL,
    hash           text NOT NULL,
    PRIMARY KEY (subject_id, sequence)
);

-- The outbox: gap-free sequence from event_counter (taken last in each transaction).
CREATE TABLE events (
    sequence      bigint PRIMARY KEY,
    event_type    text NOT NULL,
    subject_id    text NOT NULL,
    department_id text NOT NULL,
    street_ids    text[] NOT NULL,
    occur_time    timestamptz NOT NULL,
    payload       bytea NOT NULL
);

CREATE TABLE event_counter (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    last      bigint NOT NULL
);
INSERT INTO event_counter (singleton, last) VALUES (true, 0);
