//! The call aggregate's rules (呼叫): each method takes the facts, changes the call and
//! returns the [`Decision`] — the event to journal and the deadlines it schedules or cancels
//! — or the [`Refusal`] that names the rule. Handlers lock, call one of these, save.

use chrono::{DateTime, TimeDelta, Utc};

use super::{
    Refusal,
    deadlines::{self, CheckInOutcome, Timeliness},
    events::{CallEvent, CallView, DeadlineEffect, DeadlineKind, Decision},
    geo,
    model::{Actor, Call, CheckInStatus, Designation, GeoPoint, PersonRef},
    state,
};

fn person_subject(person_id: &str) -> String {
    format!("people/{person_id}")
}

impl Call {
    fn view(&self) -> CallView {
        CallView { id: self.id, state: self.state, signed_late: None, withdraw_reason: None }
    }

    /// 签收 by `by` at `now`: late once the sign deadline has passed; its deadline is moot.
    pub fn sign(&mut self, by: PersonRef, now: DateTime<Utc>) -> Result<Decision, Refusal> {
        let before = self.state;
        self.state = state::sign(self.state)?;
        self.signed_time = Some(now);
        self.signed_by = Some(by);
        self.signed_late = deadlines::sign_outcome(now, self.sign_deadline) == Timeliness::Late;
        self.update_time = now;
        Ok(Decision {
            event: CallEvent::Signed {
                before,
                call: CallView { signed_late: Some(self.signed_late), ..self.view() },
                sign_deadline: self.sign_deadline,
                signed_time: now,
                sign_duration: now - self.create_time,
            },
            deadlines: vec![DeadlineEffect::Cancel { kind: DeadlineKind::Sign, subject: self.id }],
        })
    }

    /// The sign deadline's firing at `now` (签收超时): PENDING_SIGN → SIGN_OVERDUE, or
    /// nothing to record (signed or withdrawn meanwhile, or not yet passed).
    pub fn mark_sign_overdue(&mut self, now: DateTime<Utc>) -> Option<Decision> {
        if !deadlines::passed(self.sign_deadline, now) {
            return None;
        }
        let before = self.state;
        self.state = state::sign_overdue(self.state)?;
        self.update_time = now;
        Some(Decision {
            event: CallEvent::SignOverdue { before, call: self.view(), sign_deadline: self.sign_deadline },
            deadlines: vec![],
        })
    }

    /// 拟定人选: `people` (the roster found them eligible) replace the designation; who
    /// already checked in stays.
    pub fn designate(&mut self, people: Vec<PersonRef>, now: DateTime<Utc>) -> Result<Decision, Refusal> {
        let next = state::designate(self.state, deadlines::passed(self.report_time, now))?;
        let before = self.clone();
        let designations: Vec<Designation> = people
            .into_iter()
            .map(|person| {
                self.designations.iter().find(|d| d.person.id == person.id).cloned().unwrap_or(Designation {
                    person,
                    check_in_status: CheckInStatus::Pending,
                    check_in_time: None,
                    check_in_device_time: None,
                    check_in_location: None,
                    check_in_distance_meters: 0.0,
                    check_in_recorded_by: None,
                    inaction_recorded: false,
                    inaction_note: String::new(),
                })
            })
            .collect();
        if let Some(gone) = self.designations.iter().find(|d| {
            d.check_in_status != CheckInStatus::Pending && !designations.iter().any(|n| n.person.id == d.person.id)
        }) {
            return Err(Refusal::new(
                "ALREADY_CHECKED_IN",
                person_subject(&gone.person.id),
                "a person who checked in cannot be removed",
            ));
        }
        let replaced = !self.designations.is_empty();
        self.designations = designations;
        self.state = next;
        self.designate_time = Some(now);
        self.update_time = now;
        Ok(Decision {
            event: CallEvent::Designated { before: Box::new(before), after: Box::new(self.clone()), replaced },
            deadlines: vec![],
        })
    }

    /// 报到 of `person_id` at `location` at `now` (recorded by `on_behalf` when the street
    /// checks a person in): on time by the report time, late until the window closes, and
    /// within the check-in radius of the report place.
    pub fn check_in(
        &mut self,
        person_id: &str,
        location: GeoPoint,
        device_time: Option<DateTime<Utc>>,
        on_behalf: Option<Actor>,
        now: DateTime<Utc>,
    ) -> Result<Decision, Refusal> {
        let subject = person_subject(person_id);
        let Some(i) = self.designations.iter().position(|d| d.person.id == person_id) else {
            return Err(Refusal::new("NOT_DESIGNATED", subject, "the person is not designated for this call"));
        };
        state::may_check_in(self.designations[i].check_in_status, person_id)?;
        let outcome = deadlines::check_in_outcome(now, self.report_time, self.check_in_close_time);
        if outcome == CheckInOutcome::Closed || self.check_in_closed {
            return Err(Refusal::new("CHECK_IN_CLOSED", subject, "the check-in window has closed"));
        }
        let distance = self.report_place.location.map_or(0.0, |place| geo::distance_meters(place, location));
        if self.report_place.location.is_some() && distance > self.check_in_radius_meters {
            return Err(Refusal::new(
                "OUT_OF_RANGE",
                subject,
                format!("{distance:.0} m from the report place; at most {:.0} m", self.check_in_radius_meters),
            ));
        }
        let (status, lateness) = match outcome {
            CheckInOutcome::Late(by) => (CheckInStatus::Late, by),
            _ => (CheckInStatus::OnTime, TimeDelta::zero()),
        };
        let before = self.designations[i].clone();
        let d = &mut self.designations[i];
        d.check_in_status = status;
        d.check_in_time = Some(now);
        d.check_in_device_time = device_time;
        d.check_in_location = Some(location);
        d.check_in_distance_meters = distance;
        d.check_in_recorded_by = on_behalf;
        let after = d.clone();
        self.update_time = now;
        Ok(Decision {
            event: CallEvent::CheckedIn {
                before: Box::new(before),
                after: Box::new(after),
                report_time: self.report_time,
                lateness,
            },
            deadlines: vec![],
        })
    }

    /// 推送群众联系方式 to the signed department; `None` when it already was (nothing to
    /// record), refused when the reporter asked for confidentiality (about `case`).
    pub fn share_contact(
        &mut self,
        reporter_confidential: bool,
        case: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Decision>, Refusal> {
        state::require_signed(self.state)?;
        if reporter_confidential {
            return Err(Refusal::new("REPORTER_CONFIDENTIAL", case, "the reporter asked for confidentiality"));
        }
        if self.contact_shared {
            return Ok(None);
        }
        self.contact_shared = true;
        self.contact_share_time = Some(now);
        self.update_time = now;
        Ok(Some(Decision { event: CallEvent::ContactShared { call: self.id }, deadlines: vec![] }))
    }

    /// 到位不作为 of `person_id`, who checked in: once per person and call, because
    /// appraisal and referrals count each once.
    pub fn record_inaction(&mut self, person_id: &str, note: &str, now: DateTime<Utc>) -> Result<Decision, Refusal> {
        let subject = person_subject(person_id);
        let Some(d) = self.designations.iter_mut().find(|d| d.person.id == person_id) else {
            return Err(Refusal::new("NOT_DESIGNATED", subject, "the person is not designated for this call"));
        };
        if !matches!(d.check_in_status, CheckInStatus::OnTime | CheckInStatus::Late) {
            return Err(Refusal::new(
                "NOT_CHECKED_IN",
                subject,
                "inaction (到位不作为) is recorded of a person who checked in",
            ));
        }
        if d.inaction_recorded {
            return Err(Refusal::new(
                "INACTION_ALREADY_RECORDED",
                subject,
                "inaction was already recorded for this person on this call",
            ));
        }
        d.inaction_recorded = true;
        d.inaction_note = note.to_owned();
        self.update_time = now;
        Ok(Decision {
            event: CallEvent::InactionRecorded { person_id: person_id.to_owned(), note: note.to_owned() },
            deadlines: vec![],
        })
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;
    use crate::domain::{
        events::EventKind,
        model::{CallState, Place, StaffRequirement},
    };

    const PUMP_ROOM: GeoPoint = GeoPoint { lat: 30.5335, lng: 114.3378 };

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default()
    }

    fn person(id: &str) -> PersonRef {
        PersonRef { id: id.into(), name: id.into(), department_id: "gongan".into(), station_id: String::new() }
    }

    fn call() -> Call {
        Call {
            id: Uuid::now_v7(),
            case_id: Uuid::now_v7(),
            street_id: "zhongnanlu".into(),
            department_id: "gongan".into(),
            station_id: String::new(),
            matters: "水泵房".into(),
            expected_goal: "恢复原状".into(),
            staff_requirement: StaffRequirement { count: 1, qualification: String::new(), note: String::new() },
            report_time: t0() + TimeDelta::hours(2),
            report_place: Place { address: "海运宿舍".into(), location: Some(PUMP_ROOM) },
            check_in_close_time: t0() + TimeDelta::hours(3),
            check_in_radius_meters: 200.0,
            sign_deadline: t0() + TimeDelta::minutes(30),
            state: CallState::PendingSign,
            signed_time: None,
            signed_by: None,
            signed_late: false,
            designations: vec![],
            designate_time: None,
            check_in_closed: false,
            shortfall_count: 0,
            contact_shared: false,
            contact_share_time: None,
            withdraw_reason: String::new(),
            created_by: Actor::dispatch_service(),
            create_time: t0(),
            update_time: t0(),
        }
    }

    #[test]
    fn signing_at_the_deadline_is_on_time_after_it_late_and_it_cancels_the_sign_deadline() {
        let mut on_time = call();
        let decision = on_time.sign(person("p1"), on_time.sign_deadline).unwrap();
        assert!(!on_time.signed_late);
        assert_eq!(decision.event.kind(), EventKind::CallSigned);
        assert_eq!(decision.deadlines, vec![DeadlineEffect::Cancel { kind: DeadlineKind::Sign, subject: on_time.id }]);

        let mut late = call();
        late.sign(person("p1"), late.sign_deadline + TimeDelta::seconds(1)).unwrap();
        assert!(late.signed_late);
        assert_eq!(late.sign(person("p1"), t0()).unwrap_err().reason, "CALL_ALREADY_SIGNED");
    }

    #[test]
    fn a_sign_deadline_firing_marks_an_unsigned_call_overdue_once_and_a_signed_one_never() {
        let mut unsigned = call();
        assert!(unsigned.mark_sign_overdue(unsigned.sign_deadline).is_none(), "met at its instant");
        let fired = unsigned.mark_sign_overdue(unsigned.sign_deadline + TimeDelta::seconds(1)).unwrap();
        assert_eq!(fired.event.kind(), EventKind::CallSignOverdue);
        assert!(unsigned.mark_sign_overdue(unsigned.sign_deadline + TimeDelta::hours(1)).is_none());

        let mut signed = call();
        signed.sign(person("p1"), t0()).unwrap();
        assert!(signed.mark_sign_overdue(signed.sign_deadline + TimeDelta::seconds(1)).is_none());
    }

    #[test]
    fn a_check_in_is_on_time_late_or_refused_by_time_and_distance() {
        let mut c = call();
        c.sign(person("p1"), t0()).unwrap();
        c.designate(vec![person("p1"), person("p2"), person("p3")], t0()).unwrap();
        let on_time = c.check_in("p1", PUMP_ROOM, None, None, c.report_time).unwrap();
        assert_eq!(on_time.event.kind(), EventKind::CheckInOnTime);
        let late = c.check_in("p2", PUMP_ROOM, None, None, c.report_time + TimeDelta::minutes(5)).unwrap();
        assert_eq!(late.event.kind(), EventKind::CheckInLate);
        let far = GeoPoint { lat: 30.5435, lng: 114.3378 };
        assert_eq!(c.check_in("p3", far, None, None, c.report_time).unwrap_err().reason, "OUT_OF_RANGE");
        assert_eq!(c.check_in("p1", PUMP_ROOM, None, None, c.report_time).unwrap_err().reason, "ALREADY_CHECKED_IN");
        assert_eq!(c.check_in("p9", PUMP_ROOM, None, None, c.report_time).unwrap_err().reason, "NOT_DESIGNATED");
        let closed = c.check_in_close_time;
        assert_eq!(c.check_in("p3", PUMP_ROOM, None, None, closed).unwrap_err().reason, "CHECK_IN_CLOSED");
    }

    #[test]
    fn who_checked_in_cannot_be_dropped_from_a_designation() {
        let mut c = call();
        c.sign(person("p1"), t0()).unwrap();
        c.designate(vec![person("p1")], t0()).unwrap();
        c.check_in("p1", PUMP_ROOM, None, None, c.report_time - TimeDelta::minutes(1)).unwrap();
        assert_eq!(c.designate(vec![person("p2")], t0()).unwrap_err().reason, "ALREADY_CHECKED_IN");
    }
}
