-- The roster (部门名册). Structure and organisations are keyed by their human codes, which
-- every other service stores; people and secondments by UUID. Nothing is ever deleted:
-- cases, ratings and referrals refer to these rows for years, so rows are deactivated.
-- Enumerations are stored by their proto names (e.g. DEPARTMENT_KIND_HOUSING) so that an
-- auditor reading the tables needs no lookup table.

CREATE TABLE streets (
    id                  text PRIMARY KEY,
    name                text NOT NULL,
    center_lat          double precision NOT NULL,
    center_lng          double precision NOT NULL,
    radius_meters       double precision NOT NULL,
    boundary            jsonb NOT NULL DEFAULT '[]',   -- [[lat, lng], ...]
    active              boolean NOT NULL DEFAULT true,
    deactivation_reason text,
    create_time         timestamptz NOT NULL DEFAULT now(),
    update_time         timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE communities (
    id                  text PRIMARY KEY,
    street_id           text NOT NULL REFERENCES streets (id),
    name                text NOT NULL,
    center_lat          double precision NOT NULL,
    center_lng          double precision NOT NULL,
    radius_meters       double precision NOT NULL,
    boundary            jsonb NOT NULL DEFAULT '[]',
    active              boolean NOT NULL DEFAULT true,
    deactivation_reason text,
    create_time         timestamptz NOT NULL DEFAULT now(),
    update_time         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX communities_street ON communities (street_id, id);

CREATE TABLE departments (
    id                  text PRIMARY KEY,
    name                text NOT NULL,
    kind                text NOT NULL,
    active              boolean NOT NULL DEFAULT true,
    deactivation_reason text,
    create_time         timestamptz NOT NULL DEFAULT now(),
    update_time         timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE stations (
    id                              text PRIMARY KEY,
    department_id                   text NOT NULL REFERENCES departments (id),
    street_id                       text NOT NULL REFERENCES streets (id),
    served_street_ids               text[] NOT NULL DEFAULT '{}',
    name                            text NOT NULL,
    kind                            text NOT NULL,
    head_person_id                  uuid,          -- FK added below: people refer to stations too
    head_on_party_working_committee boolean NOT NULL DEFAULT false,
    active                          boolean NOT NULL DEFAULT true,
    deactivation_reason             text,
    create_time                     timestamptz NOT NULL DEFAULT now(),
    update_time                     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX stations_department ON stations (department_id, id);
CREATE INDEX stations_street ON stations (street_id, id);
CREATE INDEX stations_served ON stations USING gin (served_street_ids);

CREATE TABLE people (
    id                  uuid PRIMARY KEY,
    name                text NOT NULL,
    employee_number     text NOT NULL,
    department_id       text REFERENCES departments (id),
    station_id          text REFERENCES stations (id),
    street_id           text REFERENCES streets (id),
    qualifications      text[] NOT NULL DEFAULT '{}',
    position            text NOT NULL,
    title               text NOT NULL DEFAULT '',
    phone               text NOT NULL DEFAULT '',
    active              boolean NOT NULL DEFAULT true,
    deactivation_reason text,
    create_time         timestamptz NOT NULL DEFAULT now(),
    update_time         timestamptz NOT NULL DEFAULT now(),
    -- Department staff or street staff, never both, never neither.
    CONSTRAINT people_one_organisation CHECK ((department_id IS NULL) <> (street_id IS NULL)),
    CONSTRAINT people_station_is_departmental CHECK (station_id IS NULL OR department_id IS NOT NULL)
);
-- Employee numbers are unique within the organisation that issued them.
CREATE UNIQUE INDEX people_employee_number ON people (coalesce(department_id, ''), coalesce(street_id, ''), employee_number);
CREATE INDEX people_department ON people (department_id, name, id);
CREATE INDEX people_station ON people (station_id);
CREATE INDEX people_street ON people (street_id, name, id);
CREATE INDEX people_name ON people (name, id);

ALTER TABLE stations ADD CONSTRAINT stations_head FOREIGN KEY (head_person_id) REFERENCES people (id);

CREATE TABLE grids (
    id                     text PRIMARY KEY,
    community_id           text NOT NULL REFERENCES communities (id),
    street_id              text NOT NULL REFERENCES streets (id),
    name                   text NOT NULL,
    center_lat             double precision NOT NULL,
    center_lng             double precision NOT NULL,
    radius_meters          double precision NOT NULL,
    boundary               jsonb NOT NULL DEFAULT '[]',
    grid_worker_person_ids uuid[] NOT NULL DEFAULT '{}',
    active                 boolean NOT NULL DEFAULT true,
    deactivation_reason    text,
    create_time            timestamptz NOT NULL DEFAULT now(),
    update_time            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX grids_community ON grids (community_id, id);
CREATE INDEX grids_street ON grids (street_id, id);
CREATE INDEX grids_workers ON grids USING gin (grid_worker_person_ids);

CREATE TABLE secondments (
    id            uuid PRIMARY KEY,
    kind          text NOT NULL,
    person_id     uuid REFERENCES people (id),
    department_id text NOT NULL REFERENCES departments (id),
    street_id     text NOT NULL REFERENCES streets (id),
    center        text NOT NULL,
    start_date    date NOT NULL,
    end_date      date,
    note          text NOT NULL DEFAULT '',
    end_reason    text,
    create_time   timestamptz NOT NULL DEFAULT now(),
    update_time   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT secondments_person_iff_resident CHECK ((kind = 'SECONDMENT_KIND_RESIDENT') = (person_id IS NOT NULL)),
    CONSTRAINT secondments_dates CHECK (end_date IS NULL OR end_date >= start_date)
);
CREATE INDEX secondments_street ON secondments (street_id, start_date, id);
CREATE INDEX secondments_person ON secondments (person_id);
CREATE INDEX secondments_department ON secondments (department_id);
