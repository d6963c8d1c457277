-- The district's working-time calendar (工作日历): the days that differ from the configured
-- week — public holidays (法定节假日) and make-up working days (调休上班) — set through the
-- API, imported from ICS, or seeded with the State Council's 2026 schedule. Every deadline
-- counted in working days reads this table.
CREATE TABLE calendar_days (
    day date PRIMARY KEY,
    kind text NOT NULL CHECK (kind IN ('CALENDAR_DAY_KIND_HOLIDAY', 'CALENDAR_DAY_KIND_WORKDAY')),
    name text NOT NULL,
    -- SEED, API or ICS: where the day came from.
    source text NOT NULL,
    updated_at timestamptz NOT NULL
);
