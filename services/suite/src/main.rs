//! `minhu-suite`: every Minhu service in one process, each on its own port as it would be
//! deployed, sharing one runtime and one telemetry pipeline. For development, the demo and
//! small sites; production runs each service's own binary.
//!
//! Configuration is each service's own (`MINHU_<SVC>_DATABASE_URL`, `MINHU_<SVC>_LISTEN_ADDR`,
//! the shared `MINHU_AUTH_*`/`MINHU_JWT_*` and server variables). On start the suite loads the
//! Wuchang seed roster (idempotent), prints where each service listens and a development
//! token per kind of caller when development tokens are accepted, then serves until
//! SIGTERM or ctrl-c.
//!
//! Unless started with `--no-demo`, it first drives the seed article's pump-room case end to
//! end through the public API (see [`demo`]), with deadlines shortened to seconds so the
//! escalations happen while you watch, then the consultation on the pump room's future use
//! and a plan's drafting stage ([`minhu_suite::demo_consultation`]).

use minhu_suite::demo;

use std::{process::ExitCode, time::Duration};

use anyhow::Context as _;
use clap::Parser;
use minhu_grpc::{AuthConfig, TokenIssuer};

#[derive(Debug, Parser)]
#[command(name = "minhu-suite", about = "Every Minhu service in one process")]
struct Args {
    /// Serve without running the pump-room demo case (and with the configured deadlines).
    #[arg(long)]
    no_demo: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let telemetry = match minhu_telemetry::TelemetryConfig::from_env("minhu-suite").map(|c| minhu_telemetry::init(&c)) {
        Ok(Ok(telemetry)) => telemetry,
        Ok(Err(e)) => return fail(&format!("starting telemetry: {e}")),
        Err(e) => return fail(&e),
    };
    let args = Args::parse();
    let code = match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&format!("{e:#}")),
    };
    let _ = tokio::task::spawn_blocking(move || telemetry.shutdown()).await;
    code
}

async fn run(args: Args) -> anyhow::Result<()> {
    let roster_config = minhu_roster::Config::from_env().context("roster configuration")?;
    let dev_tokens = is_dev(&roster_config.auth);

    let roster = minhu_roster::Application::build(roster_config).await.context("starting roster")?;
    let report = minhu_roster::seed::load(roster.pool()).await.context("loading the seed roster")?;
    let roster_addr = roster.local_addr();

    let mut dispatch_config = minhu_dispatch::Config::from_env().context("dispatch configuration")?;
    let demo = !args.no_demo && dev_tokens;
    if demo {
        demo::demo_deadlines(&mut dispatch_config.deadlines.policy);
    }
    if minhu_grpc::config::optional("MINHU_ROSTER_URL").is_none() {
        // In one process, dispatch calls the roster this process just bound.
        dispatch_config.roster_url = format!("http://127.0.0.1:{}", roster_addr.port());
    }
    let dispatch = minhu_dispatch::Application::build(dispatch_config).await.context("starting dispatch")?;
    let dispatch_addr = dispatch.local_addr();

    let mut appraisal_config = minhu_appraisal::Config::from_env().context("appraisal configuration")?;
    if minhu_grpc::config::optional("MINHU_DISPATCH_URL").is_none() {
        appraisal_config.feed.dispatch_url = format!("http://127.0.0.1:{}", dispatch_addr.port());
    }
    let appraisal = minhu_appraisal::Application::build(appraisal_config).await.context("starting appraisal")?;
    let appraisal_addr = appraisal.local_addr();

    let mut personnel_config = minhu_personnel::Config::from_env().context("personnel configuration")?;
    if minhu_grpc::config::optional("MINHU_ROSTER_URL").is_none() {
        personnel_config.roster_url = format!("http://127.0.0.1:{}", roster_addr.port());
    }
    let personnel = minhu_personnel::Application::build(personnel_config).await.context("starting personnel")?;
    let personnel_addr = personnel.local_addr();
    let mut consultation_config = minhu_consultation::Config::from_env().context("consultation configuration")?;
    if minhu_grpc::config::optional("MINHU_ROSTER_URL").is_none() {
        consultation_config.roster_url = format!("http://127.0.0.1:{}", roster_addr.port());
    }
    let consultation =
        minhu_consultation::Application::build(consultation_config).await.context("starting consultation")?;
    let consultation_addr = consultation.local_addr();

    println!("Minhu suite");
    println!(
        "  roster   (部门名册)  {roster_addr}   seed: {} inserted, {} already present",
        report.inserted, report.existing
    );
    println!("  dispatch (案件调度)  {dispatch_addr}");
    println!("  appraisal(绩效考评)  {appraisal_addr}");
    println!("  personnel(人事任免)  {personnel_addr}");
    println!("  consultation(规划/决策) {consultation_addr}");
    if dev_tokens {
        print_dev_tokens(&roster_addr.port().to_string());
    }

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let roster_task = tokio::spawn(roster.run_until(stopped(stop_rx.clone())));
    let dispatch_task = tokio::spawn(dispatch.run_until(stopped(stop_rx.clone())));
    let appraisal_task = tokio::spawn(appraisal.run_until(stopped(stop_rx.clone())));
    let personnel_task = tokio::spawn(personnel.run_until(stopped(stop_rx.clone())));
    let consultation_task = tokio::spawn(consultation.run_until(stopped(stop_rx.clone())));

    if demo {
        let endpoints = demo::Endpoints {
            dispatch: format!("http://127.0.0.1:{}", dispatch_addr.port()),
            appraisal: format!("http://127.0.0.1:{}", appraisal_addr.port()),
        };
        match demo::run(&endpoints).await {
            Ok(case_id) => println!("\nThe demo case is {case_id}: `minhuctl cases show {case_id}` shows it again."),
            Err(e) => eprintln!("\nthe demo case failed: {e:#}"),
        }
        if let Err(e) = minhu_suite::demo_personnel::run(&format!("http://127.0.0.1:{}", personnel_addr.port())).await {
            eprintln!("\nthe personnel demo failed: {e:#}");
        }
        if let Err(e) =
            minhu_suite::demo_consultation::run(&format!("http://127.0.0.1:{}", consultation_addr.port())).await
        {
            eprintln!("\nthe consultation demo failed: {e:#}");
        }
    } else if !dev_tokens {
        println!("\n(no demo: the services accept production tokens only)");
    }
    println!("\nServing until ctrl-c.");

    minhu_grpc::shutdown_signal().await;
    let _ = stop_tx.send(true);
    // Downstream first: appraisal follows dispatch's feed, dispatch calls the roster.
    appraisal_task.await.context("appraisal task")?.context("appraisal")?;
    personnel_task.await.context("personnel task")?.context("personnel")?;
    consultation_task.await.context("consultation task")?.context("consultation")?;
    dispatch_task.await.context("dispatch task")?.context("dispatch")?;
    roster_task.await.context("roster task")?.context("roster")?;
    Ok(())
}

fn is_dev(auth: &AuthConfig) -> bool {
    auth.issuer == minhu_grpc::auth::DEV_ISSUER
}

/// Tokens for exploring with grpcurl; valid for a day, signed with the development key.
fn print_dev_tokens(roster_port: &str) {
    use minhu_grpc::{OrgKind, Organization, Principal, Role};
    let issuer = TokenIssuer::dev();
    let day = Duration::from_secs(24 * 3600);
    let admin = issuer.issue(
        &Principal::new(
            "district-admin",
            [Role::DistrictAdmin, Role::DistrictOperator],
            Organization::new(OrgKind::District, "district"),
        ),
        day,
    );
    let street = issuer.issue(
        &Principal::new(
            "zhongnanlu-dispatcher",
            [Role::StreetDispatcher],
            Organization::new(OrgKind::Street, "zhongnanlu"),
        ),
        day,
    );
    println!("\nDevelopment tokens (24 h):");
    println!("  export DISTRICT_ADMIN_TOKEN={admin}");
    println!("  export ZHONGNANLU_TOKEN={street}");
    println!("\nTry:");
    println!("  grpcurl -plaintext 127.0.0.1:{roster_port} list");
    println!(
        "  grpcurl -plaintext -H \"authorization: Bearer $ZHONGNANLU_TOKEN\" -d '{{\"location\":{{\"latitude\":30.5335,\"longitude\":114.3358}}}}' \\\n      127.0.0.1:{roster_port} minhu.roster.v1.RosterService/ResolveLocation"
    );
}

fn fail(message: &str) -> ExitCode {
    tracing::error!("{message}");
    eprintln!("minhu-suite: {message}");
    ExitCode::FAILURE
}
