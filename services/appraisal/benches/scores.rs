//! Scores at scale: 1,000,000 call records (and their satisfaction records) for 100
//! departments from 10 streets over 2019, loaded through the store module into a fresh
//! database (`MINHU_TEST_DATABASE_URL`, as testkit), then timed: the full recompute of the
//! year's scores for all departments (the SQL aggregation, rates, composite and ranks), a
//! street's league table, and drill-down pages.
//!
//! `cargo bench -p minhu-appraisal --bench scores`

use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use minhu_appraisal::{
    domain::{Weights, score},
    store::{
        records::{self, BulkCall},
        scores::{self, Indicator, Scope},
    },
};
use minhu_testkit::TestDatabase;

const RECORDS: usize = 1_000_000;
const DEPARTMENTS: usize = 100;
const STREETS: usize = 10;
const BATCH: usize = 10_000;
const RUNS: usize = 5;

fn pick<'a>(i: usize, salt: usize, options: &[&'a str]) -> &'a str {
    // A cheap deterministic spread (splitmix64's finaliser; no RNG dependency), so that
    // departments differ.
    let mut z = (i as u64 ^ ((salt as u64) << 40)).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    options[(z % options.len() as u64) as usize]
}

fn record(i: usize, year_start: DateTime<Utc>) -> BulkCall {
    let department = i % DEPARTMENTS;
    BulkCall {
        call_id: format!("call-{i:07}"),
        case_id: format!("case-{:07}", i / 3),
        street_id: format!("street-{:02}", (i / 7) % STREETS),
        department_id: format!("dept-{department:03}"),
        start_time: year_start + TimeDelta::seconds((i as i64 * 31) % (365 * 86_400)),
        sign_state: pick(i, 1, &["ON_TIME", "ON_TIME", "ON_TIME", "LATE", "UNSIGNED"]).into(),
        response_outcome: pick(i, department, &["RESPONDED", "RESPONDED", "RESPONDED", "CHECK_IN_LATE", "PENDING"])
            .into(),
        completion_outcome: pick(i, 3 + department, &["ON_TIME", "ON_TIME", "LATE", "NOT_COMPLETED", "PENDING"]).into(),
        satisfaction: pick(i, 5, &["SATISFIED", "SATISFIED", "BASICALLY_SATISFIED", "DISSATISFIED", "PENDING"]).into(),
    }
}

fn stats(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    (samples[0], samples[samples.len() / 2])
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a runtime");
    runtime.block_on(run());
}

async fn run() {
    let db = TestDatabase::create("appraisal_bench").await;
    let pool = minhu_store::connect_and_migrate(&db.config(), &[&minhu_appraisal::MIGRATOR]).await.expect("migrating");
    let year_start = Utc.with_ymd_and_hms(2018, 12, 31, 16, 0, 0).unwrap();
    let year_end = Utc.with_ymd_and_hms(2019, 12, 31, 16, 0, 0).unwrap();

    let loading = Instant::now();
    let mut conn = pool.acquire().await.expect("a connection");
    for start in (0..RECORDS).step_by(BATCH) {
        let batch: Vec<BulkCall> = (start..(start + BATCH).min(RECORDS)).map(|i| record(i, year_start)).collect();
        records::insert_bulk(&mut conn, &batch).await.expect("loading");
    }
    sqlx::query("ANALYZE").execute(&mut *conn).await.expect("analyze");
    let load = loading.elapsed();

    let mut recompute = Vec::new();
    let mut league = Vec::new();
    let mut drill = Vec::new();
    let mut drill_next = Vec::new();
    let mut top = String::new();
    for run in 0..RUNS {
        // The full recompute of the year: every department, every street.
        let t = Instant::now();
        let all = Scope { start: year_start, end: year_end, street_id: "", department_id: "" };
        let counts = scores::aggregate(&mut conn, &all).await.expect("aggregating");
        let mut rows: Vec<_> =
            counts.iter().map(|c| (c.rates(Weights::DEFAULT).composite, c.department_id.clone())).collect();
        score::order(&mut rows, |r| (r.0, r.1.as_str()));
        let ranks = score::ranks(&rows.iter().map(|r| r.0).collect::<Vec<_>>());
        recompute.push(t.elapsed());
        assert_eq!(rows.len(), DEPARTMENTS);
        if run == 0 {
            top = format!("{} ({:?} bp, rank {})", rows[0].1, rows[0].0, ranks[0]);
        }

        // One street's league table.
        let t = Instant::now();
        let street = Scope { street_id: "street-03", ..all.clone() };
        let counts = scores::aggregate(&mut conn, &street).await.expect("aggregating");
        let mut rows: Vec<_> =
            counts.iter().map(|c| (c.rates(Weights::DEFAULT).composite, c.department_id.clone())).collect();
        score::order(&mut rows, |r| (r.0, r.1.as_str()));
        let _ = score::ranks(&rows.iter().map(|r| r.0).collect::<Vec<_>>());
        league.push(t.elapsed());

        // A drill-down page (50 missed responses of one department), then the next page.
        let t = Instant::now();
        let dept = Scope { department_id: "dept-042", ..all.clone() };
        let (page, total) =
            scores::records(&mut conn, &dept, Indicator::Response, "CHECK_IN_LATE", None, 51).await.expect("records");
        drill.push(t.elapsed());
        assert!(total > 0 && page.len() == 51);
        let after = page.get(49).map(|r| (r.start_time, r.id.clone()));
        let t = Instant::now();
        scores::records(&mut conn, &dept, Indicator::Response, "CHECK_IN_LATE", after, 51).await.expect("records");
        drill_next.push(t.elapsed());
    }

    println!(
        "appraisal scores benchmark: {RECORDS} call records + {RECORDS} satisfaction records, {DEPARTMENTS} departments, {STREETS} streets"
    );
    println!("load (UNNEST batches of {BATCH}): {:.1} s", load.as_secs_f64());
    println!("top of the year's table: {top}");
    println!("{:<46} {:>10} {:>10}", "operation", "min ms", "median ms");
    for (name, samples) in [
        ("year recompute, all departments (SQL + rank)", recompute),
        ("league table, one street", league),
        ("drill-down, first page (50)", drill),
        ("drill-down, next page (50)", drill_next),
    ] {
        let (min, median) = stats(samples);
        println!("{name:<46} {:>10.1} {:>10.1}", min.as_secs_f64() * 1e3, median.as_secs_f64() * 1e3);
    }
}
