//! Consultation's errors are the shell's one table ([`minhu_grpc::ApiError`]): every
//! outcome here is one of its kinds (field violations, `REASON_REQUIRED`, refusals with
//! their reasons, NOT_FOUND for what is missing or foreign alike), so the service keeps no
//! enum of its own and converts into `tonic::Status` once, there.

/// Everything a consultation RPC can fail with.
pub type ConsultationError = minhu_grpc::ApiError;

/// A deadline row operation's failure: a database fault (retriable or not, as the table
/// says), anything else a deadline this service built wrongly.
pub fn deadline_error(error: minhu_deadlines::DeadlineError) -> ConsultationError {
    match error {
        minhu_deadlines::DeadlineError::Database(e) => e.into(),
        other => ConsultationError::internal(other),
    }
}
