-- The baselines' tables: what one intake writes, without Minhu around it.
DROP TABLE IF EXISTS bench_rows, bench_cases;
-- A case row with three indexes (primary key, street+time, channel+reference), like `cases`.
CREATE TABLE bench_cases (
    id uuid PRIMARY KEY,
    street_id text NOT NULL,
    channel text NOT NULL,
    source_reference text,
    doc jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX bench_cases_street ON bench_cases (street_id, created_at DESC, id DESC);
CREATE UNIQUE INDEX bench_cases_reference ON bench_cases (channel, source_reference);
-- A department row of a call (三个部门), with its index.
CREATE TABLE bench_rows (
    id uuid PRIMARY KEY,
    case_id uuid NOT NULL REFERENCES bench_cases (id),
    department_id text NOT NULL,
    sign_deadline timestamptz NOT NULL
);
CREATE INDEX bench_rows_case ON bench_rows (case_id);
-- Rows to read by primary key.
DROP TABLE IF EXISTS bench_read;
CREATE TABLE bench_read (id integer PRIMARY KEY, doc jsonb NOT NULL);
INSERT INTO bench_read SELECT i, jsonb_build_object('title', '水泵房', 'n', i) FROM generate_series(1, 100000) AS i;
ANALYZE bench_read;
