//! The writer thread: one connection, group commit.

use super::{backend, Sqlite, StoreError, GROUP_COMMIT_YIELDS, MAX_BATCH, WRITE_QUEUE};
use crate::store::sql::Dialect;
use chrono::Utc;
use rusqlite::{params, Connection};
use tokio::sync::{mpsc, oneshot};

// ---------------------------------------------------------------------------
// Writer thread
// ---------------------------------------------------------------------------

pub(super) struct TaskRow {
    pub id: String,
    pub context_id: String,
    pub state: String,
    pub status_ts: i64,
    pub doc: String,
}

pub(super) struct HistoryRow {
    pub query: String,
    pub norm: String,
    pub result: String,
    pub processing_ns: i64,
    pub agent_version: String,
    pub created_us: i64,
}

pub(super) enum WriteOp {
    SaveTask(TaskRow),
    InsertHistory(Vec<HistoryRow>),
    PruneHistory { keep: i64 },
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
            .map_err(|e| backend("spawn writer thread", e))?;
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
    // Ends when every sender (stores, history queue) is gone.
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
        commit_batch(&mut conn, &mut batch);
    }
}

/// Runs every request of `batch` in one transaction (a failed statement
/// fails only its request), commits, then answers every waiter.
fn commit_batch(conn: &mut Connection, batch: &mut Vec<WriteRequest>) {
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        let msg = format!("sqlite begin: {e}");
        for req in batch.drain(..) {
            let _ = req.reply.send(Err(StoreError::Backend(msg.clone())));
        }
        return;
    }
    // A later save of the same task in this batch supersedes an earlier one
    // (a "working" state queued just before "completed"): write it once.
    let mut last_save: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for (i, req) in batch.iter().enumerate() {
        if let WriteOp::SaveTask(row) = &req.op {
            last_save.insert(row.id.as_str(), i);
        }
    }
    let results: Vec<Result<(), StoreError>> = batch
        .iter()
        .enumerate()
        .map(|(i, req)| match &req.op {
            WriteOp::SaveTask(row) if last_save.get(row.id.as_str()) != Some(&i) => Ok(()),
            // No savepoints: SQLite undoes a failed statement by itself, and
            // each savepoint would make FTS5 write its pending index to disk.
            // A history batch that fails at row k keeps (and indexes) rows
            // 0..k, which is harmless for a log.
            op => apply(conn, op),
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
    for (req, result) in batch.drain(..).zip(results) {
        let answer = match &outcome {
            Ok(()) => result,
            Err(msg) => Err(match result {
                Err(e) => e,
                Ok(()) => StoreError::Backend(msg.clone()),
            }),
        };
        // The caller may have stopped waiting (request cancelled): the write
        // still happened, nobody to tell.
        let _ = req.reply.send(answer);
    }
}

fn apply(conn: &Connection, op: &WriteOp) -> Result<(), StoreError> {
    match op {
        WriteOp::SaveTask(row) => {
            let mut stmt = conn
                .prepare_cached(&Sqlite::statements().upsert)
                .map_err(|e| backend("prepare save", e))?;
            stmt.execute(params![
                row.id,
                row.context_id,
                row.state,
                row.status_ts,
                row.doc,
                Utc::now().timestamp_micros()
            ])
            .map_err(|e| backend("save task", e))?;
            Ok(())
        }
        WriteOp::InsertHistory(rows) => insert_history(conn, rows),
        WriteOp::PruneHistory { keep } => {
            // Ids are rowids, assigned max + 1 and only ever deleted from
            // the oldest end, so the newest `keep` rows are those above
            // max - keep: two index seeks instead of walking `keep` rows
            // (which ran every 1000 inserts).
            conn.execute(
                "DELETE FROM history WHERE id <= (SELECT max(id) FROM history) - ?1",
                params![keep],
            )
            .map_err(|e| backend("prune history", e))?;
            Ok(())
        }
    }
}

/// Inserts a batch of history rows, then adds them to the FTS index with
/// one statement. FTS5 writes its pending index to disk at every statement
/// that touches it, so indexing row by row (a trigger) made one segment per
/// row and then merged them: a fifth of the CPU when every query is new.
fn insert_history(conn: &Connection, rows: &[HistoryRow]) -> Result<(), StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO history
                (query, norm, result, processing_ns, agent_version, created_us)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .map_err(|e| backend("prepare history insert", e))?;
    let mut inserted: Option<(i64, i64)> = None;
    let mut result = Ok(());
    for r in rows {
        let done = stmt.execute(params![
            r.query,
            r.norm,
            r.result,
            r.processing_ns,
            r.agent_version,
            r.created_us
        ]);
        if let Err(e) = done {
            result = Err(backend("insert history", e));
            break;
        }
        let id = conn.last_insert_rowid();
        inserted = Some(inserted.map_or((id, id), |(first, _)| (first, id)));
    }
    // Index whatever was inserted, even after a failure: the delete trigger
    // (retention) expects every row in the index.
    if let Some((first, last)) = inserted {
        conn.prepare_cached(
            "INSERT INTO history_fts (rowid, norm)
             SELECT id, norm FROM history WHERE id BETWEEN ?1 AND ?2",
        )
        .and_then(|mut st| st.execute(params![first, last]))
        .map_err(|e| backend("index history", e))?;
    }
    result
}
