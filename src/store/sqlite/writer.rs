//! The writer thread: one connection, group commit.

use super::{Sqlite, StoreError, GROUP_COMMIT_YIELDS, MAX_BATCH, WRITE_QUEUE};
use crate::store::sql::Dialect;
use crate::store::TaskOwner;
use chrono::Utc;
use rusqlite::{params, Connection};
use std::collections::HashMap;
use tokio::sync::{mpsc, oneshot};

/// A task as the upsert binds it.
pub(super) struct TaskRow {
    pub id: String,
    pub context_id: String,
    pub state: String,
    pub status_ts: i64,
    pub doc: String,
    pub owner: TaskOwner,
}

/// Statements given to [`super::SqliteDatabase::write`].
pub(super) type WriteFn = Box<dyn FnOnce(&Connection) -> Result<(), StoreError> + Send>;

pub(super) enum WriteOp {
    /// The hot path: a task save, deduplicated within a batch.
    SaveTask(TaskRow),
    /// Anything else (agent-owned tables, migrations).
    Run(WriteFn),
}

pub(super) struct WriteRequest {
    pub op: WriteOp,
    pub reply: oneshot::Sender<Result<(), StoreError>>,
}

/// The sending side of the writer thread.
#[derive(Clone)]
pub(super) struct Writer {
    pub tx: mpsc::Sender<WriteRequest>,
}

impl Writer {
    pub fn spawn(conn: Connection) -> Result<Self, StoreError> {
        let (tx, rx) = mpsc::channel(WRITE_QUEUE);
        std::thread::Builder::new()
            .name("abacus-sqlite-writer".into())
            .spawn(move || writer_loop(conn, rx))
            .map_err(|e| StoreError::sqlite("spawn writer thread", e))?;
        Ok(Self { tx })
    }

    /// Sends `op` and waits until the transaction holding it committed.
    pub async fn submit(&self, op: WriteOp) -> Result<(), StoreError> {
        let (reply, done) = oneshot::channel();
        self.tx
            .send(WriteRequest { op, reply })
            .await
            .map_err(|_| StoreError::Backend("sqlite writer thread stopped".into()))?;
        done.await
            .map_err(|_| StoreError::Backend("sqlite writer thread stopped".into()))?
    }
}

fn writer_loop(mut conn: Connection, mut rx: mpsc::Receiver<WriteRequest>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut superseded = Vec::with_capacity(MAX_BATCH);
    // Ends when every sender (stores, agent-owned stores) is gone.
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        let mut yields = 0;
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(req) => batch.push(req),
                Err(mpsc::error::TryRecvError::Empty) if yields < GROUP_COMMIT_YIELDS => {
                    std::thread::yield_now();
                    yields += 1;
                }
                Err(_) => break,
            }
        }
        commit_batch(&mut conn, &mut batch, &mut superseded);
    }
}

/// Runs every request of `batch` in one transaction (a failed statement
/// fails only its request), commits, then answers every waiter.
/// `superseded` is scratch space kept across batches.
fn commit_batch(conn: &mut Connection, batch: &mut Vec<WriteRequest>, superseded: &mut Vec<bool>) {
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        let msg = format!("sqlite begin: {e}");
        for req in batch.drain(..) {
            let _ = req.reply.send(Err(StoreError::Backend(msg.clone())));
        }
        return;
    }
    mark_superseded(batch, superseded);
    let results: Vec<_> = batch
        .drain(..)
        .zip(superseded.drain(..))
        .map(|(req, skip)| {
            let result = if skip { Ok(()) } else { apply(conn, req.op) };
            (req.reply, result)
        })
        .collect();
    // Some errors (I/O, disk full) make SQLite roll the whole transaction
    // back; then nothing of the batch was written.
    let outcome = if conn.is_autocommit() {
        Err("sqlite transaction was rolled back".to_string())
    } else {
        conn.execute_batch("COMMIT").map_err(|e| {
            let _ = conn.execute_batch("ROLLBACK");
            format!("sqlite commit: {e}")
        })
    };
    for (reply, result) in results {
        let answer = match &outcome {
            Ok(()) => result,
            Err(msg) => Err(match result {
                Err(e) => e,
                Ok(()) => StoreError::Backend(msg.clone()),
            }),
        };
        // The caller may have stopped waiting (request cancelled): the write
        // still happened, nobody to tell.
        let _ = reply.send(answer);
    }
}

/// Of the saves of one task in a batch only the newest status is written
/// (a "working" state queued just before "completed"), as the upsert's own
/// rule would keep it: the latest status time, the later save on a tie.
/// Queue order alone is not enough: a snapshot taken before the final
/// state can be queued after it (a `returnImmediately` reply).
/// Pushes one flag per request of `batch`: whether to skip it.
fn mark_superseded(batch: &[WriteRequest], out: &mut Vec<bool>) {
    let mut last_save: HashMap<&str, usize> = HashMap::new();
    for (i, req) in batch.iter().enumerate() {
        if let WriteOp::SaveTask(row) = &req.op {
            let newest = last_save.entry(row.id.as_str()).or_insert(i);
            let kept = match &batch[*newest].op {
                WriteOp::SaveTask(kept) => kept.status_ts,
                WriteOp::Run(_) => i64::MIN,
            };
            if row.status_ts >= kept {
                *newest = i;
            }
        }
    }
    out.extend(batch.iter().enumerate().map(|(i, req)| {
        matches!(&req.op, WriteOp::SaveTask(row) if last_save.get(row.id.as_str()) != Some(&i))
    }));
}

// No savepoints: SQLite undoes a failed statement by itself, and a savepoint
// per request would cost a statement each (and make FTS5 write its pending
// index to disk every time).
fn apply(conn: &Connection, op: WriteOp) -> Result<(), StoreError> {
    match op {
        WriteOp::SaveTask(row) => {
            let mut stmt = conn
                .prepare_cached(&Sqlite::statements().upsert)
                .map_err(|e| StoreError::sqlite("prepare save", e))?;
            stmt.execute(params![
                row.id,
                row.context_id,
                row.state,
                row.status_ts,
                row.doc,
                row.owner.principal(),
                row.owner.tenant(),
                Utc::now().timestamp_micros()
            ])
            .map_err(|e| StoreError::sqlite("save task", e))?;
            Ok(())
        }
        WriteOp::Run(f) => f(conn),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn save(id: &str, status_ts: i64) -> WriteRequest {
        WriteRequest {
            op: WriteOp::SaveTask(TaskRow {
                id: id.into(),
                context_id: "c".into(),
                state: "s".into(),
                status_ts,
                doc: "{}".into(),
                owner: TaskOwner::anonymous(),
            }),
            reply: oneshot::channel().0,
        }
    }

    #[test]
    fn the_newest_status_of_a_task_is_written_not_the_last_queued() {
        let batch = [
            save("a", 1),
            save("b", 5),
            save("a", 3),
            save("b", 2),
            save("a", 3),
        ];
        let mut skip = Vec::new();
        mark_superseded(&batch, &mut skip);
        // a: the later of the two newest (a tie); b: the first, newer one.
        assert_eq!(skip, [true, false, true, true, false]);
    }
}
