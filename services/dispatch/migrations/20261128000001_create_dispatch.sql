-- Dispatch (案件调度): cases and everything done about them, the trail (留痕) and the
-- event feed (outbox). Each entity keeps the columns queries filter and sort on, and the
-- rest of its record in `doc` (a serde document of the service's domain type).

-- The event feed's sequence. A bigserial can leave gaps when a transaction rolls back;
-- consumers rely on "no gaps" to tell a lost event from none, so the next number is taken
-- from this one row inside the writing transaction: the row lock is held until commit, so
-- numbers are handed out, and become visible, strictly in order.
CREATE TABLE event_counter (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    last bigint NOT NULL
);
INSERT INTO event_counter (singleton, last) VALUES (true, 0);

CREATE TABLE cases (
    id uuid PRIMARY KEY,
    street_id text NOT NULL,
    channel text NOT NULL,
    -- The channel's own ticket number; unique per channel when set.
    source_reference text,
    category text NOT NULL,
    urgency text NOT NULL,
    state text NOT NULL,
    overdue boolean NOT NULL DEFAULT false,
    -- Lower-cased title, description, address and category, for CaseFilter.query.
    search_text text NOT NULL,
    latitude double precision,
    longitude double precision,
    -- AES-256-GCM: 12-byte nonce, then ciphertext and tag of the reporter (诉求人) record.
    reporter_sealed bytea NOT NULL,
    doc jsonb NOT NULL,
    -- The trail's head: its length and the last entry's hash.
    trail_length bigint NOT NULL DEFAULT 0,
    trail_head text NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    closed_at timestamptz,
    CONSTRAINT cases_source_reference_key UNIQUE (channel, source_reference)
);
CREATE INDEX cases_street_created ON cases (street_id, created_at DESC, id DESC);
CREATE INDEX cases_created ON cases (created_at DESC, id DESC);
CREATE INDEX cases_repeats ON cases (street_id, category);

-- Repeat links (重复诉求), stored in both directions.
CREATE TABLE case_links (
    case_id uuid NOT NULL REFERENCES cases (id),
    related_case_id uuid NOT NULL REFERENCES cases (id),
    created_at timestamptz NOT NULL,
    PRIMARY KEY (case_id, related_case_id)
);

CREATE TABLE calls (
    id uuid PRIMARY KEY,
    case_id uuid NOT NULL REFERENCES cases (id),
    street_id text NOT NULL,
    department_id text NOT NULL,
    state text NOT NULL,
    sign_deadline timestamptz NOT NULL,
    report_time timestamptz NOT NULL,
    check_in_close_time timestamptz NOT NULL,
    check_in_closed boolean NOT NULL DEFAULT false,
    contact_shared boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL,
    doc jsonb NOT NULL
);
CREATE INDEX calls_case ON calls (case_id, created_at);
CREATE INDEX calls_department ON calls (department_id, created_at DESC);

-- The people a department named for a call (拟定人选) and their check-in (报到).
CREATE TABLE designations (
    call_id uuid NOT NULL REFERENCES calls (id),
    person_id text NOT NULL,
    position integer NOT NULL,
    check_in_status text NOT NULL,
    doc jsonb NOT NULL,
    PRIMARY KEY (call_id, person_id)
);
CREATE INDEX designations_person ON designations (person_id);

CREATE TABLE consultations (
    id uuid PRIMARY KEY,
    case_id uuid NOT NULL REFERENCES cases (id),
    created_at timestamptz NOT NULL,
    doc jsonb NOT NULL
);
CREATE INDEX consultations_case ON consultations (case_id, created_at);

CREATE TABLE tasks (
    id uuid PRIMARY KEY,
    case_id uuid NOT NULL REFERENCES cases (id),
    call_id uuid NOT NULL REFERENCES calls (id),
    department_id text NOT NULL,
    kind text NOT NULL,
    state text NOT NULL,
    overdue boolean NOT NULL DEFAULT false,
    window_end timestamptz NOT NULL,
    created_at timestamptz NOT NULL,
    doc jsonb NOT NULL
);
CREATE INDEX tasks_case ON tasks (case_id);
CREATE INDEX tasks_window ON tasks (window_end, id);

CREATE TABLE progress_reports (
    id uuid PRIMARY KEY,
    task_id uuid NOT NULL REFERENCES tasks (id),
    created_at timestamptz NOT NULL,
    doc jsonb NOT NULL
);
CREATE INDEX progress_reports_task ON progress_reports (task_id, created_at);

CREATE TABLE feedback (
    id uuid PRIMARY KEY,
    task_id uuid NOT NULL REFERENCES tasks (id),
    case_id uuid NOT NULL REFERENCES cases (id),
    state text NOT NULL,
    created_at timestamptz NOT NULL,
    doc jsonb NOT NULL
);
CREATE INDEX feedback_task ON feedback (task_id, created_at);

-- The case report (办理报告): one per case.
CREATE TABLE case_reports (
    case_id uuid PRIMARY KEY REFERENCES cases (id),
    created_at timestamptz NOT NULL,
    doc jsonb NOT NULL
);

CREATE TABLE callbacks (
    id uuid PRIMARY KEY,
    case_id uuid NOT NULL REFERENCES cases (id),
    created_at timestamptz NOT NULL,
    doc jsonb NOT NULL
);
CREATE INDEX callbacks_case ON callbacks (case_id, created_at);

-- Ratings (评价); a re-rating supersedes the previous one, which stays as history.
CREATE TABLE ratings (
    id uuid PRIMARY KEY,
    case_id uuid NOT NULL REFERENCES cases (id),
    street_id text NOT NULL,
    department_id text NOT NULL,
    current boolean NOT NULL,
    created_at timestamptz NOT NULL,
    doc jsonb NOT NULL
);
-- 一事一评: at most one current rating per department per case, whatever the races.
CREATE UNIQUE INDEX ratings_one_current ON ratings (case_id, department_id) WHERE current;

CREATE TABLE rectifications (
    id uuid PRIMARY KEY,
    case_id uuid NOT NULL REFERENCES cases (id),
    department_id text NOT NULL,
    state text NOT NULL,
    overdue boolean NOT NULL DEFAULT false,
    due_time timestamptz NOT NULL,
    created_at timestamptz NOT NULL,
    doc jsonb NOT NULL
);
CREATE INDEX rectifications_case ON rectifications (case_id);

-- Attachments (附件): metadata here, content apart so listing never reads the bytes.
CREATE TABLE attachments (
    id uuid PRIMARY KEY,
    -- NULL while staged (uploaded before the intake that references it).
    case_id uuid REFERENCES cases (id),
    -- Given at intake (shown on the case) rather than with progress, feedback or a report.
    intake boolean NOT NULL DEFAULT false,
    uploaded_by text NOT NULL,
    file_name text NOT NULL,
    content_type text NOT NULL,
    size_bytes bigint NOT NULL,
    sha256 text NOT NULL,
    created_at timestamptz NOT NULL,
    expire_at timestamptz,
    doc jsonb NOT NULL
);
CREATE INDEX attachments_case ON attachments (case_id);

CREATE TABLE attachment_contents (
    attachment_id uuid PRIMARY KEY REFERENCES attachments (id),
    content bytea NOT NULL
);

-- The trail (留痕). before/after/actor are kept as the exact canonical JSON text that was
-- hashed: jsonb would reorder keys and the hash could no longer be recomputed.
CREATE TABLE trail_entries (
    case_id uuid NOT NULL REFERENCES cases (id),
    sequence bigint NOT NULL,
    event_type text NOT NULL,
    event_sequence bigint NOT NULL,
    actor_json text NOT NULL,
    occur_time timestamptz NOT NULL,
    before_json text NOT NULL,
    after_json text NOT NULL,
    prev_hash text NOT NULL,
    hash text NOT NULL,
    PRIMARY KEY (case_id, sequence)
);

-- The event feed (outbox), written in the same transaction as the change and its trail
-- entry. `payload` is the encoded event details; reporters' personal data never enters.
CREATE TABLE events (
    sequence bigint PRIMARY KEY,
    event_type text NOT NULL,
    case_id uuid NOT NULL REFERENCES cases (id),
    street_id text NOT NULL,
    call_id text NOT NULL,
    department_id text NOT NULL,
    occur_time timestamptz NOT NULL,
    actor_json text NOT NULL,
    case_state text NOT NULL,
    trail_sequence bigint NOT NULL,
    trail_hash text NOT NULL,
    payload bytea NOT NULL
);
CREATE INDEX events_case ON events (case_id, sequence);
