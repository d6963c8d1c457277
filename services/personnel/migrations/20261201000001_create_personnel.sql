-- Personnel (人事任免建议). Ids of people, stations, streets and departments are the
-- roster's; nothing here is a copy of the roster except names at the time (for display) and
-- the leaders an escalation was addressed to. Enumerations are stored by their proto names.
-- People references (who signed, who decided) are jsonb {id, name, department_id, station_id}.

CREATE TABLE solicitations (
    id                uuid PRIMARY KEY,
    department_id     text NOT NULL,
    station_id        text NOT NULL,
    street_id         text NOT NULL,
    person_id         text NOT NULL,
    position          text NOT NULL,
    matter            text NOT NULL,
    proposal          text NOT NULL,
    attachments       jsonb NOT NULL DEFAULT '[]',
    reply_deadline    timestamptz NOT NULL,
    state             text NOT NULL,
    -- The street leaders an overdue reply is escalated to, per the roster when filed.
    escalate_to       text[] NOT NULL DEFAULT '{}',
    opinion_stance    text,
    opinion_text      text,
    opinion_signed_by jsonb,
    opinion_time      timestamptz,
    opinion_late      boolean NOT NULL DEFAULT false,
    decision          text,
    opinion_adopted   boolean NOT NULL DEFAULT false,
    decision_reason   text NOT NULL DEFAULT '',
    decided_by        jsonb,
    decide_time       timestamptz,
    withdraw_reason   text NOT NULL DEFAULT '',
    escalate_time     timestamptz,
    created_by        jsonb NOT NULL,
    create_time       timestamptz NOT NULL,
    update_time       timestamptz NOT NULL
);
CREATE INDEX solicitations_street ON solicitations (street_id, create_time DESC, id);
CREATE INDEX solicitations_department ON solicitations (department_id, create_time DESC, id);
CREATE INDEX solicitations_person ON solicitations (person_id, station_id);

-- Overdue replies escalated (逾期未回复督办), one per solicitation.
CREATE TABLE escalations (
    id              uuid PRIMARY KEY,
    solicitation_id uuid NOT NULL UNIQUE REFERENCES solicitations (id),
    street_id       text NOT NULL,
    department_id   text NOT NULL,
    recipients      text[] NOT NULL,
    reply_deadline  timestamptz NOT NULL,
    escalate_time   timestamptz NOT NULL
);
CREATE INDEX escalations_street ON escalations (street_id, escalate_time DESC, id);

-- Decisions departments report having taken, with their compliance verdict.
CREATE TABLE decision_reports (
    id              uuid PRIMARY KEY,
    department_id   text NOT NULL,
    station_id      text NOT NULL,
    street_id       text NOT NULL,
    person_id       text NOT NULL,
    position        text NOT NULL,
    matter          text NOT NULL,
    decision        text NOT NULL,
    solicitation_id uuid REFERENCES solicitations (id),
    finding         text,
    decided_by      jsonb NOT NULL,
    decide_time     timestamptz NOT NULL
);
CREATE INDEX decision_reports_person ON decision_reports (person_id, station_id);
CREATE INDEX decision_reports_time ON decision_reports (decide_time DESC, id);

-- The compliance report: append-only.
CREATE TABLE findings (
    id                 uuid PRIMARY KEY,
    kind               text NOT NULL,
    department_id      text NOT NULL,
    station_id         text NOT NULL,
    street_id          text NOT NULL,
    person_id          text NOT NULL,
    solicitation_id    uuid,
    decision_report_id uuid,
    interview_plan_id  uuid,
    change_sequence    bigint,
    description        text NOT NULL,
    detect_time        timestamptz NOT NULL
);
CREATE INDEX findings_time ON findings (detect_time DESC, id);
-- A roster change is flagged once, an overdue reply once.
CREATE UNIQUE INDEX findings_change ON findings (change_sequence) WHERE change_sequence IS NOT NULL;
CREATE UNIQUE INDEX findings_overdue ON findings (solicitation_id) WHERE kind = 'FINDING_KIND_REPLY_OVERDUE';

-- How far the roster's leadership history has been checked. One row.
CREATE TABLE roster_cursor (
    id            integer PRIMARY KEY CHECK (id = 1),
    last_sequence bigint NOT NULL
);
INSERT INTO roster_cursor (id, last_sequence) VALUES (1, 0);

CREATE TABLE interview_plans (
    id                  uuid PRIMARY KEY,
    department_id       text NOT NULL,
    station_id          text NOT NULL,
    street_id           text NOT NULL,
    candidate_person_id text NOT NULL,
    proposed_post       text NOT NULL,
    interviewees        jsonb NOT NULL,
    required            jsonb NOT NULL,
    held                jsonb NOT NULL DEFAULT '[]',
    note                text NOT NULL DEFAULT '',
    promotion_decision  text NOT NULL DEFAULT '',
    promotion_time      timestamptz,
    missing             text[] NOT NULL DEFAULT '{}',
    flagged             boolean NOT NULL DEFAULT false,
    created_by          jsonb NOT NULL,
    create_time         timestamptz NOT NULL
);
CREATE INDEX interview_plans_time ON interview_plans (create_time DESC, id);

CREATE TABLE secondee_evaluations (
    id             uuid PRIMARY KEY,
    secondment_id  text NOT NULL,
    person_id      text NOT NULL,
    street_id      text NOT NULL,
    department_id  text NOT NULL,
    kind           text NOT NULL,
    year           integer NOT NULL,
    month          integer NOT NULL,
    grade          text NOT NULL,
    grade_number   integer NOT NULL,
    comment        text NOT NULL,
    coefficient_bp integer NOT NULL,
    evaluated_by   jsonb NOT NULL,
    create_time    timestamptz NOT NULL,
    UNIQUE (secondment_id, kind, year, month)
);
CREATE INDEX secondee_evaluations_time ON secondee_evaluations (create_time DESC, id);

CREATE TABLE commendation_ratios (
    year        integer PRIMARY KEY,
    ratio_bp    integer NOT NULL CHECK (ratio_bp BETWEEN 0 AND 10000),
    update_time timestamptz NOT NULL
);

CREATE TABLE incentive_coefficients (
    year           integer NOT NULL,
    grade          integer NOT NULL,
    coefficient_bp integer NOT NULL CHECK (coefficient_bp BETWEEN 0 AND 100000),
    update_time    timestamptz NOT NULL,
    PRIMARY KEY (year, grade)
);

CREATE TABLE incentive_assessments (
    id             uuid PRIMARY KEY,
    street_id      text NOT NULL,
    year           integer NOT NULL,
    station_id     text NOT NULL DEFAULT '',
    person_id      text NOT NULL DEFAULT '',
    department_id  text NOT NULL,
    grade          text NOT NULL,
    comment        text NOT NULL,
    coefficient_bp integer NOT NULL,
    assessed_by    jsonb NOT NULL,
    create_time    timestamptz NOT NULL,
    CONSTRAINT incentive_one_subject CHECK ((station_id = '') <> (person_id = '')),
    UNIQUE (street_id, year, station_id, person_id)
);
CREATE INDEX incentive_assessments_time ON incentive_assessments (create_time DESC, id);

CREATE TABLE leave_applications (
    id               uuid PRIMARY KEY,
    person_id        text NOT NULL,
    secondment_id    text NOT NULL,
    street_id        text NOT NULL,
    department_id    text NOT NULL,
    start_date       date NOT NULL,
    end_date         date NOT NULL,
    year             integer NOT NULL,
    days             integer NOT NULL CHECK (days >= 1),
    reason           text NOT NULL,
    state            text NOT NULL,
    decided_by       jsonb,
    decision_comment text NOT NULL DEFAULT '',
    decide_time      timestamptz,
    created_by       jsonb NOT NULL,
    create_time      timestamptz NOT NULL,
    update_time      timestamptz NOT NULL,
    CHECK (end_date >= start_date)
);
CREATE INDEX leave_applications_person ON leave_applications (person_id, start_date DESC, id);
CREATE INDEX leave_applications_street ON leave_applications (street_id, start_date DESC, id);

CREATE TABLE leave_entitlements (
    person_id          text NOT NULL,
    year               integer NOT NULL,
    entitled_days      integer NOT NULL CHECK (entitled_days BETWEEN 0 AND 365),
    service_start_date date,
    update_time        timestamptz NOT NULL,
    PRIMARY KEY (person_id, year)
);
