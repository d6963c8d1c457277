-- The first result of every mutating request that carried a request_id (AIP-155), so a
-- retry gets the same answer instead of a second effect. Shared by every service: the
-- store library adds this migration in front of the service's own.
CREATE TABLE minhu_idempotency_records (
    scope        text        NOT NULL,  -- the RPC, e.g. minhu.dispatch.v1.DispatchService/CreateCase
    request_id   text        NOT NULL,
    fingerprint  bytea       NOT NULL,  -- sha256 of caller + request: a reused id with another request is refused
    response     bytea,                 -- encoded response; NULL only inside the claiming transaction
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, request_id)
);

CREATE INDEX minhu_idempotency_records_created_at ON minhu_idempotency_records (created_at);
