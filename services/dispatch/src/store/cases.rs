//! Cases (案件), their repeat links, and the case queries (ListCases, CountCases).

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, Postgres, QueryBuilder, types::Json};
use uuid::Uuid;

use minhu_trail::GENESIS;

use super::Scope;
use crate::domain::{
    access::Audience,
    model::{Case, CaseState, GeoPoint},
};

/// A case as stored, with its sealed reporter.
#[derive(Debug, Clone)]
pub struct CaseRow {
    /// The case.
    pub case: Case,
    /// The sealed reporter.
    pub reporter_sealed: Vec<u8>,
    /// Trail length.
    pub trail_length: i64,
    /// The lead case of the repeat cluster (重复诉求) this case joined; `None` on a lead.
    pub lead_case_id: Option<Uuid>,
    /// The size of the cluster this case leads (1 alone; meaningless on a repeat).
    pub cluster_size: i32,
}

/// The columns a [`CaseRow`] is read from, in [`CaseRow::from_columns`]'s order.
type CaseColumns = (Json<Case>, Vec<u8>, i64, Option<Uuid>, i32);

impl CaseRow {
    fn from_columns((doc, reporter_sealed, trail_length, lead_case_id, cluster_size): CaseColumns) -> Self {
        Self { case: doc.0, reporter_sealed, trail_length, lead_case_id, cluster_size }
    }
}

/// What the free-text filter searches (stored as `search_text`).
pub fn search_text(c: &Case) -> String {
    format!("{} {} {} {}", c.title, c.description, c.place.address, c.category).to_lowercase()
}

/// Inserts a new case. Fails with the `cases_source_reference_key` unique violation when
/// the channel's ticket number is taken.
pub async fn insert(tx: &mut PgConnection, case: &Case, reporter_sealed: &[u8]) -> Result<(), sqlx::Error> {
    let loc = case.place.location;
    sqlx::query(
        "INSERT INTO cases (id, street_id, channel, source_reference, category, urgency, state, overdue, search_text, \
         latitude, longitude, reporter_sealed, doc, trail_length, trail_head, created_at, updated_at) \
         VALUES ($1, $2, $3, NULLIF($4, ''), $5, $6, $7, $8, $9, $10, $11, $12, $13, 0, $14, $15, $15)",
    )
    .bind(case.id)
    .bind(&case.street_id)
    .bind(&case.channel)
    .bind(&case.source_reference)
    .bind(&case.category)
    .bind(case.urgency.as_str())
    .bind(case.state.as_str())
    .bind(case.overdue)
    .bind(search_text(case))
    .bind(loc.map(|l| l.lat))
    .bind(loc.map(|l| l.lng))
    .bind(reporter_sealed)
    .bind(Json(case))
    .bind(GENESIS)
    .bind(case.create_time)
    .execute(tx)
    .await?;
    Ok(())
}

/// Saves a changed case (and, when given, a newly sealed reporter).
pub async fn update(tx: &mut PgConnection, case: &Case, reporter_sealed: Option<&[u8]>) -> Result<(), sqlx::Error> {
    let loc = case.place.location;
    sqlx::query(
        "UPDATE cases SET category = $2, urgency = $3, state = $4, overdue = $5, search_text = $6, latitude = $7, \
         longitude = $8, reporter_sealed = COALESCE($9, reporter_sealed), doc = $10, updated_at = $11, closed_at = $12 \
         WHERE id = $1",
    )
    .bind(case.id)
    .bind(&case.category)
    .bind(case.urgency.as_str())
    .bind(case.state.as_str())
    .bind(case.overdue)
    .bind(search_text(case))
    .bind(loc.map(|l| l.lat))
    .bind(loc.map(|l| l.lng))
    .bind(reporter_sealed)
    .bind(Json(case))
    .bind(case.update_time)
    .bind(case.close_time)
    .execute(tx)
    .await?;
    Ok(())
}

/// A case; `lock` takes the row lock every change of the case serialises on.
pub async fn get(conn: &mut PgConnection, id: Uuid, lock: bool) -> Result<Option<CaseRow>, sqlx::Error> {
    let sql = if lock {
        "SELECT doc, reporter_sealed, trail_length, lead_case_id, cluster_size FROM cases WHERE id = $1 FOR UPDATE"
    } else {
        "SELECT doc, reporter_sealed, trail_length, lead_case_id, cluster_size FROM cases WHERE id = $1"
    };
    let row: Option<CaseColumns> = sqlx::query_as(sql).bind(id).fetch_optional(conn).await?;
    Ok(row.map(CaseRow::from_columns))
}

/// A record that belongs to a case and is locked after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Child {
    /// A call.
    Call,
    /// A task.
    Task,
    /// A rectification.
    Rectification,
}

/// Locks the case `child` `id` belongs to, then that row — the order (case, its children,
/// deadline rows) every write takes them in. The case's id, or `None` when there is no
/// such record.
pub async fn lock_with_child(conn: &mut PgConnection, child: Child, id: Uuid) -> Result<Option<Uuid>, sqlx::Error> {
    let (case_sql, child_sql) = match child {
        Child::Call => (
            "SELECT id FROM cases WHERE id = (SELECT case_id FROM calls WHERE id = $1) FOR UPDATE",
            "SELECT 1 FROM calls WHERE id = $1 FOR UPDATE",
        ),
        Child::Task => (
            "SELECT id FROM cases WHERE id = (SELECT case_id FROM tasks WHERE id = $1) FOR UPDATE",
            "SELECT 1 FROM tasks WHERE id = $1 FOR UPDATE",
        ),
        Child::Rectification => (
            "SELECT id FROM cases WHERE id = (SELECT case_id FROM rectifications WHERE id = $1) FOR UPDATE",
            "SELECT 1 FROM rectifications WHERE id = $1 FOR UPDATE",
        ),
    };
    let case: Option<(Uuid,)> = sqlx::query_as(case_sql).bind(id).fetch_optional(&mut *conn).await?;
    if case.is_some() {
        sqlx::query(child_sql).bind(id).execute(&mut *conn).await?;
    }
    Ok(case.map(|c| c.0))
}

/// The cases linked to `id` as repeats.
pub async fn related(conn: &mut PgConnection, id: Uuid) -> Result<Vec<Uuid>, sqlx::Error> {
    let rows: Vec<(Uuid,)> = sqlx::query_as(
        "SELECT related_case_id FROM case_links WHERE case_id = $1 ORDER BY created_at, related_case_id",
    )
    .bind(id)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}

/// Links `a` and `b` both ways; returns whether the link is new.
pub async fn link(tx: &mut PgConnection, a: Uuid, b: Uuid, now: DateTime<Utc>) -> Result<bool, sqlx::Error> {
    let n = sqlx::query(
        "INSERT INTO case_links (case_id, related_case_id, created_at) VALUES ($1, $2, $3), ($2, $1, $3) \
         ON CONFLICT DO NOTHING",
    )
    .bind(a)
    .bind(b)
    .bind(now)
    .execute(tx)
    .await?
    .rows_affected();
    Ok(n > 0)
}

/// Removes the link between `a` and `b`; returns whether there was one.
pub async fn unlink(tx: &mut PgConnection, a: Uuid, b: Uuid) -> Result<bool, sqlx::Error> {
    let n = sqlx::query(
        "DELETE FROM case_links WHERE (case_id = $1 AND related_case_id = $2) OR (case_id = $2 AND related_case_id = $1)",
    )
    .bind(a)
    .bind(b)
    .execute(tx)
    .await?
    .rows_affected();
    Ok(n > 0)
}

/// Waits for the intakes holding any of the lock `cells` (see `repeats::cells`) to commit;
/// held until this transaction ends. Taken in one order, so two intakes cannot deadlock.
pub async fn lock_cells(tx: &mut PgConnection, cells: &[String]) -> Result<(), sqlx::Error> {
    sqlx::query(
        "SELECT pg_advisory_xact_lock(k) FROM \
         (SELECT DISTINCT hashtextextended(c, 0) AS k FROM unnest($1::text[]) AS c ORDER BY k) AS cells",
    )
    .bind(cells)
    .execute(tx)
    .await?;
    Ok(())
}

/// Cases of `street_id` and `category` that lead their own cluster, lie in the box `sw`–`ne`
/// and are open or were closed after `closed_since` (never declined): the leads a new
/// appeal at `here` may repeat, the 16 nearest first (planar degrees; the caller measures
/// metres). Through the GiST index on the leads' points, in distance order, so a street
/// dense with cases costs no more than an empty one.
pub async fn lead_candidates(
    conn: &mut PgConnection,
    street_id: &str,
    category: &str,
    here: GeoPoint,
    (sw, ne): (GeoPoint, GeoPoint),
    closed_since: DateTime<Utc>,
) -> Result<Vec<(Uuid, GeoPoint)>, sqlx::Error> {
    let rows: Vec<(Uuid, f64, f64)> = sqlx::query_as(
        "SELECT id, latitude, longitude FROM cases \
         WHERE lead_case_id IS NULL AND latitude IS NOT NULL \
         AND point(longitude, latitude) <@ box(point($3, $4), point($5, $6)) \
         AND street_id = $1 AND category = $2 \
         AND state <> 'CASE_STATE_DECLINED' AND (closed_at IS NULL OR closed_at >= $7) \
         ORDER BY point(longitude, latitude) <-> point($8, $9), created_at, id LIMIT 16",
    )
    .bind(street_id)
    .bind(category)
    .bind(sw.lng)
    .bind(sw.lat)
    .bind(ne.lng)
    .bind(ne.lat)
    .bind(closed_since)
    .bind(here.lng)
    .bind(here.lat)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|(id, lat, lng)| (id, GeoPoint { lat, lng })).collect())
}

/// Makes `case` a repeat of `lead` and counts it on the lead; one round trip. Returns the
/// lead's new cluster size.
pub async fn join_cluster(tx: &mut PgConnection, case: Uuid, lead: Uuid) -> Result<i32, sqlx::Error> {
    let (size,): (i32,) = sqlx::query_as(
        "WITH member AS (UPDATE cases SET lead_case_id = $2 WHERE id = $1) \
         UPDATE cases SET cluster_size = cluster_size + 1 WHERE id = $2 RETURNING cluster_size",
    )
    .bind(case)
    .bind(lead)
    .fetch_one(tx)
    .await?;
    Ok(size)
}

/// Detaches the repeat `case` from `lead`: it leads a cluster of one again. Returns the
/// lead's new cluster size.
pub async fn detach(tx: &mut PgConnection, case: Uuid, lead: Uuid) -> Result<i32, sqlx::Error> {
    let (size,): (i32,) = sqlx::query_as(
        "WITH member AS (UPDATE cases SET lead_case_id = NULL, cluster_size = 1 WHERE id = $1) \
         UPDATE cases SET cluster_size = cluster_size - 1 WHERE id = $2 RETURNING cluster_size",
    )
    .bind(case)
    .bind(lead)
    .fetch_one(tx)
    .await?;
    Ok(size)
}

/// Moves `other`'s cluster (it and its members) under `lead`. Returns the ids that joined
/// (the other lead first, then its members in intake order) and the lead's new size.
pub async fn merge(tx: &mut PgConnection, lead: Uuid, other: Uuid) -> Result<(Vec<Uuid>, i32), sqlx::Error> {
    let moved: Vec<(Uuid,)> = sqlx::query_as(
        "UPDATE cases SET lead_case_id = $1, cluster_size = 1 WHERE id = $2 OR lead_case_id = $2 \
         RETURNING id",
    )
    .bind(lead)
    .bind(other)
    .fetch_all(&mut *tx)
    .await?;
    let (size,): (i32,) =
        sqlx::query_as("UPDATE cases SET cluster_size = cluster_size + $2 WHERE id = $1 RETURNING cluster_size")
            .bind(lead)
            .bind(moved.len() as i32)
            .fetch_one(&mut *tx)
            .await?;
    let mut ids: Vec<Uuid> = moved.into_iter().map(|m| m.0).filter(|id| *id != other).collect();
    // UUIDv7 ids sort in intake order.
    ids.sort();
    ids.insert(0, other);
    Ok((ids, size))
}

/// A member of a cluster as ListClusterMembers shows it.
#[derive(Debug, Clone)]
pub struct Member {
    /// The member case.
    pub id: Uuid,
    /// Its state.
    pub state: CaseState,
    /// When it was recorded.
    pub create_time: DateTime<Utc>,
}

/// One page of `lead`'s members in intake order, after `after` (create time, id).
pub async fn members(
    conn: &mut PgConnection,
    lead: Uuid,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<Member>, sqlx::Error> {
    let (t, id) = after.unzip();
    let rows: Vec<(Uuid, String, DateTime<Utc>)> = sqlx::query_as(
        "SELECT id, state, created_at FROM cases WHERE lead_case_id = $1 \
         AND ($2::timestamptz IS NULL OR (created_at, id) > ($2, $3)) ORDER BY created_at, id LIMIT $4",
    )
    .bind(lead)
    .bind(t)
    .bind(id)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, state, create_time)| Member {
            id,
            state: CaseState::parse(&state).unwrap_or(CaseState::Received),
            create_time,
        })
        .collect())
}

/// The case filters (CaseFilter), as plain values.
#[derive(Debug, Clone, Default)]
pub struct CaseQuery {
    /// `CASE_STATE_*` names; empty: any.
    pub states: Vec<String>,
    /// Street, or empty.
    pub street_id: String,
    /// Department with a non-withdrawn call, or empty.
    pub department_id: String,
    /// Category prefix, or empty.
    pub category: String,
    /// `CHANNEL_*`, or empty.
    pub channel: String,
    /// `URGENCY_*`, or empty.
    pub urgency: String,
    /// Received at or after.
    pub created_from: Option<DateTime<Utc>>,
    /// Received before.
    pub created_to: Option<DateTime<Utc>>,
    /// Only overdue.
    pub overdue_only: bool,
    /// Free text.
    pub query: String,
    /// `CALLBACK_OUTCOME_*` names; empty: any.
    pub callback_outcomes: Vec<String>,
}

impl CaseQuery {
    /// Whether a case (with its live calls' departments) passes the filters, in memory:
    /// the same conditions as [`filtered`] builds in SQL, except `states`, which the
    /// watch streams match against each event instead. The watch hub filters with it so
    /// that watchers cost no queries.
    pub fn matches_except_states(&self, c: &Case, departments: &[String]) -> bool {
        (self.street_id.is_empty() || c.street_id == self.street_id)
            && (self.department_id.is_empty() || departments.contains(&self.department_id))
            && c.category.starts_with(&self.category)
            && (self.channel.is_empty() || c.channel == self.channel)
            && (self.urgency.is_empty() || c.urgency.as_str() == self.urgency)
            && self.created_from.is_none_or(|from| c.create_time >= from)
            && self.created_to.is_none_or(|to| c.create_time < to)
            && (!self.overdue_only || c.overdue)
            && (self.query.trim().is_empty() || search_text(c).contains(&self.query.trim().to_lowercase()))
    }
}

fn filtered(select: &str, scope: &Scope, f: &CaseQuery) -> QueryBuilder<Postgres> {
    let mut q = QueryBuilder::new(select);
    q.push(" FROM cases c WHERE true");
    scope.push(&mut q);
    if !f.states.is_empty() {
        q.push(" AND c.state = ANY(").push_bind(f.states.clone()).push(")");
    }
    if !f.street_id.is_empty() {
        q.push(" AND c.street_id = ").push_bind(f.street_id.clone());
    }
    if !f.department_id.is_empty() {
        q.push(" AND EXISTS (SELECT 1 FROM calls d WHERE d.case_id = c.id AND d.state <> 'CALL_STATE_WITHDRAWN' AND d.department_id = ")
            .push_bind(f.department_id.clone())
            .push(")");
    }
    if !f.category.is_empty() {
        q.push(" AND starts_with(c.category, ").push_bind(f.category.clone()).push(")");
    }
    if !f.channel.is_empty() {
        q.push(" AND c.channel = ").push_bind(f.channel.clone());
    }
    if !f.urgency.is_empty() {
        q.push(" AND c.urgency = ").push_bind(f.urgency.clone());
    }
    if let Some(from) = f.created_from {
        q.push(" AND c.created_at >= ").push_bind(from);
    }
    if let Some(to) = f.created_to {
        q.push(" AND c.created_at < ").push_bind(to);
    }
    if f.overdue_only {
        q.push(" AND c.overdue");
    }
    if !f.callback_outcomes.is_empty() {
        // Cases stored before the callback rule carry no outcome: nothing recorded, PENDING.
        q.push(" AND COALESCE(c.doc->>'callback_outcome', 'CALLBACK_OUTCOME_PENDING') = ANY(")
            .push_bind(f.callback_outcomes.clone())
            .push(")");
    }
    if !f.query.trim().is_empty() {
        q.push(" AND strpos(c.search_text, ").push_bind(f.query.trim().to_lowercase()).push(") > 0");
    }
    q
}

/// One page of cases, newest first, after `after` (create time, id), and the total.
pub async fn list(
    conn: &mut PgConnection,
    scope: &Scope,
    f: &CaseQuery,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<(Vec<CaseRow>, i64), sqlx::Error> {
    let (total,): (i64,) = filtered("SELECT count(*)", scope, f).build_query_as().fetch_one(&mut *conn).await?;
    let mut q = filtered("SELECT c.doc, c.reporter_sealed, c.trail_length, c.lead_case_id, c.cluster_size", scope, f);
    if let Some((t, id)) = after {
        q.push(" AND (c.created_at, c.id) < (").push_bind(t).push(", ").push_bind(id).push(")");
    }
    q.push(" ORDER BY c.created_at DESC, c.id DESC LIMIT ").push_bind(limit);
    let rows: Vec<CaseColumns> = q.build_query_as().fetch_all(&mut *conn).await?;
    Ok((rows.into_iter().map(CaseRow::from_columns).collect(), total))
}

/// Which of `ids` are in `scope` and match `f` now (the live watches' filter, the same SQL
/// as ListCases).
pub async fn matching(
    conn: &mut PgConnection,
    scope: &Scope,
    f: &CaseQuery,
    ids: &[Uuid],
) -> Result<Vec<Uuid>, sqlx::Error> {
    let mut q = filtered("SELECT c.id", scope, f);
    q.push(" AND c.id = ANY(").push_bind(ids.to_vec()).push(")");
    let rows: Vec<(Uuid,)> = q.build_query_as().fetch_all(conn).await?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}

/// Cases per state, and how many are overdue.
pub async fn count(
    conn: &mut PgConnection,
    scope: &Scope,
    f: &CaseQuery,
) -> Result<(Vec<(CaseState, i64)>, i64), sqlx::Error> {
    let mut q = filtered("SELECT c.state, count(*)", scope, f);
    q.push(" GROUP BY c.state");
    let rows: Vec<(String, i64)> = q.build_query_as().fetch_all(&mut *conn).await?;
    let (overdue,): (i64,) = {
        let mut o = f.clone();
        o.overdue_only = true;
        filtered("SELECT count(*)", scope, &o).build_query_as().fetch_one(&mut *conn).await?
    };
    let mut counts: Vec<(CaseState, i64)> =
        rows.into_iter().filter_map(|(s, n)| CaseState::parse(&s).map(|s| (s, n))).collect();
    counts.sort_by_key(|(s, _)| CaseState::ALL.iter().position(|x| x == s));
    Ok((counts, overdue))
}

/// Who is involved in a case (for access and masking).
pub async fn audience(conn: &mut PgConnection, case_id: Uuid, street_id: &str) -> Result<Audience, sqlx::Error> {
    let calls: Vec<(String, bool)> = sqlx::query_as(
        "SELECT department_id, contact_shared FROM calls WHERE case_id = $1 AND state <> 'CALL_STATE_WITHDRAWN' ORDER BY created_at",
    )
    .bind(case_id)
    .fetch_all(&mut *conn)
    .await?;
    let people: Vec<(String,)> = sqlx::query_as(
        "SELECT DISTINCT g.person_id FROM designations g JOIN calls k ON k.id = g.call_id WHERE k.case_id = $1",
    )
    .bind(case_id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(Audience {
        street_id: street_id.to_owned(),
        departments: calls.iter().map(|(d, _)| d.clone()).collect(),
        contact_departments: calls.iter().filter(|(_, shared)| *shared).map(|(d, _)| d.clone()).collect(),
        designated: people.into_iter().map(|p| p.0).collect(),
    })
}
