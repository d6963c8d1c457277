//! Live progress (实时进度) for the district and street screens and the phones: WatchCase
//! (one case: a snapshot, then one delta per event) and WatchCases (every readable case
//! matching a filter, one message per event).
//!
//! Every stream is a subscriber of the replica's [watch hub](super::hub): the hub reads
//! each batch of events and what they changed once, and each subscriber filters and masks
//! it in memory, with the same access rule as GetCase: a department whose call is
//! withdrawn stops seeing the case (WatchCase then ends with NOT_FOUND; WatchCases skips
//! it). A delta carries the event and the one sub-resource it changed: the call of a call
//! event, the task of a task event, otherwise the case.
//!
//! Every message carries a resume token (续传令牌): the feed sequence of its event, when it
//! was issued, and what the stream watches. Reconnecting with it, the subscriber first
//! reads the events after it from the outbox (its backlog), then joins the hub's batches
//! from where they begin, skipping what the backlog already showed: nothing is missed or
//! repeated. Open streams are capped per caller and per replica, and end at the caller's
//! token expiry.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use minhu_grpc::{ApiError, Principal};
use minhu_proto::dispatch::v1 as pb;
use prost::Message as _;
use sha2::{Digest as _, Sha256};
use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use tokio::sync::{broadcast::error::RecvError, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Status};
use uuid::Uuid;

use super::{
    BoxStream, Dispatch, caller,
    cases::{case_pb, case_pb_of, query, scope},
    convert,
    hub::{BATCH, Item, Permit, load},
    mask::Mask,
    readable_case, uuid,
};
use crate::{
    domain::{access, model::CaseState},
    error::DispatchError,
    store::{Scope, calls, journal, tasks},
};

/// A read-only transaction that sees one consistent state of the database.
async fn snapshot(pool: &PgPool) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY").execute(&mut *tx).await?;
    Ok(tx)
}

/// What a resume token says.
#[derive(Debug)]
struct Resume {
    /// The last event the client received.
    sequence: i64,
    /// When it was issued (seconds since the epoch, the service's clock).
    issued: i64,
}

/// Resume tokens name what they were issued for by a short digest of it (the case, or
/// the encoded filter), so a token is not replayed against another watch.
fn binding(what: &[u8]) -> String {
    Sha256::digest(what)[..8].iter().map(|b| format!("{b:02x}")).collect()
}

fn token(binding: &str, sequence: i64, issued: DateTime<Utc>) -> String {
    URL_SAFE_NO_PAD.encode(format!("w1.{sequence}.{}.{binding}", issued.timestamp()))
}

/// The token's position, or INVALID_ARGUMENT on `resume_token`; `None` when empty.
fn parse_token(token: &str, binding: &str) -> Result<Option<Resume>, DispatchError> {
    if token.is_empty() {
        return Ok(None);
    }
    let malformed = || DispatchError::field("resume_token", "is not a resume token of this service");
    let text = URL_SAFE_NO_PAD.decode(token).ok().and_then(|b| String::from_utf8(b).ok()).ok_or_else(malformed)?;
    let parts: Vec<&str> = text.split('.').collect();
    let ["w1", sequence, issued, bound] = parts.as_slice() else { return Err(malformed()) };
    let sequence = sequence.parse::<i64>().ok().filter(|s| *s >= 0).ok_or_else(malformed)?;
    let issued = issued.parse::<i64>().ok().ok_or_else(malformed)?;
    if *bound != binding {
        return Err(DispatchError::field("resume_token", "was issued for another watch (another case or filter)"));
    }
    Ok(Some(Resume { sequence, issued }))
}

/// Whether the token can still be served: within the resume window, and not ahead of
/// the feed.
async fn servable(s: &Dispatch, conn: &mut PgConnection, resume: &Resume) -> Result<(), DispatchError> {
    let window = s.d.feed.resume_window;
    let oldest = s.now().timestamp() - window.as_secs() as i64;
    if resume.issued < oldest {
        return Err(ApiError::precondition(
            "RESUME_TOKEN_EXPIRED",
            "resume_token",
            format!(
                "the resume token is older than the resume window ({} minutes): re-read (GetCase/ListCases) and watch afresh",
                window.as_secs() / 60
            ),
        )
        .into());
    }
    let head = journal::head(conn).await?;
    if resume.sequence > head {
        return Err(DispatchError::field("resume_token", format!("is ahead of the feed (head {head})")));
    }
    Ok(())
}

/// `m` trimmed to the mask, with its resume token (always sent).
fn finish<M: prost::Message + Default>(mask: &Option<Mask>, m: M) -> M {
    match mask {
        Some(mask) => mask.apply(&m),
        None => m,
    }
}

/// What a subscriber does with one event.
enum Step<M> {
    Skip,
    Send(M),
    /// Send, then end the stream (the case is final).
    Last(M),
    Fail(Status),
}

/// One subscriber's stream: where it starts and what it follows.
struct Follow {
    s: Dispatch,
    p: Principal,
    permit: Permit,
    /// The case, for WatchCase (its backlog reads only its events).
    case: Option<Uuid>,
    /// The last event already shown; `None`: start where the hub's batches begin.
    after: Option<i64>,
    /// End once the backlog is sent (the case was final when the stream opened).
    end_after_backlog: bool,
}

/// Sends what `present` makes of the events after `cursor`; `false` once the stream ended.
async fn deliver<M>(
    items: &[Item],
    cursor: &mut i64,
    present: &mut impl FnMut(&Item) -> Step<M>,
    out: &mpsc::Sender<Result<M, Status>>,
) -> bool {
    for item in items {
        if item.row.sequence <= *cursor {
            continue;
        }
        *cursor = item.row.sequence;
        match present(item) {
            Step::Skip => {}
            Step::Send(m) => {
                if out.send(Ok(m)).await.is_err() {
                    return false;
                }
            }
            Step::Last(m) => {
                let _ = out.send(Ok(m)).await;
                return false;
            }
            Step::Fail(status) => {
                let _ = out.send(Err(status)).await;
                return false;
            }
        }
    }
    true
}

/// When the caller's token expires, on the runtime's clock.
fn expiry(p: &Principal) -> Option<tokio::time::Instant> {
    let left = p.expires_at? - Utc::now().timestamp();
    Some(tokio::time::Instant::now() + std::time::Duration::from_secs(left.max(0) as u64))
}

async fn expired(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Runs a subscriber: the backlog from the outbox, then the hub's batches.
async fn follow<M: Send + 'static>(
    f: Follow,
    first: Option<M>,
    out: mpsc::Sender<Result<M, Status>>,
    mut present: impl FnMut(&Item) -> Step<M> + Send + 'static,
) {
    let Follow { s, p, permit, case, after, end_after_backlog } = f;
    let _permit = permit;
    let until = expiry(&p);
    // Subscribe first: the hub's batches begin right after `live`, and the backlog
    // covers everything up to there.
    let (live, mut batches) = s.hub.subscribe();
    let mut cursor = after.unwrap_or(live);
    if let Some(first) = first
        && out.send(Ok(first)).await.is_err()
    {
        return;
    }
    while cursor < live {
        let items = match load(&s.d.pool, &s.hub.meter(), cursor, case).await {
            Ok(items) => items,
            Err(e) => {
                let _ = out.send(Err(Status::unavailable(format!("reading the feed: {e}")))).await;
                return;
            }
        };
        let last = items.last().map(|i| i.row.sequence);
        if !deliver(&items, &mut cursor, &mut present, &out).await {
            return;
        }
        if items.len() < BATCH as usize {
            break;
        }
        cursor = last.unwrap_or(cursor);
    }
    if end_after_backlog {
        return;
    }
    loop {
        let batch = tokio::select! {
            batch = batches.recv() => batch,
            _ = out.closed() => return,
            _ = expired(until) => {
                let _ = out
                    .send(Err(ApiError::Unauthenticated(
                        "token expired, reconnect with a fresh token and the resume token".into(),
                    )
                    .into()))
                    .await;
                return;
            }
        };
        let status = match batch {
            Ok(batch) => {
                if deliver(&batch, &mut cursor, &mut present, &out).await {
                    continue;
                }
                return;
            }
            Err(RecvError::Lagged(n)) => Status::from(ApiError::ResourceExhausted(format!(
                "this watch fell {n} event batches behind (the client reads too slowly): reconnect with the last resume_token"
            ))),
            Err(RecvError::Closed) => {
                Status::unavailable("the service is stopping: reconnect with the last resume_token")
            }
        };
        let _ = out.send(Err(status)).await;
        return;
    }
}

/// The case with its calls and tasks, as `p` may see it, and whether the case is final.
async fn case_snapshot(
    conn: &mut PgConnection,
    s: &Dispatch,
    p: &Principal,
    id: Uuid,
) -> Result<(pb::WatchCaseResponse, bool), DispatchError> {
    let (row, audience) = readable_case(conn, p, id, false).await?;
    let case = case_pb(conn, &s.d.cipher, p, &row, &audience).await?;
    let calls = calls::of_case(conn, id).await?.iter().map(convert::call_pb).collect();
    let tasks = tasks::of_case(conn, id).await?.iter().map(convert::task_pb).collect();
    let first = pb::WatchCaseResponse { case: Some(case), calls, tasks, ..Default::default() };
    Ok((first, row.case.state.is_final()))
}

/// Whether the event left its case closed or declined: nothing more will happen to it.
fn final_event(item: &Item) -> bool {
    CaseState::parse(&item.row.case_state).is_some_and(|s| s.is_final())
}

pub(super) async fn watch_case(
    s: &Dispatch,
    r: Request<pb::WatchCaseRequest>,
) -> Result<BoxStream<pb::WatchCaseResponse>, DispatchError> {
    let (p, req) = caller(r)?;
    let id = uuid("case_id", &req.case_id)?;
    let mask = Mask::compile("minhu.dispatch.v1.WatchCaseResponse", "read_mask", req.read_mask.as_ref())?;
    let bound = binding(format!("case:{id}").as_bytes());
    let resume = parse_token(&req.resume_token, &bound)?;
    let permit = s.hub.admit(&p.subject)?;
    let (first, after, finished) = match resume {
        None => {
            // The snapshot and its cursor come from one snapshot: the stream continues
            // exactly after what the first message shows.
            let mut tx = snapshot(&s.d.pool).await?;
            let cursor = journal::head(&mut tx).await?;
            let (first, finished) = case_snapshot(&mut tx, s, &p, id).await?;
            tx.commit().await?;
            let first = pb::WatchCaseResponse { resume_token: token(&bound, cursor, s.now()), ..finish(&mask, first) };
            (Some(first), cursor, finished)
        }
        Some(resume) => {
            let mut conn = s.d.pool.acquire().await?;
            let (row, _) = readable_case(&mut conn, &p, id, false).await?;
            servable(s, &mut conn, &resume).await?;
            (None, resume.sequence, row.case.state.is_final())
        }
    };
    let (out, rx) = mpsc::channel(16);
    let present = {
        let (s, p) = (s.clone(), p.clone());
        move |item: &Item| {
            if item.row.case_id != id {
                return Step::Skip;
            }
            let Some(view) = &item.case else { return Step::Skip };
            if !access::may_read(&p, &view.audience) {
                return Step::Fail(DispatchError::not_found("case", id).into());
            }
            let mut m = pb::WatchCaseResponse { event: Some(item.event.clone()), ..Default::default() };
            if let Some(task) = &item.task {
                m.changed_task = Some(convert::task_pb(task));
            } else if let Some(call) = &item.call {
                m.changed_call = Some(convert::call_pb(call));
            } else {
                match case_pb_of(&s.d.cipher, &p, &view.row, &view.audience, &view.parts) {
                    Ok(case) => m.case = Some(case),
                    Err(e) => return Step::Fail(e.into()),
                }
            }
            let m =
                pb::WatchCaseResponse { resume_token: token(&bound, item.row.sequence, s.now()), ..finish(&mask, m) };
            if final_event(item) { Step::Last(m) } else { Step::Send(m) }
        }
    };
    let f = Follow { s: s.clone(), p, permit, case: Some(id), after: Some(after), end_after_backlog: finished };
    tokio::spawn(follow(f, first, out, present));
    Ok(Box::pin(ReceiverStream::new(rx)))
}

pub(super) async fn watch_cases(
    s: &Dispatch,
    r: Request<pb::WatchCasesRequest>,
) -> Result<BoxStream<pb::WatchCasesResponse>, DispatchError> {
    let (p, req) = caller(r)?;
    let scope = scope(&p)?;
    let mut filter = query(req.filter.as_ref())?;
    // A street's screen asking for another street would only ever stay silent: say so.
    if let Scope::Street(own) = &scope
        && !filter.street_id.is_empty()
        && &filter.street_id != own
    {
        return Err(DispatchError::denied(format!("street `{own}` watches only its own cases")));
    }
    let mask = Mask::compile("minhu.dispatch.v1.WatchCasesResponse", "read_mask", req.read_mask.as_ref())?;
    let bound = binding(&[b"cases:".as_slice(), &req.filter.clone().unwrap_or_default().encode_to_vec()].concat());
    let resume = parse_token(&req.resume_token, &bound)?;
    let permit = s.hub.admit(&p.subject)?;
    if let Some(resume) = &resume {
        let mut conn = s.d.pool.acquire().await?;
        servable(s, &mut conn, resume).await?;
    }
    // States are matched against the event (the state it left the case in); everything
    // else against the case after the event, as ListCases filters, in memory.
    let states: Vec<String> = std::mem::take(&mut filter.states);
    let (out, rx) = mpsc::channel(64);
    let present = {
        let (s, p) = (s.clone(), p.clone());
        move |item: &Item| {
            if !states.is_empty() && !states.contains(&item.row.case_state) {
                return Step::Skip;
            }
            let Some(view) = &item.case else { return Step::Skip };
            if !access::may_read(&p, &view.audience)
                || !filter.matches_except_states(&view.row.case, &view.audience.departments)
            {
                return Step::Skip;
            }
            let case = match case_pb_of(&s.d.cipher, &p, &view.row, &view.audience, &view.parts) {
                Ok(case) => case,
                Err(e) => return Step::Fail(e.into()),
            };
            let m = pb::WatchCasesResponse {
                case: Some(case),
                event: Some(item.event.clone()),
                changed_call: item.call.as_deref().map(convert::call_pb),
                changed_task: item.task.as_deref().map(convert::task_pb),
                resume_token: String::new(),
            };
            Step::Send(pb::WatchCasesResponse {
                resume_token: token(&bound, item.row.sequence, s.now()),
                ..finish(&mask, m)
            })
        }
    };
    let f = Follow { s: s.clone(), p, permit, case: None, after: resume.map(|r| r.sequence), end_after_backlog: false };
    tokio::spawn(follow(f, None, out, present));
    Ok(Box::pin(ReceiverStream::new(rx)))
}
