//! The deadline queue behind the runtime's timer thread.
//!
//! Every Pending or Running task has exactly one entry, keyed by its next deadline: the
//! earlier of its queue and wait deadlines while it waits for a slot, the earlier of its
//! execution and wait deadlines while it runs. The timer thread sleeps until the first
//! entry is due (or the next housekeeping tick) and ends the task, so every deadline fires
//! on time whether or not anybody is waiting on the task.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

use super::record::Record;

pub(crate) struct Timer {
    queue: Mutex<Queue>,
    /// Signalled when an entry becomes the first one, and on stop.
    changed: Condvar,
}

#[derive(Default)]
struct Queue {
    /// `(deadline, seq)` → task. Lock order: a record's lock may be held while this one is
    /// taken, never the reverse (the timer thread takes no record lock while holding it).
    entries: BTreeMap<(Instant, u64), Arc<Record>>,
    /// When the timer thread will wake by itself, while it sleeps. An insert signals it only
    /// if the new deadline comes earlier: with the usual timeouts (minutes) and the
    /// housekeeping tick (seconds) that is rare, so a task costs the timer thread no wake.
    sleeping_until: Option<Instant>,
    stopped: bool,
}

/// Why [`Timer::wait`] returned.
pub(crate) enum Wake {
    /// These tasks reached their deadline; their entries are gone.
    Due(Vec<Arc<Record>>),
    /// Time for periodic housekeeping.
    Housekeeping,
    /// The runtime is shutting down.
    Stopped,
}

impl Timer {
    pub(crate) fn new() -> Timer {
        Timer {
            queue: Mutex::new(Queue::default()),
            changed: Condvar::new(),
        }
    }

    /// Moves a task's entry from `old` (if any) to `new`.
    pub(crate) fn reschedule(&self, record: &Arc<Record>, old: Option<Instant>, new: Instant) {
        let mut queue = self.queue.lock();
        if let Some(old) = old {
            queue.entries.remove(&(old, record.seq));
        }
        queue.entries.insert((new, record.seq), record.clone());
        if queue.sleeping_until.is_some_and(|wake| new < wake) {
            self.changed.notify_one();
        }
    }

    pub(crate) fn remove(&self, deadline: Instant, seq: u64) {
        self.queue.lock().entries.remove(&(deadline, seq));
    }

    /// Blocks until some entries are due, `housekeeping_at` comes, or the timer stops.
    pub(crate) fn wait(&self, housekeeping_at: Instant) -> Wake {
        let mut queue = self.queue.lock();
        loop {
            if queue.stopped {
                return Wake::Stopped;
            }
            let now = Instant::now();
            let mut due = Vec::new();
            while let Some(entry) = queue.entries.first_entry() {
                if entry.key().0 > now {
                    break;
                }
                due.push(entry.remove());
            }
            if !due.is_empty() {
                return Wake::Due(due);
            }
            if now >= housekeeping_at {
                return Wake::Housekeeping;
            }
            let until = match queue.entries.first_key_value() {
                Some((&(first, _), _)) => first.min(housekeeping_at),
                None => housekeeping_at,
            };
            queue.sleeping_until = Some(until);
            self.changed.wait_until(&mut queue, until);
            queue.sleeping_until = None;
        }
    }

    pub(crate) fn stop(&self) {
        let mut queue = self.queue.lock();
        queue.stopped = true;
        queue.entries.clear();
        self.changed.notify_all();
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.queue.lock().entries.len()
    }
}
