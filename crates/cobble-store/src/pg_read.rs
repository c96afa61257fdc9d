//! PostgreSQL connections for single statements outside a transaction (the hot reads, the
//! lone nonce redemption of a POST-as-GET), lent without sqlx's pool round trips (issue 10).
//!
//! sqlx's pool pings a connection whenever it comes back (a round trip, in a task of its
//! own), and nearly every read of a request is one statement: a ping per statement, which
//! doubled the round trips of the reads and woke PostgreSQL for each. These connections wait
//! in a plain list between uses. One idle for a while is pinged before it is lent; one whose
//! statement did not finish (an error, or a request dropped mid-statement) is closed rather
//! than put back, so a connection taken from the list is always outside any statement and
//! any transaction. At most `max` are open at once, as many as sqlx's pool beside them.

use crate::StoreError;
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, SemaphorePermit};

/// The connections, idle ones in a list.
pub(crate) struct Conns {
    options: PgConnectOptions,
    idle: Mutex<Vec<(PgConnection, Instant)>>,
    permits: Semaphore,
    max: usize,
    /// How long a caller waits for a connection before the store counts as unavailable.
    wait: Duration,
}

impl std::fmt::Debug for Conns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conns")
            .field("available", &self.permits.available_permits())
            .finish_non_exhaustive()
    }
}

/// A connection lent for one statement or a few; back in the list only after [`Lent::finish`].
pub(crate) struct Lent<'a> {
    conns: &'a Conns,
    conn: Option<PgConnection>,
    finished: bool,
    _permit: SemaphorePermit<'a>,
}

impl Conns {
    /// Up to `max` connections to the database of `options`, opened as needed.
    pub(crate) fn new(options: PgConnectOptions, max: u32, wait: Duration) -> Self {
        Self {
            options,
            idle: Mutex::new(Vec::new()),
            permits: Semaphore::new(max.max(1) as usize),
            max: max.max(1) as usize,
            wait,
        }
    }

    /// An idle connection (pinged first when idle for [`crate::PG_PING_AFTER_IDLE`]), or a
    /// new one; waits for one to come back when `max` are out.
    pub(crate) async fn get(&self) -> Result<Lent<'_>, StoreError> {
        let timed_out = || StoreError::Database(sqlx::Error::PoolTimedOut);
        let permit = tokio::time::timeout(self.wait, self.permits.acquire())
            .await
            .map_err(|_| timed_out())?
            .expect("the semaphore is never closed");
        let lend = |conn| Lent {
            conns: self,
            conn: Some(conn),
            finished: false,
            _permit: permit,
        };
        loop {
            let next = self.idle.lock().expect("not poisoned").pop();
            match next {
                Some((mut conn, since)) if since.elapsed() >= crate::PG_PING_AFTER_IDLE => {
                    // Bounded as the rest of the wait: a server that stopped answering
                    // must not hold the caller past it.
                    let alive = tokio::time::timeout(self.wait, conn.ping()).await;
                    if matches!(alive, Ok(Ok(()))) {
                        return Ok(lend(conn));
                    }
                }
                Some((conn, _)) => return Ok(lend(conn)),
                None => break,
            }
        }
        let conn = tokio::time::timeout(self.wait, PgConnection::connect_with(&self.options))
            .await
            .map_err(|_| timed_out())??;
        Ok(lend(conn))
    }

    /// Runs `f` on a lent connection, which then goes back to the list or is closed as
    /// [`Lent::settle`] decides from `f`'s outcome.
    pub(crate) async fn with<T>(
        &self,
        f: impl AsyncFnOnce(&mut PgConnection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut lent = self.get().await?;
        let out = f(lent.conn()).await;
        lent.settle(&out);
        out
    }

    /// Open, idle and most connections now.
    pub(crate) fn stats(&self) -> crate::PoolStats {
        let idle = self.idle.lock().expect("not poisoned").len() as u32;
        let out = (self.max - self.permits.available_permits()) as u32;
        crate::PoolStats {
            open: out + idle,
            idle,
            max: self.max as u32,
        }
    }

    /// Closes the idle connections.
    pub(crate) async fn close(&self) {
        let idle = std::mem::take(&mut *self.idle.lock().expect("not poisoned"));
        for (conn, _) in idle {
            let _ = conn.close().await;
        }
    }
}

impl Lent<'_> {
    /// The connection.
    pub(crate) fn conn(&mut self) -> &mut PgConnection {
        self.conn.as_mut().expect("a lent connection is present")
    }

    /// Every statement run on it finished: it goes back to the list.
    pub(crate) fn finish(mut self) {
        self.finished = true;
    }

    /// Back to the list when `out` is a success or a used nonce (a redeeming read's answer,
    /// which comes once its one statement has finished: a replayed nonce must not cost a
    /// connection), closed when it is any other error (which may have left the connection
    /// broken or mid-statement).
    pub(crate) fn settle<T>(self, out: &Result<T, StoreError>) {
        if matches!(out, Ok(_) | Err(StoreError::NonceReused)) {
            self.finish();
        }
    }
}

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        if self.finished {
            self.conns
                .idle
                .lock()
                .expect("not poisoned")
                .push((conn, Instant::now()));
        } else {
            // Possibly mid-statement: not reused. Closed politely in a task when one can run.
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    let _ = conn.close().await;
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    async fn pid(lent: &mut Lent<'_>) -> i32 {
        sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(lent.conn())
            .await
            .unwrap()
    }

    /// A finished connection is lent again (also one whose answer was a used nonce); one
    /// dropped unfinished or failed is not; no more than `max` are out at once, and a caller
    /// beyond them is told the store is busy.
    #[tokio::test]
    async fn finished_connections_come_back_unfinished_ones_do_not() {
        let Ok(url) = std::env::var("COBBLE_TEST_PG_URL") else {
            return;
        };
        let conns = Conns::new(
            PgConnectOptions::from_str(&url).unwrap(),
            2,
            Duration::from_millis(300),
        );
        let mut a = conns.get().await.unwrap();
        let first = pid(&mut a).await;
        a.finish();
        let mut a = conns.get().await.unwrap();
        assert_eq!(
            pid(&mut a).await,
            first,
            "the finished connection is reused"
        );
        drop(a);
        let mut a = conns.get().await.unwrap();
        let second = pid(&mut a).await;
        assert_ne!(second, first, "an unfinished one is not");
        let _b = conns.get().await.unwrap();
        let err = conns.get().await.err().expect("a third is refused");
        assert!(
            matches!(err, StoreError::Database(sqlx::Error::PoolTimedOut)),
            "{err:?}"
        );
        a.settle(&Err::<(), _>(StoreError::Corrupt("a failed read".into())));
        let mut c = conns.get().await.unwrap();
        let third = pid(&mut c).await;
        assert_ne!(third, second, "a failed one is not reused either");
        // A used nonce is an answer, not a failure: that connection comes back.
        c.settle(&Err::<(), _>(StoreError::NonceReused));
        let mut c = conns.get().await.unwrap();
        assert_eq!(pid(&mut c).await, third, "kept after a used nonce");
        c.settle(&Ok::<_, StoreError>(()));
        conns.close().await;
    }
}
