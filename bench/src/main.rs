//! `minhu-bench [--quick] [--out PATH]`: runs the benchmark (see the crate docs), prints the
//! table and writes the JSON report. `cargo xtask bench` builds it in release and starts
//! Postgres and Redis for it.

use std::{path::PathBuf, process::ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let out = args
        .iter()
        .position(|a| a == "--out")
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target/bench/report.json"));
    let options = if quick { minhu_bench::Options::quick() } else { minhu_bench::Options::full() };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("minhu-bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(minhu_bench::run(options)) {
        Ok(report) => {
            println!("{}", report.table());
            if let Err(e) = report.write_json(&out) {
                eprintln!("minhu-bench: writing {}: {e:#}", out.display());
                return ExitCode::FAILURE;
            }
            eprintln!("minhu-bench: report written to {}", out.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("minhu-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}
