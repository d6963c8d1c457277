-- The W3C traceparent of the request that produced each feed event, served on
-- StreamEvents so a consumer's span links to that request's trace. It names a span, never
-- a person; NULL when the request was not traced (and for events from before).
ALTER TABLE events ADD COLUMN trace_parent text;
