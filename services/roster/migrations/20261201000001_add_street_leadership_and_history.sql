-- What personnel needs from the roster: who leads a street and in which lines of work
-- (谈话范围), its sections and the stations each works closely with, why a station head is
-- not on the Party Working Committee, and the history of station leadership changes,
-- written in the same transaction as the change, that personnel checks against decisions.

ALTER TABLE stations ADD COLUMN committee_note text NOT NULL DEFAULT '';

-- The lines of work (DEPARTMENT_KIND_*) a street leader in charge (分管领导) looks after.
CREATE TABLE street_leader_areas (
    person_id       uuid NOT NULL REFERENCES people (id),
    department_kind text NOT NULL,
    PRIMARY KEY (person_id, department_kind)
);

CREATE TABLE street_sections (
    id             text PRIMARY KEY,
    street_id      text NOT NULL REFERENCES streets (id),
    name           text NOT NULL,
    head_person_id uuid REFERENCES people (id),
    create_time    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX street_sections_street ON street_sections (street_id, id);

CREATE TABLE street_section_stations (
    section_id text NOT NULL REFERENCES street_sections (id),
    station_id text NOT NULL REFERENCES stations (id),
    PRIMARY KEY (section_id, station_id)
);
CREATE INDEX street_section_stations_station ON street_section_stations (station_id);

-- Append-only. The sequence is the cursor personnel keeps.
CREATE TABLE leadership_changes (
    sequence      bigserial PRIMARY KEY,
    station_id    text NOT NULL REFERENCES stations (id),
    department_id text NOT NULL,
    street_id     text NOT NULL,
    person_id     uuid NOT NULL REFERENCES people (id),
    position      text NOT NULL,
    kind          text NOT NULL CHECK (kind IN ('LEADERSHIP_CHANGE_KIND_JOINED', 'LEADERSHIP_CHANGE_KIND_LEFT')),
    change_time   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX leadership_changes_time ON leadership_changes (change_time);
