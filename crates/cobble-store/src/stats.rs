//! Figures about the store for monitoring: the job queues' depth and age, and the
//! connection pool's use. Read-only; nothing here changes state.

use crate::{Db, Store, StoreError, read_pool};
use std::time::{Duration, Instant};

/// One job queue's depth and the age of its oldest job.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Jobs queued or running.
    pub depth: i64,
    /// Age of the oldest job, in ms (0 when the queue is empty).
    pub oldest_age_ms: i64,
}

/// The connection pool serving reads (and, on PostgreSQL, writes too).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Connections open.
    pub open: u32,
    /// Of those, connections idle.
    pub idle: u32,
    /// The most the pool opens.
    pub max: u32,
}

impl Store {
    /// Depth and oldest age of the validation and issuance job queues, as of `now_ms`.
    pub async fn queue_stats(&self, now_ms: i64) -> Result<(QueueStats, QueueStats), StoreError> {
        let one = |table: &'static str| async move {
            let sql = match table {
                "validation_jobs" => {
                    "SELECT COUNT(*), COALESCE(MIN(created_ms), 0) FROM validation_jobs"
                }
                _ => "SELECT COUNT(*), COALESCE(MIN(created_ms), 0) FROM issuance_jobs",
            };
            let (depth, oldest): (i64, i64) = read_pool!(&self.db, p => Ok::<_, StoreError>(sqlx::query_as(sql).fetch_one(p).await?))?;
            Ok::<_, StoreError>(QueueStats {
                depth,
                oldest_age_ms: if depth > 0 {
                    (now_ms - oldest).max(0)
                } else {
                    0
                },
            })
        };
        Ok((one("validation_jobs").await?, one("issuance_jobs").await?))
    }

    /// The database connections now (on SQLite, the sqlx reader pool's).
    pub fn pool_stats(&self) -> PoolStats {
        let (open, idle, max) = match &self.db {
            // sqlx's pool (transactions) and the lent connections (single statements).
            Db::Pg(p, conns) => {
                let lent = conns.stats();
                (
                    p.size() + lent.open,
                    p.num_idle() as u32 + lent.idle,
                    p.options().get_max_connections() + lent.max,
                )
            }
            Db::Sqlite { reader, .. } => (
                reader.size(),
                reader.num_idle() as u32,
                reader.options().get_max_connections(),
            ),
        };
        PoolStats { open, idle, max }
    }

    /// How long getting a connection from the pool takes now (a probe, taken at scrape time).
    pub async fn acquire_probe(&self) -> Result<Duration, StoreError> {
        let t = Instant::now();
        read_pool!(&self.db, _p => Ok::<(), StoreError>(()))?;
        Ok(t.elapsed())
    }
}
