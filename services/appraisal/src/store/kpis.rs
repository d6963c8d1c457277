//! District KPIs (街道以下解决率 and friends) from the consumed events of a range.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

/// One street's figures.
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct KpiRow {
    /// The street.
    pub street_id: String,
    /// 受理.
    pub cases_received: i64,
    /// 办结.
    pub cases_closed: i64,
    /// 街道自办.
    pub closed_by_street_alone: i64,
    /// Declined.
    pub cases_declined: i64,
    /// Declined as out of jurisdiction.
    pub declined_out_of_jurisdiction: i64,
    /// Calls started.
    pub calls_started: i64,
    /// Calls signed.
    pub calls_signed: i64,
    /// Σ sign durations, ms.
    pub sign_millis: i64,
    /// 签收超时.
    pub sign_overdue: i64,
    /// 慢到位.
    pub check_in_late: i64,
    /// 不到位, shortfalls included.
    pub check_in_absent: i64,
    /// 任务超时 (regular tasks).
    pub task_overdue: i64,
    /// 整改.
    pub rectifications: i64,
    /// Rectifications overdue.
    pub rectification_overdue: i64,
}

/// Per street, by street id, over events in `[start, end)`.
pub async fn by_street(conn: &mut PgConnection, start: DateTime<Utc>, end: DateTime<Utc>) -> sqlx::Result<Vec<KpiRow>> {
    sqlx::query_as(
        "SELECT street_id,
           count(*) FILTER (WHERE event_type = 'EVENT_TYPE_CASE_CREATED') AS cases_received,
           count(*) FILTER (WHERE event_type = 'EVENT_TYPE_CASE_CLOSED') AS cases_closed,
           count(*) FILTER (WHERE event_type = 'EVENT_TYPE_CASE_CLOSED' AND qualifier = 'ALONE') AS closed_by_street_alone,
           count(*) FILTER (WHERE event_type = 'EVENT_TYPE_CASE_TRIAGED' AND qualifier LIKE 'DECLINE_REASON_%') AS cases_declined,
           count(*) FILTER (WHERE event_type = 'EVENT_TYPE_CASE_TRIAGED' AND qualifier = 'DECLINE_REASON_OUT_OF_JURISDICTION')
             AS declined_out_of_jurisdiction,
           count(*) FILTER (WHERE event_type = 'EVENT_TYPE_CALL_STARTED') AS calls_started,
           count(*) FILTER (WHERE event_type = 'EVENT_TYPE_CALL_SIGNED') AS calls_signed,
           coalesce(sum(amount) FILTER (WHERE event_type = 'EVENT_TYPE_CALL_SIGNED'), 0)::bigint AS sign_millis,
           count(*) FILTER (WHERE event_type = 'EVENT_TYPE_CALL_SIGN_OVERDUE') AS sign_overdue,
           count(*) FILTER (WHERE event_type = 'EVENT_TYPE_CHECK_IN_LATE') AS check_in_late,
           (count(*) FILTER (WHERE event_type = 'EVENT_TYPE_CHECK_IN_ABSENT')
             + coalesce(sum(amount) FILTER (WHERE event_type = 'EVENT_TYPE_CHECK_IN_CLOSED'), 0))::bigint AS check_in_absent,
           count(*) FILTER (WHERE event_type = 'EVENT_TYPE_TASK_OVERDUE' AND qualifier = 'TASK_KIND_REGULAR') AS task_overdue,
           count(*) FILTER (WHERE event_type = 'EVENT_TYPE_RECTIFICATION_REQUIRED') AS rectifications,
           count(*) FILTER (WHERE event_type = 'EVENT_TYPE_RECTIFICATION_OVERDUE') AS rectification_overdue
         FROM consumed_events WHERE occur_time >= $1 AND occur_time < $2
         GROUP BY street_id ORDER BY street_id",
    )
    .bind(start)
    .bind(end)
    .fetch_all(conn)
    .await
}
