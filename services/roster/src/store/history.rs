//! What personnel reads from the roster: the history of station leadership changes
//! (written in the transaction of the change itself, so that no change escapes it), a
//! street's leaders with the lines of work they are in charge of, and its sections with the
//! stations each works closely with.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use super::organisations::{self, StationRow};

/// The head's position, as stored.
pub const HEAD: &str = "POSITION_STATION_HEAD";
/// A leadership-team member's position, as stored.
pub const MEMBER: &str = "POSITION_STATION_LEADERSHIP_MEMBER";

/// One recorded change.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ChangeRow {
    /// Gap-free position.
    pub sequence: i64,
    /// Station.
    pub station_id: String,
    /// Its department.
    pub department_id: String,
    /// Its street.
    pub street_id: String,
    /// The person.
    pub person_id: Uuid,
    /// Position joined or left (proto name).
    pub position: String,
    /// `LEADERSHIP_CHANGE_KIND_*`.
    pub kind: String,
    /// When.
    pub change_time: DateTime<Utc>,
}

/// Records that `person` joined (or left) `station`'s leadership in `position`.
pub async fn record(
    conn: &mut PgConnection,
    station: &StationRow,
    person: Uuid,
    position: &str,
    joined: bool,
) -> sqlx::Result<()> {
    let kind = if joined { "LEADERSHIP_CHANGE_KIND_JOINED" } else { "LEADERSHIP_CHANGE_KIND_LEFT" };
    sqlx::query(
        "INSERT INTO leadership_changes (station_id, department_id, street_id, person_id, position, kind) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&station.id)
    .bind(&station.department_id)
    .bind(&station.street_id)
    .bind(person)
    .bind(position)
    .bind(kind)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records a leadership-team membership change of `person`: `before` and `after` are the
/// station of which they were / are a leadership-team member, if any.
pub async fn record_member(
    conn: &mut PgConnection,
    person: Uuid,
    before: Option<&str>,
    after: Option<&str>,
) -> sqlx::Result<()> {
    if before == after {
        return Ok(());
    }
    for (station, joined) in [(before, false), (after, true)] {
        if let Some(id) = station
            && let Some(row) = organisations::get_station(conn, id, false).await?
        {
            record(conn, &row, person, MEMBER, joined).await?;
        }
    }
    Ok(())
}

/// Changes after `after` (and at or after `since`), of one station or all, oldest first.
pub async fn changes(
    conn: &mut PgConnection,
    after: i64,
    since: Option<DateTime<Utc>>,
    station_id: &str,
    limit: i64,
) -> sqlx::Result<Vec<ChangeRow>> {
    sqlx::query_as(
        "SELECT sequence, station_id, department_id, street_id, person_id, position, kind, change_time \
         FROM leadership_changes WHERE sequence > $1 AND ($2::timestamptz IS NULL OR change_time >= $2) \
         AND ($3 = '' OR station_id = $3) ORDER BY sequence LIMIT $4",
    )
    .bind(after)
    .bind(since)
    .bind(station_id)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// A street leader as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LeaderRow {
    /// The person.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// Title.
    pub title: String,
    /// Position (proto name).
    pub position: String,
    /// Lines of work in charge of (`DEPARTMENT_KIND_*`).
    pub areas: Vec<String>,
}

/// The active principal leaders and leaders in charge of a street, principal leaders first.
pub async fn street_leaders(conn: &mut PgConnection, street_id: &str) -> sqlx::Result<Vec<LeaderRow>> {
    sqlx::query_as(
        "SELECT p.id, p.name, p.title, p.position, \
         coalesce(array_agg(a.department_kind ORDER BY a.department_kind) \
                  FILTER (WHERE a.department_kind IS NOT NULL), '{}') AS areas \
         FROM people p LEFT JOIN street_leader_areas a ON a.person_id = p.id \
         WHERE p.street_id = $1 AND p.active \
         AND p.position IN ('POSITION_STREET_PRINCIPAL_LEADER', 'POSITION_STREET_LEADER_IN_CHARGE') \
         GROUP BY p.id ORDER BY p.position = 'POSITION_STREET_LEADER_IN_CHARGE', p.name, p.id",
    )
    .bind(street_id)
    .fetch_all(conn)
    .await
}

/// Sets the lines of work a leader is in charge of (seed).
pub async fn set_leader_areas(conn: &mut PgConnection, person: Uuid, areas: &[&str]) -> sqlx::Result<()> {
    for area in areas {
        sqlx::query(
            "INSERT INTO street_leader_areas (person_id, department_kind) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(person)
        .bind(area)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// A street section as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SectionRow {
    /// Code.
    pub id: String,
    /// Street.
    pub street_id: String,
    /// Name.
    pub name: String,
    /// Head.
    pub head_person_id: Option<Uuid>,
    /// Stations it works closely with.
    pub station_ids: Vec<String>,
}

/// A street's sections, of those working with `station_id` when it is not empty.
pub async fn sections(conn: &mut PgConnection, street_id: &str, station_id: &str) -> sqlx::Result<Vec<SectionRow>> {
    sqlx::query_as(
        "SELECT s.id, s.street_id, s.name, s.head_person_id, \
         coalesce(array_agg(l.station_id ORDER BY l.station_id) FILTER (WHERE l.station_id IS NOT NULL), '{}') \
           AS station_ids \
         FROM street_sections s LEFT JOIN street_section_stations l ON l.section_id = s.id \
         WHERE s.street_id = $1 GROUP BY s.id \
         HAVING $2 = '' OR $2 = ANY(array_agg(l.station_id)) ORDER BY s.id",
    )
    .bind(street_id)
    .bind(station_id)
    .fetch_all(conn)
    .await
}

/// Inserts a section and its station links unless it exists (seed); whether it was new.
pub async fn insert_section(
    conn: &mut PgConnection,
    id: &str,
    street_id: &str,
    name: &str,
    head: Option<Uuid>,
    station_ids: &[String],
) -> sqlx::Result<bool> {
    let inserted = sqlx::query(
        "INSERT INTO street_sections (id, street_id, name, head_person_id) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(id)
    .bind(street_id)
    .bind(name)
    .bind(head)
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1;
    for station in station_ids {
        sqlx::query(
            "INSERT INTO street_section_stations (section_id, station_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(station)
        .execute(&mut *conn)
        .await?;
    }
    Ok(inserted)
}
