//! The deadlines behind the runtime's timer thread.
//!
//! Two places hold deadlines, so a task that starts at once never touches a shared ordered
//! map:
//!
//! - **waiting tasks** (in the slot queue) have one entry in `Queue::waiting`, keyed by the
//!   earlier of their queue and wait deadlines. Only tasks that find every execution thread
//!   busy are armed here.
//! - **running tasks** have an entry in the deadline list of the execution thread running
//!   them (`Timer::slots`): the earlier of their execution and wait deadlines. A list, not a
//!   single entry, because a parent waiting on a child may run that child on its own thread.
//!
//! The timer thread sleeps until the first deadline of either kind (or the next housekeeping
//! tick) and only *writes states*: it ends the task (terminal status, caller woken, `Finished`
//! posted) and hands everything that runs user code — the token's cancel actions, the drop of
//! a job that never ran — to the janitor thread.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering, fence};
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

use super::record::Record;

pub(crate) struct Timer {
    /// Instants are kept in atomics as nanoseconds since this.
    epoch: Instant,
    queue: Mutex<Queue>,
    /// Signalled when an earlier deadline arrives, and on stop.
    changed: Condvar,
    /// One deadline list per execution thread, indexed by the thread's number.
    slots: Box<[Mutex<Vec<Running>>]>,
    /// While the timer thread sleeps: when it will wake by itself (ns since `epoch`); 0 while
    /// it is awake (it will look at every list before it sleeps again). A thread adding a
    /// running deadline earlier than this wakes it. See `wait` for why no wake-up is lost.
    sleeping_until: AtomicU64,
}

/// A running task's deadline, in the list of the thread running it.
struct Running {
    deadline: Instant,
    record: Arc<Record>,
    /// Handed to the timer thread once; it is not handed again while the job finishes.
    fired: bool,
}

#[derive(Default)]
struct Queue {
    /// `(deadline, seq)` → waiting task. Lock order: a record's lock may be held while this
    /// one is taken, never the reverse (the timer thread takes no record lock under it).
    waiting: BTreeMap<(Instant, u64), Arc<Record>>,
    stopped: bool,
}

/// Why [`Timer::wait`] returned.
pub(crate) enum Wake {
    /// These tasks reached a deadline (their own checks say which).
    Due(Vec<Arc<Record>>),
    /// Time for periodic housekeeping.
    Housekeeping,
    /// The runtime is shutting down.
    Stopped,
}

/// The entry of a running task in its thread's deadline list, removed when dropped (also when
/// the run unwinds).
pub(crate) struct RunningEntry<'a> {
    timer: &'a Timer,
    slot: usize,
    seq: u64,
}

impl Drop for RunningEntry<'_> {
    fn drop(&mut self) {
        let mut list = self.timer.slots[self.slot].lock();
        if let Some(position) = list.iter().rposition(|entry| entry.record.seq == self.seq) {
            list.swap_remove(position);
        }
    }
}

impl Timer {
    pub(crate) fn new(execution_threads: usize) -> Timer {
        Timer {
            epoch: Instant::now(),
            queue: Mutex::new(Queue::default()),
            changed: Condvar::new(),
            slots: (0..execution_threads)
                .map(|_| Mutex::new(Vec::with_capacity(2)))
                .collect(),
            sleeping_until: AtomicU64::new(0),
        }
    }

    fn nanos(&self, instant: Instant) -> u64 {
        // At least 1: 0 means "awake". Saturates after ~584 years.
        u64::try_from(instant.saturating_duration_since(self.epoch).as_nanos())
            .unwrap_or(u64::MAX)
            .max(1)
    }

    /// Arms a waiting task's deadline.
    pub(crate) fn arm(&self, record: &Arc<Record>, deadline: Instant) {
        let mut queue = self.queue.lock();
        queue.waiting.insert((deadline, record.seq), record.clone());
        if self.nanos(deadline) < self.sleeping_until.load(Ordering::SeqCst) {
            self.changed.notify_one();
        }
    }

    pub(crate) fn disarm(&self, deadline: Instant, seq: u64) {
        let removed = self.queue.lock().waiting.remove(&(deadline, seq));
        drop(removed); // outside the lock
    }

    /// Adds a running task's deadline to the list of execution thread `slot`; the entry
    /// leaves the list when the returned guard drops.
    pub(crate) fn running(
        &self,
        slot: usize,
        record: &Arc<Record>,
        deadline: Instant,
    ) -> RunningEntry<'_> {
        self.slots[slot].lock().push(Running {
            deadline,
            record: record.clone(),
            fired: false,
        });
        // Pairs with the fence in `wait`: either the timer's scan sees this entry, or this
        // load sees the timer's provisional wake-up time.
        fence(Ordering::SeqCst);
        if self.nanos(deadline) < self.sleeping_until.load(Ordering::SeqCst) {
            let _queue = self.queue.lock(); // held by the timer until it sleeps
            self.changed.notify_one();
        }
        RunningEntry {
            timer: self,
            slot,
            seq: record.seq,
        }
    }

    /// Blocks until some deadlines are due, `housekeeping_at` comes, or the timer stops.
    ///
    /// No wake-up is lost: before sleeping, the timer stores a provisional wake-up time (no
    /// later than the one it will use), fences, then scans the running lists. A thread adding
    /// an entry pushes it, fences, then loads `sleeping_until`. Sequential consistency means
    /// one of the two sees the other: the scan finds the entry, or the adder sees a wake-up
    /// time and, if its deadline is earlier, notifies under the queue lock, which the timer
    /// holds until it is asleep.
    pub(crate) fn wait(&self, housekeeping_at: Instant) -> Wake {
        let mut queue = self.queue.lock();
        loop {
            if queue.stopped {
                return Wake::Stopped;
            }
            let now = Instant::now();
            let mut due = Vec::new();
            while let Some(entry) = queue.waiting.first_entry() {
                if entry.key().0 > now {
                    break;
                }
                due.push(entry.remove());
            }
            let mut next = housekeeping_at;
            if let Some((&(first, _), _)) = queue.waiting.first_key_value() {
                next = next.min(first);
            }
            self.sleeping_until
                .store(self.nanos(next), Ordering::SeqCst);
            fence(Ordering::SeqCst);
            for slot in self.slots.iter() {
                for entry in slot.lock().iter_mut().filter(|entry| !entry.fired) {
                    if entry.deadline <= now {
                        entry.fired = true;
                        due.push(entry.record.clone());
                    } else {
                        next = next.min(entry.deadline);
                    }
                }
            }
            if !due.is_empty() {
                self.sleeping_until.store(0, Ordering::SeqCst);
                return Wake::Due(due);
            }
            if now >= housekeeping_at {
                self.sleeping_until.store(0, Ordering::SeqCst);
                return Wake::Housekeeping;
            }
            self.sleeping_until
                .store(self.nanos(next), Ordering::SeqCst);
            self.changed.wait_until(&mut queue, next);
            self.sleeping_until.store(0, Ordering::SeqCst);
        }
    }

    pub(crate) fn stop(&self) {
        let waiting = {
            let mut queue = self.queue.lock();
            queue.stopped = true;
            self.changed.notify_all();
            std::mem::take(&mut queue.waiting)
        };
        drop(waiting);
    }

    /// How many deadlines the timer holds (waiting and running tasks).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.queue.lock().waiting.len()
            + self
                .slots
                .iter()
                .map(|slot| slot.lock().len())
                .sum::<usize>()
    }
}
