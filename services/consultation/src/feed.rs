//! The feed's head, kept current for every live stream by one LISTEN on
//! `minhu_consultation_events` (sqlx `PgListener`), with polling as the fallback: a stream wakes
//! when the head moves, and the head is re-read every `poll` interval even if notifications
//! are lost (listener reconnecting, a proxy that drops them).

use std::time::Duration;

use sqlx::{PgPool, postgres::PgListener};
use tokio::sync::watch;

use crate::store::journal;

/// The latest committed event sequence, observable.
#[derive(Debug, Clone)]
pub struct Head {
    rx: watch::Receiver<i64>,
}

impl Head {
    /// Reads the head and starts following it; the follower stops with the last `Head`.
    pub async fn start(pool: PgPool, poll: Duration) -> Result<Self, minhu_store::StoreError> {
        let mut conn = pool.acquire().await?;
        let initial = journal::head(&mut conn).await?;
        drop(conn);
        let (tx, rx) = watch::channel(initial);
        tokio::spawn(follow(pool, poll, tx));
        Ok(Self { rx })
    }

    /// A receiver that changes when the head moves.
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.rx.clone()
    }

    /// The head now.
    pub fn current(&self) -> i64 {
        *self.rx.borrow()
    }
}

async fn follow(pool: PgPool, poll: Duration, tx: watch::Sender<i64>) {
    let mut listener: Option<PgListener> = None;
    while !tx.is_closed() {
        if listener.is_none() {
            listener = match PgListener::connect_with(&pool).await {
                Ok(mut l) => l.listen(journal::CHANNEL).await.ok().map(|_| l),
                Err(_) => None,
            };
        }
        let notified = match listener.as_mut() {
            Some(l) => match tokio::time::timeout(poll, l.try_recv()).await {
                Ok(Ok(Some(n))) => n.payload().parse::<i64>().ok(),
                // The connection dropped: reconnect on the next turn.
                Ok(Ok(None)) | Ok(Err(_)) => {
                    listener = None;
                    None
                }
                Err(_) => None,
            },
            None => {
                tokio::time::sleep(poll).await;
                None
            }
        };
        let head = match notified {
            Some(seq) => Some(seq),
            None => match pool.acquire().await {
                Ok(mut conn) => journal::head(&mut conn).await.ok(),
                Err(_) => None,
            },
        };
        if let Some(head) = head {
            tx.send_if_modified(|current| {
                let moved = head > *current;
                if moved {
                    *current = head;
                }
                moved
            });
        }
    }
}
