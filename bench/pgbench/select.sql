-- Select by primary key (a read of one case's document).
\set id random(1, 100000)
SELECT doc FROM bench_read WHERE id = :id;
