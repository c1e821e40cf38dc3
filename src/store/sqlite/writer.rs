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

/// An append (see [`crate::store::TaskStore::append`]) as its statements
/// bind it.
pub(super) struct AppendRow {
    pub task: TaskRow,
    /// The log position it continues from.
    pub after: i64,
    /// The position after it (`after` plus the number of events).
    pub seq: i64,
    pub lease_owner: Option<String>,
    /// Microseconds since the epoch.
    pub lease_until: Option<i64>,
    /// Sequence number and document of each event, in order.
    pub events: Vec<(i64, String)>,
    /// Microseconds since the epoch.
    pub appended_at: i64,
}

/// Statements given to [`super::SqliteDatabase::write`].
pub(super) type WriteFn = Box<dyn FnOnce(&Connection) -> Result<(), StoreError> + Send>;

pub(super) enum WriteOp {
    /// The hot path: a task save, deduplicated within a batch.
    SaveTask(TaskRow),
    /// The other hot path: events appended to a task's log with the task,
    /// all or nothing.
    Append(Box<AppendRow>),
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
                WriteOp::Append(_) | WriteOp::Run(_) => i64::MIN,
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

// No savepoints for single statements: SQLite undoes a failed statement by
// itself, and a savepoint per request would cost a statement each (and make
// FTS5 write its pending index to disk every time). An append of events is
// several statements: it has one (see `append`).
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
        WriteOp::Append(row) => append(conn, &row),
        WriteOp::Run(f) => f(conn),
    }
}

/// Writes the task of an append if its log ends at `after`: the number of
/// rows changed (0 on a conflict).
fn append_task(conn: &Connection, row: &AppendRow) -> Result<usize, StoreError> {
    let statements = Sqlite::statements();
    let sql = if row.after == 0 {
        &statements.append_insert
    } else {
        &statements.append_update
    };
    let task = &row.task;
    conn.prepare_cached(sql)
        .and_then(|mut stmt| {
            stmt.execute(params![
                task.id,
                task.context_id,
                task.state,
                task.status_ts,
                task.doc,
                task.owner.principal(),
                task.owner.tenant(),
                row.seq,
                row.lease_owner,
                row.lease_until,
                row.after,
                Utc::now().timestamp_micros()
            ])
        })
        .map_err(|e| StoreError::sqlite("append task", e))
}

/// Writes the task and then its events, all or nothing: a savepoint undoes
/// the task's row when an event fails, so the batch's other writes go on.
fn append(conn: &Connection, row: &AppendRow) -> Result<(), StoreError> {
    let conflict =
        || crate::store::log::conflict(&row.task.id, u64::try_from(row.after).unwrap_or(0));
    if row.events.is_empty() {
        // One statement: atomic by itself.
        return match append_task(conn, row)? {
            0 => Err(conflict()),
            _ => Ok(()),
        };
    }
    let run = |sql: &str| {
        conn.prepare_cached(sql)
            .and_then(|mut stmt| stmt.execute([]))
            .map_err(|e| StoreError::sqlite("append savepoint", e))
    };
    run("SAVEPOINT append")?;
    let written = (|| {
        if append_task(conn, row)? == 0 {
            return Err(conflict());
        }
        let mut stmt = conn
            .prepare_cached(&Sqlite::statements().insert_event)
            .map_err(|e| StoreError::sqlite("prepare append event", e))?;
        for (seq, doc) in &row.events {
            stmt.execute(params![row.task.id, seq, doc, row.appended_at])
                .map_err(|e| StoreError::sqlite("append event", e))?;
        }
        Ok(())
    })();
    let ended = match written {
        Ok(()) => run("RELEASE append"),
        Err(_) => run("ROLLBACK TO append").and_then(|_| run("RELEASE append")),
    };
    if let Err(e) = ended {
        // This append cannot be ended alone: undo the whole batch rather
        // than commit half of it (every caller of the batch gets an error).
        let _ = conn.execute_batch("ROLLBACK");
        return Err(e);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sql::migrate::{task_migrations, TASKS};
    use crate::store::Migrations;

    fn append_req(
        id: &str,
        after: i64,
        events: &[i64],
    ) -> (WriteRequest, oneshot::Receiver<Result<(), StoreError>>) {
        let (reply, answer) = oneshot::channel();
        let row = AppendRow {
            task: TaskRow {
                id: id.into(),
                context_id: "c".into(),
                state: "s".into(),
                status_ts: 1,
                doc: "{}".into(),
                owner: TaskOwner::anonymous(),
            },
            after,
            seq: after + events.len() as i64,
            lease_owner: None,
            lease_until: None,
            events: events
                .iter()
                .map(|&seq| (seq, format!("{{\"n\":{seq}}}")))
                .collect(),
            appended_at: 7,
        };
        (
            WriteRequest {
                op: WriteOp::Append(Box::new(row)),
                reply,
            },
            answer,
        )
    }

    fn answer(mut rx: oneshot::Receiver<Result<(), StoreError>>) -> Result<(), StoreError> {
        rx.try_recv().expect("answered")
    }

    /// Appends share a batch with other writes: one that conflicts or fails
    /// midway leaves nothing of itself and takes nothing of the others.
    #[test]
    fn a_failed_append_leaves_its_batch_alone() {
        let mut conn = Connection::open_in_memory().expect("open");
        let steps = task_migrations::<Sqlite>();
        super::super::migrations::apply_immediate(&conn, &Migrations::new(TASKS, &steps))
            .expect("schema");
        // A stray event where the append of `bad` will put its second.
        conn.execute(
            "INSERT INTO task_events (task_id, seq, doc, appended_at) VALUES ('bad', 2, '{}', 0)",
            [],
        )
        .expect("stray event");
        let (good, good_answer) = append_req("good", 0, &[1, 2]);
        let (bad, bad_answer) = append_req("bad", 0, &[1, 2, 3]);
        let (late, late_answer) = append_req("good", 0, &[1]);
        let (more, more_answer) = append_req("good", 2, &[3]);
        let mut batch = vec![save("a", 1), good, bad, late, more, save("b", 1)];
        commit_batch(&mut conn, &mut batch, &mut Vec::new());
        assert!(answer(good_answer).is_ok());
        let bad = answer(bad_answer);
        assert!(matches!(bad, Err(StoreError::Backend(_))), "{bad:?}");
        let late = answer(late_answer);
        assert!(matches!(late, Err(StoreError::Conflict(_))), "{late:?}");
        assert!(answer(more_answer).is_ok());
        let tasks: Vec<(String, i64)> = conn
            .prepare("SELECT id, seq FROM tasks ORDER BY id")
            .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
            .expect("tasks");
        assert_eq!(
            tasks,
            [("a".into(), 0), ("b".into(), 0), ("good".into(), 3)]
        );
        let events: Vec<(String, i64)> = conn
            .prepare("SELECT task_id, seq FROM task_events ORDER BY task_id, seq")
            .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
            .expect("events");
        assert_eq!(
            events,
            [
                ("bad".into(), 2),
                ("good".into(), 1),
                ("good".into(), 2),
                ("good".into(), 3)
            ]
        );
    }

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
