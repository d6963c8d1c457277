-- Repeat clusters (重复诉求). A repeat names the lead case of its cluster; the lead keeps
-- the cluster's size. One column per case instead of a link per pair: storage is linear
-- in the appeals, however many repeat one place.
-- No foreign key on purpose: its check takes a KEY SHARE lock on the lead whenever a
-- repeat's row written in the same transaction is updated again (the journal's trail
-- update, after the feed counter is taken), so a write on a repeat and one on its lead
-- deadlocked through the counter. Cases are never deleted and only intake, triage,
-- detach and merge set this column, each with the lead locked.
ALTER TABLE cases ADD COLUMN lead_case_id uuid;
ALTER TABLE cases ADD COLUMN cluster_size integer NOT NULL DEFAULT 1;

-- ListClusterMembers, in intake order.
CREATE INDEX cases_cluster_members ON cases (lead_case_id, created_at, id) WHERE lead_case_id IS NOT NULL;

-- Intake's look-up of a lead nearby: a GiST index on the point (longitude, latitude) of the
-- cases that lead their own cluster, searched with a bounding box (`<@`), so the look-up is
-- O(log n) however many cases the street and category hold this month. Stock Postgres
-- (geometric types), no PostGIS: the box is planar degrees, the exact distance is measured
-- in the service.
CREATE INDEX cases_cluster_leads ON cases USING gist (point(longitude, latitude))
    WHERE lead_case_id IS NULL AND latitude IS NOT NULL;

-- The intake no longer scans every case of the street and category.
DROP INDEX cases_repeats;
