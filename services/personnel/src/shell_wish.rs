//! What personnel needed from the shell and did not find; each wish is worked around in this
//! crate where noted. For the lead engineer.
//!
//! 1. **A refusal whose `ErrorInfo` reason names the whole.** The contract's
//!    CreateInterviewPlan answers FAILED_PRECONDITION `INTERVIEW_SCOPE_INCOMPLETE` with one
//!    violation per missing person (`MISSING_PRINCIPAL_LEADER`, …). `ApiError::refused` takes
//!    the first violation's reason as the `ErrorInfo` reason. Wish:
//!    `ApiError::refused_as(reason, refusals)`. Worked around in
//!    [`crate::error`]'s status mapping.
//! 2. **`lock_subject` on `minhu_deadlines::Handler`.** SHELL.md names it; not yet on main.
//!    The reply-deadline handler locks the solicitation first thing in `fire`, after the
//!    engine has taken the deadline row: the other order than requests (solicitation, then
//!    deadline row). Harmless today (requests only `cancel` deadline rows after locking the
//!    solicitation; a deadlock would be retried as UNAVAILABLE / a retried firing), but
//!    should move to `lock_subject` when it lands.
