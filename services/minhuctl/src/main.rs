//! `minhuctl`: the tool an on-call engineer or a trainer reaches for.
//!
//! ```text
//! minhuctl token --as street-dispatcher:zhongnanlu          # a development token
//! minhuctl cases list --street zhongnanlu --state calling     # a street's cases
//! minhuctl cases show <case-id>                               # one case, its timeline, its trail verified
//! minhuctl cases watch --street zhongnanlu                    # live, until ctrl-c
//! minhuctl scores --period <period-id>                        # the league table
//! minhuctl scores rebuild                                     # replay the feed, with progress
//! minhuctl roster resolve 30.5335 114.3358                    # which street, community, grid
//! ```
//!
//! Who it calls as: `--token` (or `MINHU_TOKEN`), else a development token minted for
//! `--as` (default `district-admin`), accepted only by services running with
//! `MINHU_AUTH_DEV=true`.

mod identity;
mod output;

use std::time::Duration;

use anyhow::{Context as _, Result};
use clap::{Args, Parser, Subcommand};
use minhu_grpc::auth::BearerToken;
use minhu_proto::{appraisal::v1 as appraisal, common::v1 as common, dispatch::v1 as dispatch, roster::v1 as roster};
use tonic::{codegen::InterceptedService, transport::Channel};

use crate::identity::Identity;

#[derive(Debug, Parser)]
#[command(name = "minhuctl", version, about = "Operate and explore a Minhu (民呼我应) district")]
struct Cli {
    /// The roster service.
    #[arg(long, env = "MINHU_ROSTER_URL", default_value = "http://127.0.0.1:50051", global = true)]
    roster: String,
    /// The dispatch service.
    #[arg(long, env = "MINHU_DISPATCH_URL", default_value = "http://127.0.0.1:50052", global = true)]
    dispatch: String,
    /// The appraisal service.
    #[arg(long, env = "MINHU_APPRAISAL_URL", default_value = "http://127.0.0.1:50053", global = true)]
    appraisal: String,
    /// A bearer token to call with (overrides --as).
    #[arg(long, env = "MINHU_TOKEN", global = true, hide_env_values = true)]
    token: Option<String>,
    /// Whom to call as, with a development token: district-admin, district-operator,
    /// street-dispatcher:<street>, street-leader:<street>, department-dispatcher:<dept>,
    /// department-leader:<dept>, field-officer:<dept>:<person-id>, discipline-inspector,
    /// service:<name>.
    #[arg(long = "as", global = true, default_value = "district-admin")]
    identity: Identity,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print a development token for --as.
    Token {
        /// How long it is valid, in hours.
        #[arg(long, default_value_t = 8)]
        hours: u64,
    },
    /// Cases (案件).
    #[command(subcommand)]
    Cases(CasesCommand),
    /// Departments' appraisal scores (绩效考评).
    Scores(ScoresArgs),
    /// The roster (部门名册).
    #[command(subcommand)]
    Roster(RosterCommand),
}

#[derive(Debug, Subcommand)]
enum CasesCommand {
    /// List cases, newest first.
    List {
        #[command(flatten)]
        filter: CaseFilterArgs,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// One case: its calls, its timeline (留痕) and whether the trail verifies.
    Show {
        /// The case id.
        case_id: String,
    },
    /// Watch cases change live until ctrl-c (实时进度).
    Watch {
        #[command(flatten)]
        filter: CaseFilterArgs,
    },
    /// Counts per state, for a dashboard.
    Count {
        #[command(flatten)]
        filter: CaseFilterArgs,
    },
}

#[derive(Debug, Args)]
struct CaseFilterArgs {
    /// Only this street's cases.
    #[arg(long)]
    street: Option<String>,
    /// Only cases calling this department.
    #[arg(long)]
    department: Option<String>,
    /// Only cases in these states (e.g. calling, handling, closed).
    #[arg(long = "state")]
    states: Vec<String>,
    /// Only overdue cases.
    #[arg(long)]
    overdue: bool,
}

impl CaseFilterArgs {
    fn to_proto(&self) -> Result<dispatch::CaseFilter> {
        let states = self
            .states
            .iter()
            .map(|s| {
                let name = format!("CASE_STATE_{}", s.to_ascii_uppercase().replace('-', "_"));
                dispatch::CaseState::from_str_name(&name)
                    .map(|state| state as i32)
                    .with_context(|| format!("unknown case state `{s}`"))
            })
            .collect::<Result<_>>()?;
        Ok(dispatch::CaseFilter {
            states,
            street_id: self.street.clone().unwrap_or_default(),
            department_id: self.department.clone().unwrap_or_default(),
            overdue_only: self.overdue,
            ..Default::default()
        })
    }
}

#[derive(Debug, Args)]
struct ScoresArgs {
    /// The period; default: the newest open one.
    #[arg(long)]
    period: Option<String>,
    /// Only calls made by this street.
    #[arg(long)]
    street: Option<String>,
    #[command(subcommand)]
    action: Option<ScoresAction>,
}

#[derive(Debug, Subcommand)]
enum ScoresAction {
    /// Recompute every score by replaying dispatch's feed from the start, showing progress.
    Rebuild,
}

#[derive(Debug, Subcommand)]
enum RosterCommand {
    /// Which street, community and grid a point lies in.
    Resolve {
        /// Latitude, degrees.
        latitude: f64,
        /// Longitude, degrees.
        longitude: f64,
    },
    /// The streets.
    Streets,
}

type Authed = InterceptedService<Channel, BearerToken>;

struct Clients {
    cli: Cli,
    token: BearerToken,
}

impl Clients {
    async fn channel(url: &str) -> Result<Channel> {
        Channel::from_shared(url.to_owned())
            .with_context(|| format!("`{url}` is not a URL"))?
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await
            .with_context(|| format!("connecting to {url}"))
    }

    async fn dispatch(&self) -> Result<dispatch::dispatch_service_client::DispatchServiceClient<Authed>> {
        let channel = Self::channel(&self.cli.dispatch).await?;
        Ok(dispatch::dispatch_service_client::DispatchServiceClient::with_interceptor(channel, self.token.clone()))
    }

    async fn roster(&self) -> Result<roster::roster_service_client::RosterServiceClient<Authed>> {
        let channel = Self::channel(&self.cli.roster).await?;
        Ok(roster::roster_service_client::RosterServiceClient::with_interceptor(channel, self.token.clone()))
    }

    async fn appraisal(&self) -> Result<appraisal::appraisal_service_client::AppraisalServiceClient<Authed>> {
        let channel = Self::channel(&self.cli.appraisal).await?;
        Ok(appraisal::appraisal_service_client::AppraisalServiceClient::with_interceptor(channel, self.token.clone()))
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run(Cli::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            match e.downcast_ref::<tonic::Status>() {
                // A refusal from a service reads as the service meant it.
                Some(status) => eprintln!("minhuctl: {:?}: {}", status.code(), status.message()),
                None => eprintln!("minhuctl: {e:#}"),
            }
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    if let Command::Token { hours } = cli.command {
        println!("{}", cli.identity.mint(Duration::from_secs(hours * 3600)));
        return Ok(());
    }
    let token = match &cli.token {
        Some(token) => token.clone(),
        None => cli.identity.mint(Duration::from_secs(3600)),
    };
    let clients = Clients { token: BearerToken::new(&token), cli };
    match &clients.cli.command {
        Command::Token { .. } => unreachable!("handled above"),
        Command::Cases(CasesCommand::List { filter, limit }) => list_cases(&clients, filter, *limit).await,
        Command::Cases(CasesCommand::Show { case_id }) => show_case(&clients, case_id).await,
        Command::Cases(CasesCommand::Watch { filter }) => watch_cases(&clients, filter).await,
        Command::Cases(CasesCommand::Count { filter }) => count_cases(&clients, filter).await,
        Command::Scores(args) => match args.action {
            Some(ScoresAction::Rebuild) => rebuild_scores(&clients).await,
            None => show_scores(&clients, args).await,
        },
        Command::Roster(RosterCommand::Resolve { latitude, longitude }) => {
            resolve(&clients, *latitude, *longitude).await
        }
        Command::Roster(RosterCommand::Streets) => streets(&clients).await,
    }
}

async fn list_cases(clients: &Clients, filter: &CaseFilterArgs, limit: usize) -> Result<()> {
    let mut dispatch = clients.dispatch().await?;
    let filter = filter.to_proto()?;
    let mut shown = 0;
    let mut token = String::new();
    println!("{}", output::case_header());
    loop {
        let page = dispatch
            .list_cases(dispatch::ListCasesRequest {
                filter: Some(filter.clone()),
                page_size: (limit - shown).min(200) as i32,
                page_token: token,
            })
            .await?
            .into_inner();
        for case in &page.cases {
            println!("{}", output::case_line(case));
        }
        shown += page.cases.len();
        if page.next_page_token.is_empty() || shown >= limit {
            break;
        }
        token = page.next_page_token;
    }
    println!("({shown} shown)");
    Ok(())
}

async fn show_case(clients: &Clients, case_id: &str) -> Result<()> {
    let mut dispatch = clients.dispatch().await?;
    let case = dispatch.get_case(dispatch::GetCaseRequest { case_id: case_id.into() }).await?.into_inner();
    println!("{}", output::case_detail(&case));
    let calls = dispatch
        .list_calls(dispatch::ListCallsRequest { case_id: case_id.into(), page_size: 100, ..Default::default() })
        .await?
        .into_inner();
    for call in &calls.calls {
        println!("{}", output::call_line(call));
    }
    println!("\nTimeline (留痕):");
    let mut token = String::new();
    loop {
        let page = dispatch
            .list_trail_entries(dispatch::ListTrailEntriesRequest {
                case_id: case_id.into(),
                page_size: 200,
                page_token: token,
                ..Default::default()
            })
            .await?
            .into_inner();
        for entry in &page.entries {
            println!("{}", output::trail_line(entry));
        }
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    let verdict = dispatch.verify_trail(dispatch::VerifyTrailRequest { case_id: case_id.into() }).await?.into_inner();
    println!("\n{}", output::verdict(&verdict));
    Ok(())
}

async fn watch_cases(clients: &Clients, filter: &CaseFilterArgs) -> Result<()> {
    let mut dispatch = clients.dispatch().await?;
    let mut stream = dispatch
        .watch_cases(dispatch::WatchCasesRequest { filter: Some(filter.to_proto()?), ..Default::default() })
        .await?
        .into_inner();
    eprintln!("watching (ctrl-c stops)…");
    loop {
        tokio::select! {
            update = stream.message() => match update? {
                Some(update) => println!("{}", output::watch_line(&update)),
                None => { eprintln!("the server ended the stream"); return Ok(()); }
            },
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}

async fn count_cases(clients: &Clients, filter: &CaseFilterArgs) -> Result<()> {
    let mut dispatch = clients.dispatch().await?;
    let counts =
        dispatch.count_cases(dispatch::CountCasesRequest { filter: Some(filter.to_proto()?) }).await?.into_inner();
    for count in &counts.counts {
        println!("{:<20} {:>6}", output::state_name(count.state), count.count);
    }
    println!("{:<20} {:>6}", "total", counts.total_count);
    println!("{:<20} {:>6}", "overdue", counts.overdue_count);
    Ok(())
}

async fn show_scores(clients: &Clients, args: &ScoresArgs) -> Result<()> {
    let mut appraisal = clients.appraisal().await?;
    let period_id = match &args.period {
        Some(id) => id.clone(),
        None => {
            let periods = appraisal
                .list_periods(appraisal::ListPeriodsRequest {
                    state: appraisal::PeriodState::Open as i32,
                    page_size: 500,
                    ..Default::default()
                })
                .await?
                .into_inner();
            periods
                .periods
                .iter()
                .max_by_key(|p| p.range.as_ref().and_then(|r| r.start_time).map(|t| t.seconds))
                .map(|p| p.id.clone())
                .context("no open appraisal period; create one or pass --period")?
        }
    };
    let scores = appraisal
        .list_department_scores(appraisal::ListDepartmentScoresRequest {
            period_id: period_id.clone(),
            street_id: args.street.clone().unwrap_or_default(),
            page_size: 500,
            page_token: String::new(),
        })
        .await?
        .into_inner();
    println!("period {period_id}");
    println!("{}", output::score_header());
    for score in &scores.scores {
        println!("{}", output::score_line(score));
    }
    Ok(())
}

async fn rebuild_scores(clients: &Clients) -> Result<()> {
    let mut appraisal = clients.appraisal().await?;
    let request_id = format!("minhuctl-rebuild-{}", chrono::Utc::now().timestamp_millis());
    let mut progress = appraisal
        .rebuild_scores(appraisal::RebuildScoresRequest { include_closed_periods: false, request_id })
        .await?
        .into_inner();
    while let Some(step) = progress.message().await? {
        let percent = if step.head_sequence > 0 { step.applied_sequence * 100 / step.head_sequence } else { 100 };
        eprint!("\rrebuilding: {}/{} events ({percent}%)   ", step.applied_sequence, step.head_sequence);
        if step.done {
            eprintln!("\ndone");
        }
    }
    Ok(())
}

async fn resolve(clients: &Clients, latitude: f64, longitude: f64) -> Result<()> {
    let mut roster = clients.roster().await?;
    let place = roster
        .resolve_location(roster::ResolveLocationRequest { location: Some(common::GeoPoint { latitude, longitude }) })
        .await?
        .into_inner();
    println!(
        "street {}  community {}  grid {}",
        place.street_id,
        or_dash(&place.community_id),
        or_dash(&place.grid_id)
    );
    Ok(())
}

async fn streets(clients: &Clients) -> Result<()> {
    let mut roster = clients.roster().await?;
    let streets =
        roster.list_streets(roster::ListStreetsRequest { page_size: 500, ..Default::default() }).await?.into_inner();
    for street in &streets.streets {
        println!("{:<14} {}", street.id, street.name);
    }
    Ok(())
}

fn or_dash(s: &str) -> &str {
    if s.is_empty() { "-" } else { s }
}
