//! The harness cannot rot: every step of `cargo xtask bench` runs here with tiny windows
//! against the testkit's Postgres and Redis, and the report has every row of the table.

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_benchmark_runs_every_step_and_reports_each_figure() {
    let report = minhu_bench::run(minhu_bench::Options::tiny()).await.expect("the benchmark runs");
    let table = report.table();
    println!("{table}");
    let find = |prefix: &str| {
        report
            .rows
            .iter()
            .find(|r| r.scenario.starts_with(prefix))
            .unwrap_or_else(|| panic!("no row `{prefix}` in\n{table}"))
    };
    // Measured, with figures (never a made-up one: unmeasured rows say so).
    for prefix in ["CreateCase (intake) 1 in flight", "CreateCase (intake) 8", "GetCase of a fresh case", "storm: 20"] {
        let row = find(prefix);
        assert!(row.figure.contains("ms"), "{row:?}");
        assert!(row.met.is_some(), "{row:?}");
    }
    // The storm stored one row per appeal, in one cluster.
    let rows = find("storm: rows stored");
    assert_eq!(rows.figure, "20 cases in one cluster, 0 link rows", "{rows:?}");
    assert_eq!(rows.met, Some(true));
    assert!(find("the full lifecycle").figure.starts_with("not measured"));
    let json = std::env::temp_dir().join(format!("minhu-bench-{}.json", std::process::id()));
    report.write_json(&json).unwrap();
    let back: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(back["rows"].as_array().unwrap().len(), report.rows.len());
    let _ = std::fs::remove_file(json);
}
