//! Stored rows to protobuf resources.

use chrono::{DateTime, Datelike as _, NaiveDate, Utc};
use minhu_grpc::Principal;
use minhu_proto::{common::v1 as common, roster::v1 as pb};

use crate::{
    domain::{Area, mask_phone, policy},
    store::{
        organisations::{DepartmentRow, StationRow},
        people::{PersonRow, SecondmentRow},
        structure::{CommunityRow, GridRow, StreetRow},
    },
};

/// A protobuf timestamp.
pub(super) fn timestamp(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: t.timestamp(), nanos: t.timestamp_subsec_nanos() as i32 }
}

/// A protobuf date.
pub(super) fn date(d: NaiveDate) -> common::Date {
    common::Date { year: d.year(), month: d.month() as i32, day: d.day() as i32 }
}

fn point(p: crate::domain::GeoPoint) -> common::GeoPoint {
    common::GeoPoint { latitude: p.lat, longitude: p.lng }
}

fn area(a: &Area) -> (Option<common::GeoPoint>, f64, Vec<common::GeoPoint>) {
    (Some(point(a.center)), a.radius_meters, a.boundary.iter().copied().map(point).collect())
}

pub(super) fn enum_value(name: &str, parse: impl Fn(&str) -> Option<i32>) -> i32 {
    parse(name).unwrap_or_default()
}

/// A street resource.
pub(super) fn street(r: StreetRow) -> pb::Street {
    let (center, radius_meters, boundary) = area(&r.area.area());
    pb::Street {
        id: r.id,
        name: r.name,
        center,
        radius_meters,
        boundary,
        active: r.active,
        create_time: Some(timestamp(r.create_time)),
        update_time: Some(timestamp(r.update_time)),
    }
}

/// A community resource.
pub(super) fn community(r: CommunityRow) -> pb::Community {
    let (center, radius_meters, boundary) = area(&r.area.area());
    pb::Community {
        id: r.id,
        street_id: r.street_id,
        name: r.name,
        center,
        radius_meters,
        boundary,
        active: r.active,
        create_time: Some(timestamp(r.create_time)),
        update_time: Some(timestamp(r.update_time)),
    }
}

/// A grid resource.
pub(super) fn grid(r: GridRow) -> pb::Grid {
    let (center, radius_meters, boundary) = area(&r.area.area());
    pb::Grid {
        id: r.id,
        community_id: r.community_id,
        street_id: r.street_id,
        name: r.name,
        center,
        radius_meters,
        boundary,
        grid_worker_person_ids: r.grid_worker_person_ids.iter().map(ToString::to_string).collect(),
        active: r.active,
        create_time: Some(timestamp(r.create_time)),
        update_time: Some(timestamp(r.update_time)),
    }
}

/// A department resource.
pub(super) fn department(r: DepartmentRow) -> pb::Department {
    pb::Department {
        id: r.id,
        name: r.name,
        kind: enum_value(&r.kind, |s| pb::DepartmentKind::from_str_name(s).map(|k| k as i32)),
        active: r.active,
        create_time: Some(timestamp(r.create_time)),
        update_time: Some(timestamp(r.update_time)),
    }
}

/// A station resource.
pub(super) fn station(r: StationRow) -> pb::Station {
    pb::Station {
        id: r.id,
        department_id: r.department_id,
        street_id: r.street_id,
        served_street_ids: r.served_street_ids,
        name: r.name,
        kind: enum_value(&r.kind, |s| pb::StationKind::from_str_name(s).map(|k| k as i32)),
        head_person_id: r.head_person_id.map(|id| id.to_string()).unwrap_or_default(),
        head_on_party_working_committee: r.head_on_party_working_committee,
        party_working_committee_note: r.committee_note,
        active: r.active,
        create_time: Some(timestamp(r.create_time)),
        update_time: Some(timestamp(r.update_time)),
    }
}

/// A person resource, the phone masked unless `viewer` may see it.
pub(super) fn person(r: PersonRow, viewer: &Principal) -> pb::Person {
    let id = r.id.to_string();
    let visible = policy::may_see_phone(viewer, &id, &r.membership());
    let phone_masked = !visible && !r.phone.is_empty();
    pb::Person {
        phone: if phone_masked { mask_phone(&r.phone) } else { r.phone },
        phone_masked,
        id,
        name: r.name,
        employee_number: r.employee_number,
        department_id: r.department_id.unwrap_or_default(),
        station_id: r.station_id.unwrap_or_default(),
        street_id: r.street_id.unwrap_or_default(),
        qualifications: r
            .qualifications
            .iter()
            .filter_map(|q| common::Qualification::from_str_name(q).map(|q| q as i32))
            .collect(),
        position: enum_value(&r.position, |s| common::Position::from_str_name(s).map(|p| p as i32)),
        title: r.title,
        active: r.active,
        create_time: Some(timestamp(r.create_time)),
        update_time: Some(timestamp(r.update_time)),
    }
}

/// A secondment resource; `today` decides `active`.
pub(super) fn secondment(r: SecondmentRow, today: NaiveDate) -> pb::Secondment {
    pb::Secondment {
        id: r.id.to_string(),
        kind: enum_value(&r.kind, |s| pb::SecondmentKind::from_str_name(s).map(|k| k as i32)),
        person_id: r.person_id.map(|id| id.to_string()).unwrap_or_default(),
        department_id: r.department_id,
        street_id: r.street_id,
        center: enum_value(&r.center, |s| common::StreetCenter::from_str_name(s).map(|c| c as i32)),
        start_date: Some(date(r.start_date)),
        end_date: r.end_date.map(date),
        note: r.note,
        active: r.start_date <= today && r.end_date.is_none_or(|end| end >= today),
        create_time: Some(timestamp(r.create_time)),
        update_time: Some(timestamp(r.update_time)),
    }
}
