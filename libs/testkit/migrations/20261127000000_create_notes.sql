-- The echo test service's one table.
CREATE TABLE notes (
    id     bigserial PRIMARY KEY,
    text   text NOT NULL,
    author text NOT NULL
);
