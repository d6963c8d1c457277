//! The trail (留痕): every change of a decision or plan hash-chained; an edited entry is found.

use minhu_proto::consultation::v1 as pb;

use crate::helpers::*;

#[tokio::test]
async fn a_decisions_trail_verifies_and_an_edited_entry_is_detected_at_its_sequence() {
    let app = TestApp::spawn().await;
    let d = app.pump_room_decision(5).await;
    let a = app.opinion(&d, ZHONGNANLU, "保留消防通道").await;
    app.answer(&a, pb::AdoptionResult::NotAdopted, "消防通道另行设置").await;
    let trail = app
        .leader(ZHONGNANLU)
        .list_trail_entries(pb::ListTrailEntriesRequest { subject_id: d.id.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    let types: Vec<_> = trail.entries.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        [
            "CONSULTATION_EVENT_TYPE_DECISION_CREATED",
            "CONSULTATION_EVENT_TYPE_DECISION_OPINION_SUBMITTED",
            "CONSULTATION_EVENT_TYPE_ADOPTION_RECORDED",
        ]
    );
    let verify = |app: &TestApp| {
        let mut client = app.district();
        let id = d.id.clone();
        async move { client.verify_trail(pb::VerifyTrailRequest { subject_id: id }).await.unwrap().into_inner() }
    };
    let ok = verify(&app).await;
    assert!(ok.verified, "{ok:?}");
    assert_eq!((ok.entries_checked, ok.head_hash.as_str()), (3, trail.entries[2].hash.as_str()));

    // Someone with database access softens the department's reason.
    sqlx::query("UPDATE trail_entries SET after_json = replace(after_json, '另行设置', '已采纳') WHERE subject_id = $1 AND sequence = 3")
        .bind(&d.id)
        .execute(&app.pool)
        .await
        .unwrap();
    let broken = verify(&app).await;
    assert!(!broken.verified);
    assert_eq!((broken.first_broken_sequence, broken.reason.as_str()), (3, "hash mismatch"));
}
