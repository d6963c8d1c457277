-- "A case and three department rows" (the call to three departments): one statement, one
-- transaction, four rows.
WITH c AS (
    INSERT INTO bench_cases (id, street_id, channel, source_reference, doc)
    VALUES (gen_random_uuid(), 'zhongnanlu', 'CHANNEL_HOTLINE', gen_random_uuid()::text, '{"title": "水泵房"}')
    RETURNING id
)
INSERT INTO bench_rows (id, case_id, department_id, sign_deadline)
SELECT gen_random_uuid(), c.id, d, now() + interval '2 hours' FROM c, unnest(ARRAY['gongan', 'chengguan', 'fangguan']) AS d;
