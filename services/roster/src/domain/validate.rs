//! Parse, don't validate: requests become these input types or field violations.

use chrono::NaiveDate;
use minhu_grpc::FieldViolations;
use minhu_proto::{common::v1 as common, roster::v1 as pb};
use uuid::Uuid;

use super::{Area, GeoPoint, policy::Membership};

/// Longest name accepted (street, department, person …).
pub const MAX_NAME: usize = 100;
/// Longest free text (notes, reasons, titles).
pub const MAX_TEXT: usize = 500;
/// Most boundary vertices.
pub const MAX_BOUNDARY: usize = 2000;
/// Largest radius of an area: 50 km covers any street.
pub const MAX_RADIUS_METERS: f64 = 50_000.0;

/// A human code: lowercase ASCII letters, digits, `-` and `_`, 2 to 63 characters,
/// starting with a letter or digit (e.g. `zhongnanlu`, `fangguan`).
pub fn code(v: &mut FieldViolations, field: &str, value: &str) -> String {
    let value = value.trim();
    let ok = (2..=63).contains(&value.len())
        && value.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && value.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric());
    if value.is_empty() {
        v.add(field, "must not be empty");
    } else if !ok {
        v.add(field, "must be 2-63 characters of a-z, 0-9, '-' or '_', starting with a letter or digit");
    }
    value.to_owned()
}

/// A reference to another record's code: same shape as [`code`].
pub fn reference(v: &mut FieldViolations, field: &str, value: &str) -> String {
    code(v, field, value)
}

/// An optional reference: empty is `None`.
pub fn optional_reference(v: &mut FieldViolations, field: &str, value: &str) -> Option<String> {
    if value.trim().is_empty() { None } else { Some(code(v, field, value)) }
}

/// A UUID.
pub fn uuid(v: &mut FieldViolations, field: &str, value: &str) -> Uuid {
    match Uuid::parse_str(value.trim()) {
        Ok(id) => id,
        Err(_) => {
            v.add(field, if value.trim().is_empty() { "must not be empty" } else { "must be a UUID" });
            Uuid::nil()
        }
    }
}

/// A required name.
pub fn name(v: &mut FieldViolations, field: &str, value: &str) -> String {
    v.required_text(field, value, MAX_NAME).to_owned()
}

/// A point with latitude and longitude in range.
pub fn point(v: &mut FieldViolations, field: &str, value: Option<&common::GeoPoint>) -> GeoPoint {
    let Some(p) = value else {
        v.add(field, "is required");
        return GeoPoint { lat: 0.0, lng: 0.0 };
    };
    if !(p.latitude.is_finite() && (-90.0..=90.0).contains(&p.latitude)) {
        v.add(format!("{field}.latitude"), "must be between -90 and 90");
    }
    if !(p.longitude.is_finite() && (-180.0..=180.0).contains(&p.longitude)) {
        v.add(format!("{field}.longitude"), "must be between -180 and 180");
    }
    GeoPoint { lat: p.latitude, lng: p.longitude }
}

/// The area of a street, community or grid.
pub fn area(
    v: &mut FieldViolations,
    prefix: &str,
    center: Option<&common::GeoPoint>,
    radius_meters: f64,
    boundary: &[common::GeoPoint],
) -> Area {
    let center = point(v, &format!("{prefix}.center"), center);
    if !(radius_meters.is_finite() && radius_meters > 0.0 && radius_meters <= MAX_RADIUS_METERS) {
        v.add(format!("{prefix}.radius_meters"), format!("must be above 0 and at most {MAX_RADIUS_METERS}"));
    }
    if !boundary.is_empty() && boundary.len() < 3 {
        v.add(format!("{prefix}.boundary"), "needs at least 3 vertices when set");
    }
    if boundary.len() > MAX_BOUNDARY {
        v.add(format!("{prefix}.boundary"), format!("must have at most {MAX_BOUNDARY} vertices"));
    }
    let boundary =
        boundary.iter().enumerate().map(|(i, p)| point(v, &format!("{prefix}.boundary[{i}]"), Some(p))).collect();
    Area { center, radius_meters, boundary }
}

/// A calendar date.
pub fn date(v: &mut FieldViolations, field: &str, value: Option<&common::Date>) -> Option<NaiveDate> {
    let d = value?;
    let parsed = u32::try_from(d.month)
        .ok()
        .zip(u32::try_from(d.day).ok())
        .and_then(|(m, day)| NaiveDate::from_ymd_opt(d.year, m, day));
    if parsed.is_none() {
        v.add(field, "is not a valid date");
    }
    parsed
}

/// An enum value known to this build and not UNSPECIFIED; returns its proto name.
pub fn known_enum<E: TryFrom<i32> + Copy>(
    v: &mut FieldViolations,
    field: &str,
    value: i32,
    name: impl Fn(&E) -> &'static str,
) -> String {
    match E::try_from(value) {
        Ok(e) if value != 0 => name(&e).to_owned(),
        _ => {
            v.add(field, "must be set to a known value");
            String::new()
        }
    }
}

/// A street to create or replace.
#[derive(Debug, Clone)]
pub struct StreetInput {
    /// Code.
    pub id: String,
    /// Name.
    pub name: String,
    /// Area.
    pub area: Area,
}

impl StreetInput {
    /// Validates a street resource.
    pub fn parse(s: &pb::Street, v: &mut FieldViolations) -> Self {
        Self {
            id: code(v, "street.id", &s.id),
            name: name(v, "street.name", &s.name),
            area: area(v, "street", s.center.as_ref(), s.radius_meters, &s.boundary),
        }
    }
}

/// A community to create or replace.
#[derive(Debug, Clone)]
pub struct CommunityInput {
    /// Code.
    pub id: String,
    /// Its street.
    pub street_id: String,
    /// Name.
    pub name: String,
    /// Area.
    pub area: Area,
}

impl CommunityInput {
    /// Validates a community resource.
    pub fn parse(c: &pb::Community, v: &mut FieldViolations) -> Self {
        Self {
            id: code(v, "community.id", &c.id),
            street_id: reference(v, "community.street_id", &c.street_id),
            name: name(v, "community.name", &c.name),
            area: area(v, "community", c.center.as_ref(), c.radius_meters, &c.boundary),
        }
    }
}

/// A grid to create or replace.
#[derive(Debug, Clone)]
pub struct GridInput {
    /// Code.
    pub id: String,
    /// Its community.
    pub community_id: String,
    /// Name.
    pub name: String,
    /// Area.
    pub area: Area,
    /// Grid workers (people ids).
    pub grid_workers: Vec<Uuid>,
}

impl GridInput {
    /// Validates a grid resource.
    pub fn parse(g: &pb::Grid, v: &mut FieldViolations) -> Self {
        let mut grid_workers: Vec<Uuid> = g
            .grid_worker_person_ids
            .iter()
            .enumerate()
            .map(|(i, id)| uuid(v, &format!("grid.grid_worker_person_ids[{i}]"), id))
            .collect();
        grid_workers.sort();
        grid_workers.dedup();
        Self {
            id: code(v, "grid.id", &g.id),
            community_id: reference(v, "grid.community_id", &g.community_id),
            name: name(v, "grid.name", &g.name),
            area: area(v, "grid", g.center.as_ref(), g.radius_meters, &g.boundary),
            grid_workers,
        }
    }
}

/// A department to create or replace.
#[derive(Debug, Clone)]
pub struct DepartmentInput {
    /// Code.
    pub id: String,
    /// Name.
    pub name: String,
    /// Kind (proto name).
    pub kind: String,
}

impl DepartmentInput {
    /// Validates a department resource.
    pub fn parse(d: &pb::Department, v: &mut FieldViolations) -> Self {
        Self {
            id: code(v, "department.id", &d.id),
            name: name(v, "department.name", &d.name),
            kind: known_enum(v, "department.kind", d.kind, pb::DepartmentKind::as_str_name),
        }
    }
}

/// A station to create or replace.
#[derive(Debug, Clone)]
pub struct StationInput {
    /// Code.
    pub id: String,
    /// Its department.
    pub department_id: String,
    /// The street it is located in.
    pub street_id: String,
    /// Further streets it serves.
    pub served_street_ids: Vec<String>,
    /// Name.
    pub name: String,
    /// Kind (proto name).
    pub kind: String,
    /// Its head.
    pub head_person_id: Option<Uuid>,
    /// Whether the head sits on the street's Party Working Committee.
    pub head_on_party_working_committee: bool,
    /// Why the head is not on the committee, if recorded.
    pub committee_note: String,
}

impl StationInput {
    /// Validates a station resource.
    pub fn parse(s: &pb::Station, v: &mut FieldViolations) -> Self {
        let street_id = reference(v, "station.street_id", &s.street_id);
        let mut served: Vec<String> = s
            .served_street_ids
            .iter()
            .enumerate()
            .map(|(i, id)| reference(v, &format!("station.served_street_ids[{i}]"), id))
            .filter(|id| *id != street_id)
            .collect();
        served.sort();
        served.dedup();
        let head_person_id =
            (!s.head_person_id.trim().is_empty()).then(|| uuid(v, "station.head_person_id", &s.head_person_id));
        if s.head_on_party_working_committee && head_person_id.is_none() {
            v.add("station.head_on_party_working_committee", "needs a head_person_id");
        }
        Self {
            id: code(v, "station.id", &s.id),
            department_id: reference(v, "station.department_id", &s.department_id),
            street_id,
            served_street_ids: served,
            name: name(v, "station.name", &s.name),
            kind: known_enum(v, "station.kind", s.kind, pb::StationKind::as_str_name),
            head_person_id,
            head_on_party_working_committee: s.head_on_party_working_committee,
            committee_note: v
                .optional_text("station.party_working_committee_note", &s.party_working_committee_note, 500)
                .to_owned(),
        }
    }
}

/// A person to create or replace.
#[derive(Debug, Clone)]
pub struct PersonInput {
    /// Name.
    pub name: String,
    /// Employee number.
    pub employee_number: String,
    /// Organisation.
    pub membership: Membership,
    /// Qualifications (proto names), sorted, unique.
    pub qualifications: Vec<String>,
    /// Position (proto name).
    pub position: String,
    /// Title as written.
    pub title: String,
    /// Phone, digits and `+-` only.
    pub phone: String,
}

impl PersonInput {
    /// Validates a person resource.
    pub fn parse(p: &pb::Person, v: &mut FieldViolations) -> Self {
        let department = optional_reference(v, "person.department_id", &p.department_id);
        let street = optional_reference(v, "person.street_id", &p.street_id);
        let station = optional_reference(v, "person.station_id", &p.station_id);
        let membership = match (department, street) {
            (Some(department_id), None) => Membership::Department { department_id, station_id: station },
            (None, Some(street_id)) => {
                if station.is_some() {
                    v.add("person.station_id", "only department staff belong to a station");
                }
                Membership::Street(street_id)
            }
            _ => {
                v.add("person.department_id", "exactly one of department_id and street_id must be set");
                Membership::Street(String::new())
            }
        };
        let mut qualifications: Vec<String> = p
            .qualifications
            .iter()
            .enumerate()
            .map(|(i, q)| known_enum(v, &format!("person.qualifications[{i}]"), *q, common::Qualification::as_str_name))
            .collect();
        qualifications.sort();
        qualifications.dedup();
        let position = match common::Position::try_from(p.position) {
            Ok(common::Position::Unspecified) => common::Position::Staff.as_str_name().to_owned(),
            Ok(position) => position.as_str_name().to_owned(),
            Err(_) => {
                v.add("person.position", "must be a known value");
                String::new()
            }
        };
        let phone = p.phone.trim().to_owned();
        let well_formed =
            phone.len() <= 20 && phone.chars().all(|c| c.is_ascii_digit() || c == '-' || c == '+' || c == ' ');
        v.check(well_formed, "person.phone", "must be at most 20 digits, spaces, '+' or '-'");
        Self {
            name: name(v, "person.name", &p.name),
            employee_number: v.required_text("person.employee_number", &p.employee_number, 32).to_owned(),
            membership,
            qualifications,
            position,
            title: v.optional_text("person.title", &p.title, MAX_NAME).to_owned(),
            phone,
        }
    }
}

/// A secondment or seat to create or replace.
#[derive(Debug, Clone)]
pub struct SecondmentInput {
    /// Resident or seat (proto name).
    pub kind: String,
    /// The resident; `None` for a seat.
    pub person_id: Option<Uuid>,
    /// The department.
    pub department_id: String,
    /// The street.
    pub street_id: String,
    /// The centre (proto name).
    pub center: String,
    /// First day.
    pub start_date: NaiveDate,
    /// Last day, if known.
    pub end_date: Option<NaiveDate>,
    /// Note.
    pub note: String,
}

impl SecondmentInput {
    /// Validates a secondment resource.
    pub fn parse(s: &pb::Secondment, v: &mut FieldViolations) -> Self {
        let kind = known_enum(v, "secondment.kind", s.kind, pb::SecondmentKind::as_str_name);
        let resident = s.kind == pb::SecondmentKind::Resident as i32;
        let person_id = if resident {
            Some(uuid(v, "secondment.person_id", &s.person_id))
        } else {
            if !s.person_id.is_empty() {
                v.add("secondment.person_id", "must be empty for a seat (席位)");
            }
            None
        };
        let start_date = date(v, "secondment.start_date", s.start_date.as_ref());
        if s.start_date.is_none() {
            v.add("secondment.start_date", "is required");
        }
        let end_date = date(v, "secondment.end_date", s.end_date.as_ref());
        if let (Some(start), Some(end)) = (start_date, end_date)
            && end < start
        {
            v.add("secondment.end_date", "must not be before start_date");
        }
        Self {
            kind,
            person_id,
            department_id: reference(v, "secondment.department_id", &s.department_id),
            street_id: reference(v, "secondment.street_id", &s.street_id),
            center: known_enum(v, "secondment.center", s.center, common::StreetCenter::as_str_name),
            start_date: start_date.unwrap_or_default(),
            end_date,
            note: v.optional_text("secondment.note", &s.note, MAX_TEXT).to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_lowercase_ascii() {
        let mut v = FieldViolations::new();
        assert_eq!(code(&mut v, "id", " zhongnanlu "), "zhongnanlu");
        assert!(v.is_empty());
        code(&mut v, "id", "中南路");
        code(&mut v, "id", "A");
        code(&mut v, "id", "");
        assert_eq!(v.violations().len(), 3);
    }

    #[test]
    fn out_of_range_coordinates_name_the_field() {
        let mut v = FieldViolations::new();
        let p = common::GeoPoint { latitude: 91.0, longitude: 114.3 };
        area(&mut v, "street", Some(&p), 0.0, &[]);
        let fields: Vec<_> = v.violations().iter().map(|x| x.field.as_str()).collect();
        assert_eq!(fields, ["street.center.latitude", "street.radius_meters"]);
    }

    #[test]
    fn a_person_belongs_to_exactly_one_organisation() {
        let mut v = FieldViolations::new();
        let p = pb::Person {
            name: "李明".into(),
            employee_number: "001".into(),
            department_id: "fangguan".into(),
            street_id: "zhongnanlu".into(),
            ..Default::default()
        };
        PersonInput::parse(&p, &mut v);
        assert_eq!(v.violations()[0].field, "person.department_id");
    }
}
