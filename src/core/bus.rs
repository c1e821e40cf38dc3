//! Who follows which task's log: followers wait on a watch per task, and
//! are woken by this replica's appends and, through a
//! [`Backplane`](crate::store::Backplane), by every other replica's.
//!
//! A watch carries only "the log of this task reached `seq`" (or the error
//! that ended the task's exchange here): followers read the events
//! themselves from the store, so a signal is never too large, a lost one
//! costs nothing but a re-read ([`Bus::resync`]), and a replica that hears
//! its own append twice (directly and through the backplane) wakes nobody
//! twice for it.

use crate::protocol::A2AError;
use dashmap::DashMap;
use std::sync::Arc;
use tokio::sync::watch;

/// What a task's watchers learn.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tick {
    /// The log is known to reach this sequence number.
    pub(crate) seq: u64,
    /// The exchange on this replica ended with an error that is not in the
    /// log (the store could not take the state).
    pub(crate) failure: Option<A2AError>,
}

/// The watchers of every followed task.
#[derive(Default)]
pub(crate) struct Bus {
    watchers: DashMap<String, watch::Sender<Tick>>,
}

impl Bus {
    /// Follows task `id`: the receiver sees every later [`Bus::published`].
    /// Subscribe before reading the log, so nothing appended in between is
    /// missed.
    pub(crate) fn watch(self: &Arc<Self>, id: &str) -> Watch {
        let rx = match self.watchers.entry(id.to_string()) {
            dashmap::Entry::Occupied(e) => e.get().subscribe(),
            dashmap::Entry::Vacant(e) => {
                let (tx, rx) = watch::channel(Tick::default());
                e.insert(tx);
                rx
            }
        };
        Watch {
            bus: self.clone(),
            id: id.to_string(),
            rx,
        }
    }

    /// The log of task `id` reaches `seq`.
    pub(crate) fn published(&self, id: &str, seq: u64) {
        if let Some(tx) = self.watchers.get(id) {
            tx.send_if_modified(|tick| {
                let newer = seq > tick.seq;
                if newer {
                    tick.seq = seq;
                    // A later state is stored: an earlier failure is history.
                    tick.failure = None;
                }
                newer
            });
        }
    }

    /// The exchange of task `id` ended here with `error`, which the log
    /// will never show.
    pub(crate) fn failed(&self, id: &str, error: &A2AError) {
        if let Some(tx) = self.watchers.get(id) {
            tx.send_modify(|tick| tick.failure = Some(error.clone()));
        }
    }

    /// Wakes every watcher to re-read its log: signals may have been lost.
    pub(crate) fn resync(&self) {
        for tx in self.watchers.iter() {
            tx.send_modify(|_| {});
        }
    }

    /// Tasks followed right now.
    pub(crate) fn followers(&self, id: &str) -> usize {
        self.watchers.get(id).map_or(0, |tx| tx.receiver_count())
    }
}

/// One follower's view of a task's watch; leaving drops the task's entry
/// once nobody follows it.
pub(crate) struct Watch {
    bus: Arc<Bus>,
    id: String,
    rx: watch::Receiver<Tick>,
}

impl Watch {
    /// Waits for the next tick (at once if one came since the last call);
    /// `None` if the task's sender is gone, which the bus never lets
    /// happen while a watch lives.
    pub(crate) async fn changed(&mut self) -> Option<Tick> {
        self.rx.changed().await.ok()?;
        Some(self.rx.borrow_and_update().clone())
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.bus
            .watchers
            .remove_if(&self.id, |_, tx| tx.receiver_count() <= 1);
    }
}
