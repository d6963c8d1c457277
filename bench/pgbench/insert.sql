-- Single-row INSERT into a table with three indexes.
INSERT INTO bench_cases (id, street_id, channel, source_reference, doc)
VALUES (gen_random_uuid(), 'zhongnanlu', 'CHANNEL_HOTLINE', gen_random_uuid()::text, '{"title": "水泵房"}');
