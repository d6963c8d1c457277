//! Domain records ↔ protobuf messages. Reading a proto enum goes through its name, so the
//! domain never sees generated types.

use chrono::{DateTime, Utc};
use minhu_grpc::{OrgKind, Principal, Role};
use minhu_proto::{common::v1 as common, dispatch::v1 as pb};

use crate::{
    domain::model::{self as m},
    events::ToProto as _,
    events::{code, duration, ts},
};

/// A time from a timestamp (`None` when unset or out of range).
pub(crate) fn time(t: Option<&prost_types::Timestamp>) -> Option<DateTime<Utc>> {
    t.and_then(|t| DateTime::from_timestamp(t.seconds, t.nanos.max(0) as u32)).map(crate::clock::to_micros)
}

fn org_kind(k: OrgKind) -> &'static str {
    match k {
        OrgKind::District => "ORGANIZATION_KIND_DISTRICT",
        OrgKind::Street => "ORGANIZATION_KIND_STREET",
        OrgKind::Department => "ORGANIZATION_KIND_DEPARTMENT",
        OrgKind::DisciplineInspection => "ORGANIZATION_KIND_DISCIPLINE_INSPECTION",
        OrgKind::OrganizationPersonnel => "ORGANIZATION_KIND_ORGANIZATION_PERSONNEL",
        OrgKind::Service => "ORGANIZATION_KIND_UNSPECIFIED",
    }
}

fn role_name(r: Role) -> &'static str {
    match r {
        Role::DistrictAdmin => "ROLE_DISTRICT_ADMIN",
        Role::DistrictOperator => "ROLE_DISTRICT_OPERATOR",
        Role::StreetLeader => "ROLE_STREET_LEADER",
        Role::StreetDispatcher => "ROLE_STREET_DISPATCHER",
        Role::GridWorker => "ROLE_GRID_WORKER",
        Role::DepartmentLeader => "ROLE_DEPARTMENT_LEADER",
        Role::DepartmentDispatcher => "ROLE_DEPARTMENT_DISPATCHER",
        Role::FieldOfficer => "ROLE_FIELD_OFFICER",
        Role::DisciplineInspector => "ROLE_DISCIPLINE_INSPECTOR",
        Role::PersonnelOfficer => "ROLE_PERSONNEL_OFFICER",
        Role::Service => "ROLE_SERVICE",
    }
}

/// The actor a principal is, as recorded.
pub(crate) fn actor(p: &Principal) -> m::Actor {
    let service = p.organization.kind == OrgKind::Service;
    let mut roles: Vec<String> = p.roles.iter().map(|r| role_name(*r).to_owned()).collect();
    roles.sort();
    m::Actor {
        person_id: if service { String::new() } else { p.subject.clone() },
        person_name: if service { String::new() } else { p.name.clone() },
        organization: m::OrgRef { kind: org_kind(p.organization.kind).into(), id: p.organization.id.clone() },
        roles,
        service: if service { p.subject.clone() } else { String::new() },
    }
}

/// The person a principal is.
pub(crate) fn person(p: &Principal) -> m::PersonRef {
    m::PersonRef {
        id: p.subject.clone(),
        name: p.name.clone(),
        department_id: if p.organization.kind == OrgKind::Department {
            p.organization.id.clone()
        } else {
            String::new()
        },
        station_id: String::new(),
    }
}

pub(crate) fn actor_pb(a: &m::Actor) -> common::Actor {
    common::Actor {
        person_id: a.person_id.clone(),
        person_name: a.person_name.clone(),
        organization: Some(common::OrganizationRef {
            kind: code(common::OrganizationKind::from_str_name(&a.organization.kind)),
            id: a.organization.id.clone(),
        }),
        roles: a.roles.iter().map(|r| code(common::Role::from_str_name(r))).collect(),
        service: a.service.clone(),
    }
}

pub(crate) fn person_pb(p: &m::PersonRef) -> common::PersonRef {
    common::PersonRef {
        id: p.id.clone(),
        name: p.name.clone(),
        department_id: p.department_id.clone(),
        station_id: p.station_id.clone(),
    }
}

pub(crate) fn point_pb(p: m::GeoPoint) -> common::GeoPoint {
    common::GeoPoint { latitude: p.lat, longitude: p.lng }
}

pub(crate) fn point(p: &common::GeoPoint) -> m::GeoPoint {
    m::GeoPoint { lat: p.latitude, lng: p.longitude }
}

pub(crate) fn place_pb(p: &m::Place) -> pb::Place {
    pb::Place { address: p.address.clone(), location: p.location.map(point_pb) }
}

pub(crate) fn file_pb(a: &m::AttachmentRef) -> common::AttachmentRef {
    common::AttachmentRef {
        id: a.id.to_string(),
        file_name: a.file_name.clone(),
        content_type: a.content_type.clone(),
        size_bytes: a.size_bytes,
        sha256: a.sha256.clone(),
    }
}

pub(crate) fn attachment_pb(a: &m::Attachment) -> pb::Attachment {
    pb::Attachment {
        id: a.file.id.to_string(),
        case_id: a.case_id.map(|c| c.to_string()).unwrap_or_default(),
        file_name: a.file.file_name.clone(),
        content_type: a.file.content_type.clone(),
        size_bytes: a.file.size_bytes,
        sha256: a.file.sha256.clone(),
        uploaded_by: Some(actor_pb(&a.uploaded_by)),
        create_time: ts(a.create_time),
        expire_time: a.expire_time.and_then(ts),
    }
}

pub(crate) fn range_pb(start: DateTime<Utc>, end: DateTime<Utc>) -> common::TimeRange {
    common::TimeRange { start_time: ts(start), end_time: ts(end) }
}

pub(crate) fn triage_pb(t: &m::Triage) -> pb::Triage {
    pb::Triage {
        decision: t.decision.to_proto(),
        reason: t.reason.clone(),
        decline_reason: code(pb::DeclineReason::from_str_name(&t.decline_reason)),
        duplicate_of_case_id: t.duplicate_of_case_id.map(|i| i.to_string()).unwrap_or_default(),
        triaged_by: Some(actor_pb(&t.triaged_by)),
        triage_time: ts(t.triage_time),
    }
}

pub(crate) fn consultation_pb(c: &m::Consultation) -> pb::Consultation {
    pb::Consultation {
        id: c.id.to_string(),
        case_id: c.case_id.to_string(),
        meeting_time: ts(c.meeting_time),
        place: Some(place_pb(&c.place)),
        attendee_person_ids: c.attendee_person_ids.clone(),
        analysis: c.analysis.clone(),
        plan: c.plan.clone(),
        task_ids: c.task_ids.iter().map(|t| t.to_string()).collect(),
        recorded_by: Some(actor_pb(&c.recorded_by)),
        create_time: ts(c.create_time),
    }
}

pub(crate) fn callback_pb(c: &m::Callback) -> pb::Callback {
    pb::Callback {
        id: c.id.to_string(),
        case_id: c.case_id.to_string(),
        method: code(pb::CallbackMethod::from_str_name(&c.method)),
        reached: c.reached,
        reporter_satisfaction: c.reporter_satisfaction.map_or(0, satisfaction_pb),
        reporter_opinion: c.reporter_opinion.clone(),
        callback_time: ts(c.callback_time),
        reporter_anonymous: c.reporter_anonymous,
        recorded_by: Some(actor_pb(&c.recorded_by)),
        create_time: ts(c.create_time),
    }
}

pub(crate) fn satisfaction_pb(s: m::Satisfaction) -> i32 {
    s.to_proto()
}

pub(crate) fn call_pb(c: &m::Call) -> pb::Call {
    pb::Call {
        id: c.id.to_string(),
        case_id: c.case_id.to_string(),
        street_id: c.street_id.clone(),
        department_id: c.department_id.clone(),
        station_id: c.station_id.clone(),
        matters: c.matters.clone(),
        expected_goal: c.expected_goal.clone(),
        staff_requirement: Some(pb::StaffRequirement {
            count: c.staff_requirement.count,
            qualification: code(common::Qualification::from_str_name(&c.staff_requirement.qualification)),
            note: c.staff_requirement.note.clone(),
        }),
        report_time: ts(c.report_time),
        report_place: Some(place_pb(&c.report_place)),
        check_in_close_time: ts(c.check_in_close_time),
        check_in_radius_meters: c.check_in_radius_meters,
        sign_deadline: ts(c.sign_deadline),
        state: c.state.to_proto(),
        signed_time: c.signed_time.and_then(ts),
        signed_by: c.signed_by.as_ref().map(person_pb),
        signed_late: c.signed_late,
        sign_duration: c.signed_time.and_then(|t| duration(c.create_time, t)),
        designations: c
            .designations
            .iter()
            .map(|d| pb::Designation {
                person: Some(person_pb(&d.person)),
                check_in_status: d.check_in_status.to_proto(),
                check_in_time: d.check_in_time.and_then(ts),
                check_in_device_time: d.check_in_device_time.and_then(ts),
                check_in_location: d.check_in_location.map(point_pb),
                check_in_distance_meters: d.check_in_distance_meters,
                check_in_recorded_by: d.check_in_recorded_by.as_ref().map(actor_pb),
                inaction_recorded: d.inaction_recorded,
                inaction_note: d.inaction_note.clone(),
            })
            .collect(),
        designate_time: c.designate_time.and_then(ts),
        check_in_closed: c.check_in_closed,
        shortfall_count: c.shortfall_count,
        contact_shared: c.contact_shared,
        contact_share_time: c.contact_share_time.and_then(ts),
        withdraw_reason: c.withdraw_reason.clone(),
        created_by: Some(actor_pb(&c.created_by)),
        create_time: ts(c.create_time),
        update_time: ts(c.update_time),
    }
}

pub(crate) fn feedback_pb(f: &m::Feedback) -> pb::Feedback {
    pb::Feedback {
        id: f.id.to_string(),
        task_id: f.task_id.to_string(),
        case_id: f.case_id.to_string(),
        department_id: f.department_id.clone(),
        text: f.text.clone(),
        handling_opinion: f.handling_opinion.clone(),
        attachments: f.attachments.iter().map(file_pb).collect(),
        is_rectification: f.is_rectification,
        state: f.state.to_proto(),
        on_time: f.on_time,
        submitted_by: Some(person_pb(&f.submitted_by)),
        submit_time: ts(f.submit_time),
        review_comment: f.review_comment.clone(),
        reviewed_by: f.reviewed_by.as_ref().map(person_pb),
        review_time: f.review_time.and_then(ts),
    }
}

pub(crate) fn task_pb(t: &m::Task) -> pb::Task {
    pb::Task {
        id: t.id.to_string(),
        case_id: t.case_id.to_string(),
        call_id: t.call_id.to_string(),
        department_id: t.department_id.clone(),
        kind: t.kind.to_proto(),
        consultation_id: t.consultation_id.map(|i| i.to_string()).unwrap_or_default(),
        rectification_id: t.rectification_id.map(|i| i.to_string()).unwrap_or_default(),
        description: t.description.clone(),
        window: Some(range_pb(t.window_start, t.window_end)),
        state: t.state.to_proto(),
        overdue: t.overdue,
        completed_on_time: t.completed_on_time,
        progress_reports: t
            .progress_reports
            .iter()
            .map(|p| pb::ProgressReport {
                id: p.id.to_string(),
                text: p.text.clone(),
                attachments: p.attachments.iter().map(file_pb).collect(),
                reported_by: Some(person_pb(&p.reported_by)),
                create_time: ts(p.create_time),
            })
            .collect(),
        feedback: t.feedback.iter().map(feedback_pb).collect(),
        create_time: ts(t.create_time),
        update_time: ts(t.update_time),
        complete_time: t.complete_time.and_then(ts),
    }
}

pub(crate) fn rating_pb(r: &m::Rating) -> pb::Rating {
    pb::Rating {
        id: r.id.to_string(),
        case_id: r.case_id.to_string(),
        street_id: r.street_id.clone(),
        department_id: r.department_id.clone(),
        call_ids: r.call_ids.iter().map(|c| c.to_string()).collect(),
        satisfaction: satisfaction_pb(r.satisfaction),
        comment: r.comment.clone(),
        rated_by: Some(person_pb(&r.rated_by)),
        create_time: ts(r.create_time),
        supersedes_rating_id: r.supersedes_rating_id.map(|i| i.to_string()).unwrap_or_default(),
        rectification_id: r.rectification_id.map(|i| i.to_string()).unwrap_or_default(),
        superseded_by_rating_id: r.superseded_by_rating_id.map(|i| i.to_string()).unwrap_or_default(),
        current: r.current,
    }
}

pub(crate) fn rectification_pb(r: &m::Rectification) -> pb::Rectification {
    pb::Rectification {
        id: r.id.to_string(),
        case_id: r.case_id.to_string(),
        department_id: r.department_id.clone(),
        rating_id: r.rating_id.to_string(),
        consultation_id: r.consultation_id.map(|i| i.to_string()).unwrap_or_default(),
        requirement: r.requirement.clone(),
        due_time: ts(r.due_time),
        state: r.state.to_proto(),
        task_id: r.task_id.to_string(),
        overdue: r.overdue,
        rerating_id: r.rerating_id.map(|i| i.to_string()).unwrap_or_default(),
        required_by: Some(person_pb(&r.required_by)),
        create_time: ts(r.create_time),
        update_time: ts(r.update_time),
    }
}

pub(crate) fn report_pb(r: &m::CaseReport) -> pb::CaseReport {
    pb::CaseReport {
        case_id: r.case_id.to_string(),
        summary: r.summary.clone(),
        department_results: r
            .department_results
            .iter()
            .map(|d| pb::DepartmentResult {
                department_id: d.department_id.clone(),
                summary: d.summary.clone(),
                feedback_ids: d.feedback_ids.iter().map(|f| f.to_string()).collect(),
            })
            .collect(),
        attachments: r.attachments.iter().map(file_pb).collect(),
        submitted_by: Some(person_pb(&r.submitted_by)),
        submit_time: ts(r.submit_time),
    }
}
