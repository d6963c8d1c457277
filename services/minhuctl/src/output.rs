//! How things print: one line a case, call, trail entry or score; Beijing time.

use chrono::{DateTime, FixedOffset, TimeZone as _, Utc};
use minhu_proto::{appraisal::v1 as appraisal, common::v1 as common, dispatch::v1 as dispatch};

/// Times print in China Standard Time: that is what the people reading them live in.
fn local(t: Option<&prost_types::Timestamp>) -> String {
    let Some(t) = t else { return "-".into() };
    let cst = FixedOffset::east_opt(8 * 3600).expect("+08:00 is a valid offset");
    match Utc.timestamp_opt(t.seconds, t.nanos.max(0) as u32).single() {
        Some(utc) => DateTime::<FixedOffset>::from(utc).with_timezone(&cst).format("%m-%d %H:%M:%S").to_string(),
        None => "?".into(),
    }
}

/// `CASE_STATE_IN_CONSULTATION` → `in_consultation`.
pub(crate) fn state_name(state: i32) -> String {
    dispatch::CaseState::try_from(state)
        .map(|s| s.as_str_name().trim_start_matches("CASE_STATE_").to_ascii_lowercase())
        .unwrap_or_else(|_| state.to_string())
}

fn enum_name(name: &str, prefix: &str) -> String {
    name.trim_start_matches(prefix).to_ascii_lowercase()
}

fn actor(a: Option<&common::Actor>) -> String {
    match a {
        Some(a) if !a.person_name.is_empty() => a.person_name.clone(),
        Some(a) if !a.service.is_empty() => a.service.clone(),
        Some(a) => a.person_id.clone(),
        None => "-".into(),
    }
}

pub(crate) fn case_header() -> String {
    format!("{:<36}  {:<12} {:<16} {:<15} {}", "CASE", "STREET", "STATE", "CREATED", "TITLE")
}

pub(crate) fn case_line(c: &dispatch::Case) -> String {
    let overdue = if c.overdue { " [overdue]" } else { "" };
    format!(
        "{:<36}  {:<12} {:<16} {:<15} {}{overdue}",
        c.id,
        c.street_id,
        state_name(c.state),
        local(c.create_time.as_ref()),
        c.title
    )
}

pub(crate) fn case_detail(c: &dispatch::Case) -> String {
    let place = c.place.as_ref().map(|p| p.address.clone()).unwrap_or_default();
    let mut out = format!(
        "{}  {}\n  state     {}\n  street    {} / {} / {}\n  place     {}\n  category  {}   urgency {}\n  created   {}",
        c.id,
        c.title,
        state_name(c.state),
        c.street_id,
        c.community_id,
        c.grid_id,
        place,
        c.category,
        enum_name(c.urgency().as_str_name(), "URGENCY_"),
        local(c.create_time.as_ref()),
    );
    if !c.related_case_ids.is_empty() {
        out.push_str(&format!("\n  repeats   {}", c.related_case_ids.join(", ")));
    }
    if c.close_time.is_some() {
        out.push_str(&format!("\n  closed    {}  {}", local(c.close_time.as_ref()), c.close_summary));
    }
    out
}

pub(crate) fn call_line(call: &dispatch::Call) -> String {
    let late = if call.signed_late { " (late)" } else { "" };
    let present = call.designations.len();
    format!(
        "  call {:<14} {:<18} signed {}{late}  people {present}",
        call.department_id,
        enum_name(call.state().as_str_name(), "CALL_STATE_"),
        local(call.signed_time.as_ref()),
    )
}

pub(crate) fn trail_line(e: &dispatch::TrailEntry) -> String {
    format!(
        "  {:>4}  {}  {:<28} {:<22} {}…",
        e.sequence,
        local(e.occur_time.as_ref()),
        enum_name(e.event_type().as_str_name(), "EVENT_TYPE_"),
        actor(e.actor.as_ref()),
        &e.hash.get(..12).unwrap_or(&e.hash),
    )
}

pub(crate) fn verdict(v: &dispatch::VerifyTrailResponse) -> String {
    if v.verified {
        format!("trail verified: {} entries, head {}", v.entries_checked, v.head_hash)
    } else {
        format!("TRAIL BROKEN at entry {}: {}", v.first_broken_sequence, v.reason)
    }
}

pub(crate) fn watch_line(u: &dispatch::WatchCasesResponse) -> String {
    let (case_id, title, state) = u.case.as_ref().map_or((String::new(), String::new(), String::new()), |c| {
        (c.id.clone(), c.title.clone(), state_name(c.state))
    });
    let (event, when) = u.event.as_ref().map_or((String::new(), "-".into()), |e| {
        (enum_name(e.event_type().as_str_name(), "EVENT_TYPE_"), local(e.occur_time.as_ref()))
    });
    format!("{when}  {case_id}  {event:<28} now {state:<16} {title}")
}

fn percent(bp: Option<i32>) -> String {
    bp.map_or_else(|| "-".into(), |bp| format!("{:.1}%", f64::from(bp) / 100.0))
}

pub(crate) fn score_header() -> String {
    format!(
        "{:>4}  {:<12} {:>6} {:>9} {:>9} {:>9} {:>9}",
        "RANK", "DEPARTMENT", "CALLS", "响应率", "办结率", "满意率", "综合"
    )
}

pub(crate) fn score_line(s: &appraisal::DepartmentScore) -> String {
    format!(
        "{:>4}  {:<12} {:>6} {:>9} {:>9} {:>9} {:>9}",
        if s.rank == 0 { "-".into() } else { s.rank.to_string() },
        s.department_id,
        s.calls_count,
        percent(s.response_rate_bp),
        percent(s.completion_rate_bp),
        percent(s.satisfaction_rate_bp),
        percent(s.composite_bp),
    )
}
