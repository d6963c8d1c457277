//! `cargo xtask`: Minhu's developer tasks.
//!
//! - `cargo xtask test [-- ARGS]`: lint the protos with buf, validate k8s/, run every test (nextest when
//!   installed) against Postgres and Redis. This is the README's and CI's test command.
//! - `cargo xtask up [-- ARGS]`: run the whole suite in one process (`minhu-suite`), with one
//!   database per service.
//! - `cargo xtask services`: Postgres and Redis for working by hand; prints their URLs and
//!   keeps them up until ctrl-c.
//! - `cargo xtask bench [--quick]`: the benchmark (issue #13) in a release build, against
//!   Postgres and Redis as for `test`; prints the table, writes `target/bench/report.json`.
//!
//! Postgres and Redis are the caller's when named in the environment, else the ones on the
//! standard local ports, else throwaway servers that xtask starts and stops again, even when
//! a test fails or on ctrl-c. `MINHU_XTASK_FORCE_LOCAL=1` always starts throwaway servers.

mod infra;
mod postgres;
mod process;
mod redis;

use std::{
    ffi::OsString,
    path::Path,
    process::{Command, ExitCode, ExitStatus},
};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use crate::infra::{Infra, Sources};

/// The services of the suite; each has a database `minhu_<name>` and reads its URL from
/// `MINHU_<NAME>_DATABASE_URL`.
const SERVICES: [&str; 5] = ["roster", "dispatch", "appraisal", "personnel", "consultation"];

/// What the test harness reads: an admin URL (it creates a fresh database per test) and Redis.
const TEST_SOURCES: Sources = Sources { postgres: "MINHU_TEST_DATABASE_URL", redis: "MINHU_TEST_REDIS_URL" };
/// What a developer's shell names for running services.
const DEV_SOURCES: Sources = Sources { postgres: "DATABASE_URL", redis: "REDIS_URL" };

#[derive(Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask", about = "Minhu's developer tasks", version)]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Lint the protos (buf) and run every test against Postgres and Redis.
    Test {
        /// Passed on to `cargo nextest run` (or `cargo test`).
        #[arg(last = true)]
        args: Vec<OsString>,
    },
    /// Run the whole suite in one process, with a database per service.
    Up {
        /// Passed on to the suite binary.
        #[arg(last = true)]
        args: Vec<OsString>,
    },
    /// Bring up Postgres and Redis, print their URLs, and keep them up until ctrl-c.
    #[command(alias = "infra")]
    Services,
    /// Benchmark the suite against the machine's own limits (release build).
    Bench {
        /// Every scenario, shorter windows (under two minutes once built).
        #[arg(long)]
        quick: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = process::catch_interrupts().and_then(|()| match cli.task {
        Task::Test { args } => test(args),
        Task::Up { args } => up(args),
        Task::Services => services(),
        Task::Bench { quick } => bench(quick),
    });
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("xtask: error: {err:#}");
            if process::interrupted() { ExitCode::from(130) } else { ExitCode::FAILURE }
        }
    }
}

/// The workspace root: xtask's parent directory.
pub(crate) fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives inside the workspace")
}

fn cargo() -> Command {
    let mut cargo = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cargo.current_dir(workspace_root());
    cargo
}

fn test(args: Vec<OsString>) -> Result<ExitCode> {
    let infra = Infra::ensure(TEST_SOURCES)?;
    let mut failed = Vec::new();

    if !buf_lint()? {
        failed.push("buf lint");
    }
    process::bail_if_interrupted()?;
    if !buf_breaking()? {
        failed.push("buf breaking");
    }
    process::bail_if_interrupted()?;

    // The manifests against the Kubernetes schemas and against what the binaries read.
    eprintln!("xtask: validating k8s/");
    let mut manifests = Command::new("bash");
    manifests.arg("k8s/run-validate.sh").current_dir(workspace_root());
    if !wait_for(&mut manifests, "k8s validation")?.success() {
        failed.push("k8s validation");
    }
    process::bail_if_interrupted()?;

    let (runner, mut tests) = if process::succeeds(cargo().args(["nextest", "--version"])) {
        let mut nextest = cargo();
        nextest.args(["nextest", "run", "--workspace", "--no-fail-fast"]);
        ("cargo nextest run", nextest)
    } else {
        eprintln!("xtask: cargo-nextest not installed (cargo install cargo-nextest --locked); using cargo test");
        let mut cargo_test = cargo();
        cargo_test.args(["test", "--workspace", "--no-fail-fast"]);
        ("cargo test", cargo_test)
    };
    tests.args(args).env(TEST_SOURCES.postgres, infra.postgres.admin_url()).env(TEST_SOURCES.redis, infra.redis.url());
    eprintln!("xtask: running {runner}");
    let status = wait_for(&mut tests, runner)?;
    if !status.success() {
        failed.push(runner);
    }

    drop(infra);
    if process::interrupted() {
        return Ok(ExitCode::from(130));
    }
    if failed.is_empty() {
        eprintln!("xtask: test: all passed");
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("xtask: test: failed: {}", failed.join(", "));
        Ok(ExitCode::FAILURE)
    }
}

/// `buf lint` over the protos (buf.yaml is at the root). Returns whether it passed; without
/// npx it is skipped, loudly, rather than failing machines that only run the Rust tests.
fn buf_lint() -> Result<bool> {
    // The contracts' lint is part of the tests: without npx, install Node.js when we may
    // (root: CI, containers), otherwise fail saying how.
    if process::which("npx").is_none() {
        if !process::is_root() {
            eprintln!("xtask: buf lint needs npx; install Node.js and npm with:\n  sudo apt-get install -y nodejs npm");
            return Ok(false);
        }
        eprintln!("xtask: npx is not installed; installing nodejs and npm with apt-get");
        process::run(Command::new("apt-get").arg("update"), "apt-get update")?;
        process::run(
            Command::new("apt-get")
                .args(["install", "-y", "--no-install-recommends", "nodejs", "npm"])
                .env("DEBIAN_FRONTEND", "noninteractive"),
            "apt-get install nodejs npm",
        )?;
    }
    eprintln!("xtask: running buf lint");
    let mut buf = Command::new("npx");
    buf.args(["--yes", "@bufbuild/buf", "lint"]).current_dir(workspace_root());
    Ok(wait_for(&mut buf, "buf lint")?.success())
}

/// `buf breaking`: the contracts stay wire- and source-compatible (FILE rules) with every
/// baseline a client may have built against — the contracts as first published (the commit
/// that added them) and, on a branch, `main`. A baseline missing from a shallow clone is
/// skipped, saying so. Runs after [`buf_lint`], which made sure npx is there.
fn buf_breaking() -> Result<bool> {
    let git = |args: &[&str]| -> Option<String> {
        let out = Command::new("git").args(args).current_dir(workspace_root()).output().ok()?;
        let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        (out.status.success() && !text.is_empty()).then_some(text)
    };
    let mut baselines = Vec::new();
    match git(&["log", "--diff-filter=A", "--format=%H", "--", "proto/minhu/dispatch/v1/dispatch.proto"]) {
        Some(added) => {
            baselines.push(("the contracts as first published", added.lines().last().unwrap_or("").to_owned()))
        }
        None => {
            eprintln!("xtask: buf breaking: no history of the contracts here (shallow clone?); skipping that baseline")
        }
    }
    if let (Some(head), Some(main)) = (git(&["rev-parse", "HEAD"]), git(&["rev-parse", "--verify", "-q", "main"]))
        && head != main
    {
        baselines.push(("main", main));
    }
    let mut ok = true;
    for (what, commit) in baselines {
        eprintln!("xtask: running buf breaking against {what} ({})", &commit[..12.min(commit.len())]);
        let mut buf = Command::new("npx");
        buf.args(["--yes", "@bufbuild/buf", "breaking", "--against"])
            .arg(format!(".git#ref={commit}"))
            .current_dir(workspace_root());
        ok &= wait_for(&mut buf, "buf breaking")?.success();
    }
    Ok(ok)
}

fn up(args: Vec<OsString>) -> Result<ExitCode> {
    let infra = Infra::ensure(DEV_SOURCES)?;
    infra.postgres.create_databases(&databases())?;
    process::bail_if_interrupted()?;

    let mut suite = cargo();
    // A debug build shares the test build's artifacts: the first run is minutes faster.
    suite.args(["run", "-p", "minhu-suite", "--"]).args(args);
    // The suite is for development and the demo: accept development tokens unless the
    // caller configured real keys.
    if std::env::var_os("MINHU_AUTH_DEV").is_none() && std::env::var_os("MINHU_JWT_ISSUER").is_none() {
        suite.env("MINHU_AUTH_DEV", "true");
        // Development tokens are public: serve them on this machine only, unless told.
        for (service, port) in [
            ("ROSTER", 50051),
            ("DISPATCH", 50052),
            ("APPRAISAL", 50053),
            ("PERSONNEL", 50054),
            ("CONSULTATION", 50055),
        ] {
            let var = format!("MINHU_{service}_LISTEN_ADDR");
            if std::env::var_os(&var).is_none() {
                suite.env(var, format!("127.0.0.1:{port}"));
            }
        }
    }
    for (var, url) in database_urls(&infra) {
        suite.env(var, url);
    }
    suite.env(DEV_SOURCES.redis, infra.redis.url());
    eprintln!("xtask: starting the suite (ctrl-c stops it)");
    let status = wait_for(&mut suite, "minhu-suite")?;

    drop(infra);
    Ok(exit_code(status))
}

fn services() -> Result<ExitCode> {
    let infra = Infra::ensure(DEV_SOURCES)?;
    infra.postgres.create_databases(&databases())?;
    println!("export {}={}", DEV_SOURCES.postgres, infra.postgres.admin_url());
    println!("export {}={}", DEV_SOURCES.redis, infra.redis.url());
    println!("export {}={}", TEST_SOURCES.postgres, infra.postgres.admin_url());
    println!("export {}={}", TEST_SOURCES.redis, infra.redis.url());
    for (var, url) in database_urls(&infra) {
        println!("export {var}={url}");
    }
    eprintln!("xtask: Postgres and Redis are up; ctrl-c stops them");
    process::wait_for_interrupt();
    drop(infra);
    Ok(ExitCode::SUCCESS)
}

/// The benchmark: h2load when it can be had (installed like the servers when we are root,
/// else the command is printed and its rows are skipped), then the release-built
/// `minhu-bench` with the same Postgres and Redis the tests get.
fn bench(quick: bool) -> Result<ExitCode> {
    if !process::succeeds(Command::new("h2load").arg("--version")) {
        if process::is_root() {
            eprintln!("xtask: h2load is not installed; installing nghttp2-client with apt-get");
            process::run(
                Command::new("apt-get")
                    .args(["install", "-y", "--no-install-recommends", "nghttp2-client"])
                    .env("DEBIAN_FRONTEND", "noninteractive"),
                "apt-get install nghttp2-client",
            )?;
        } else {
            eprintln!("xtask: h2load is not installed (sudo apt-get install -y nghttp2-client); its rows are skipped");
        }
    }
    let infra = Infra::ensure(TEST_SOURCES)?;
    let out = workspace_root().join("target/bench/report.json");
    let mut run = cargo();
    run.args(["run", "--release", "-p", "minhu-bench", "--"]);
    if quick {
        run.arg("--quick");
    }
    run.arg("--out").arg(&out);
    run.env(TEST_SOURCES.postgres, infra.postgres.admin_url()).env(TEST_SOURCES.redis, infra.redis.url());
    eprintln!("xtask: building (release) and running the benchmark");
    let status = wait_for(&mut run, "minhu-bench")?;
    drop(infra);
    Ok(exit_code(status))
}

fn databases() -> Vec<String> {
    SERVICES.iter().map(|service| format!("minhu_{service}")).collect()
}

/// `MINHU_<SERVICE>_DATABASE_URL` and its URL, for every service.
fn database_urls(infra: &Infra) -> Vec<(String, String)> {
    SERVICES
        .iter()
        .map(|service| {
            let var = format!("MINHU_{}_DATABASE_URL", service.to_uppercase());
            (var, infra.postgres.database_url(&format!("minhu_{service}")))
        })
        .collect()
}

/// Runs a foreground child with inherited stdio until it exits (see `process::wait`).
fn wait_for(command: &mut Command, what: &str) -> Result<ExitStatus> {
    let child = command.spawn().with_context(|| format!("starting {what}"))?;
    process::wait(child, what)
}

/// The child's exit code as ours; killed by a signal counts as 128 + signal, like a shell.
fn exit_code(status: ExitStatus) -> ExitCode {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        (None, Some(signal)) => ExitCode::from(u8::try_from(128 + signal).unwrap_or(1)),
        (None, None) => ExitCode::FAILURE,
    }
}
