-- The W3C trace context (traceparent, tracestate) of the request that scheduled each
-- deadline, so that its firing, a trace of its own, links back to it. Names a span only;
-- NULL for deadlines scheduled outside any exported trace (and for rows from before).
ALTER TABLE minhu_deadlines ADD COLUMN trace_parent text, ADD COLUMN trace_state text;
