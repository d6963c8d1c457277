//! The task aggregate's rules (任务): reviewing its feedback (审核).

use chrono::{DateTime, Utc};

use super::{
    Refusal,
    events::{DeadlineEffect, DeadlineKind, TaskDecision, TaskEvent},
    model::{Feedback, FeedbackState, PersonRef, ReviewDecision, Task},
    state,
};

impl Task {
    /// 审核 of `feedback` by `by` at `now`. Accepted: the task is completed (on time when
    /// the feedback was), its window and its rectification's due time are moot. Returned with
    /// `comment`: the task is open again and its window counts again — at once if it has
    /// ended, since a task sent back after its window is a task not completed in it.
    pub fn review(
        &mut self,
        feedback: &mut Feedback,
        decision: ReviewDecision,
        comment: String,
        by: PersonRef,
        now: DateTime<Utc>,
    ) -> Result<TaskDecision, Refusal> {
        state::may_review(&feedback.id.to_string(), feedback.state)?;
        let before = (self.state, feedback.state);
        self.state = state::review(self.state, decision)?;
        feedback.state = match decision {
            ReviewDecision::Accept => FeedbackState::Accepted,
            ReviewDecision::Return => FeedbackState::Returned,
        };
        feedback.review_comment = comment;
        feedback.reviewed_by = Some(by);
        feedback.review_time = Some(now);
        if decision == ReviewDecision::Accept {
            self.completed_on_time = feedback.on_time;
            self.complete_time = Some(now);
        }
        self.update_time = now;
        let (task, reviewed) = (Box::new(self.clone()), Box::new(feedback.clone()));
        Ok(match decision {
            ReviewDecision::Accept => TaskDecision {
                event: TaskEvent::Completed { task, feedback: reviewed, before },
                deadlines: std::iter::once(DeadlineEffect::Cancel { kind: DeadlineKind::Task, subject: self.id })
                    .chain(
                        self.rectification_id
                            .map(|r| DeadlineEffect::Cancel { kind: DeadlineKind::Rectification, subject: r }),
                    )
                    .collect(),
            },
            ReviewDecision::Return => TaskDecision {
                event: TaskEvent::Returned { task, feedback: reviewed, before },
                deadlines: vec![DeadlineEffect::Schedule {
                    kind: DeadlineKind::Task,
                    subject: self.id,
                    due: self.window_end,
                }],
            },
        })
    }
}
