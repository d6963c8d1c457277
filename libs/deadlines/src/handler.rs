//! What a deadline does when it fires.

use std::{error::Error, fmt, future::Future, pin::Pin};

use sqlx::PgConnection;

use crate::Deadline;

/// The effect of one kind of deadline, registered with
/// [`EngineBuilder::handler`](crate::EngineBuilder::handler).
///
/// `fire` runs inside the transaction that marks the deadline fired: the row is already
/// updated in `tx` (`state = 'fired'`, `fired_at`, `attempts` counted), and the engine
/// commits after `fire` returns `Ok`.
///
/// **Lock order.** Before the engine locks the deadline row it calls
/// [`lock_subject`](Handler::lock_subject) in the same transaction, so a handler whose
/// effect locks rows of its own (the case a call belongs to) takes them *before* the
/// deadline row — the order in which the service's requests take them when they meet or
/// cancel the deadline. Lock them there, not first in `fire`: a request holding the case
/// and cancelling the deadline while the firing holds the deadline and waits for the case
/// is a deadlock. The engine re-checks that the row is still pending and due after
/// `lock_subject`; if it is not (cancelled meanwhile), `fire` is not called. Do every database effect through `tx` and the effect
/// happens exactly once: a duplicate or late delivery finds the row no longer pending and
/// never calls `fire`. Returning an error rolls back the effect and the state change
/// together; the attempt is recorded and retried with a backoff. Effects outside the
/// database (a message sent, a call made) can repeat if the commit fails after them — keep
/// them out of handlers, or write them to an outbox in `tx`.
///
/// ```no_run
/// use minhu_deadlines::{Deadline, Handler, HandlerError};
/// use sqlx::PgConnection;
///
/// struct SignOverdue;
///
/// impl Handler for SignOverdue {
///     async fn fire(&self, tx: &mut PgConnection, deadline: &Deadline) -> Result<(), HandlerError> {
///         sqlx::query("UPDATE calls SET sign_overdue = true WHERE id = $1")
///             .bind(&deadline.subject)
///             .execute(tx)
///             .await?;
///         Ok(())
///     }
/// }
/// ```
pub trait Handler: Send + Sync + 'static {
    /// Locks, in `tx`, the rows `fire` will change that other transactions lock before the
    /// deadline row. `deadline` was read without a lock and may be cancelled by the time
    /// this returns; the engine checks again. Nothing to lock by default.
    fn lock_subject(
        &self,
        tx: &mut PgConnection,
        deadline: &Deadline,
    ) -> impl Future<Output = Result<(), HandlerError>> + Send {
        let _ = (tx, deadline);
        async { Ok(()) }
    }

    /// Applies the deadline's effect in `tx`.
    fn fire(&self, tx: &mut PgConnection, deadline: &Deadline)
    -> impl Future<Output = Result<(), HandlerError>> + Send;
}

/// A boxed future, for storing handlers of different types in one map.
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// [`Handler`] made object safe.
pub(crate) trait DynHandler: Send + Sync + 'static {
    fn lock_subject_boxed<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        deadline: &'a Deadline,
    ) -> BoxFuture<'a, Result<(), HandlerError>>;

    fn fire_boxed<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        deadline: &'a Deadline,
    ) -> BoxFuture<'a, Result<(), HandlerError>>;
}

impl<H: Handler> DynHandler for H {
    fn lock_subject_boxed<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        deadline: &'a Deadline,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(self.lock_subject(tx, deadline))
    }

    fn fire_boxed<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        deadline: &'a Deadline,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(self.fire(tx, deadline))
    }
}

/// Why a handler failed; its text is stored in `last_error`. Any error converts with `?`.
pub struct HandlerError(Box<dyn Error + Send + Sync>);

impl HandlerError {
    /// An error with just a message.
    pub fn msg(message: impl fmt::Display) -> Self {
        Self(message.to_string().into())
    }
}

// Like anyhow::Error, HandlerError deliberately does not implement `Error` itself, which
// is what lets every error type (and strings) convert into it with `?`.
impl<E: Into<Box<dyn Error + Send + Sync>>> From<E> for HandlerError {
    fn from(error: E) -> Self {
        Self(error.into())
    }
}

impl fmt::Display for HandlerError {
    /// The error and its causes, `: `-separated.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

impl fmt::Debug for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
