-- The dispatch catalogue (派单目录): whole published versions, never changed once written.
-- The current version is the highest; cases keep the rule of the version they were
-- accepted under in their own document, so nothing here is ever updated or deleted.
CREATE TABLE catalogue_versions (
    version integer PRIMARY KEY CHECK (version > 0),
    published_at timestamptz NOT NULL,
    doc jsonb NOT NULL
);
