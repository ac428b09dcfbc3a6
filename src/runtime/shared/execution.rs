//! The execution path: a scheduler thread places each admitted task on a free execution
//! thread or in the slot queue; an execution thread runs it, then whatever waits; a caller
//! waiting on an execution thread may run its own queued task (help-while-waiting).

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Instant;

use super::super::handle::JobContext;
use super::super::handoff::Consumer;
use super::super::record::{Record, Start};
use super::super::task::TaskStatus;
use super::super::{CancelReason, drop_quietly, panic_message};
use super::{Ender, OnRuntimeThread, RUNTIME_THREAD, Shared};
use crate::error::{Error, ErrorKind};

impl Shared {
    /// Scheduler thread: hands the task to a free execution thread, or queues it (in
    /// submission order) and arms its queue deadline. Never waits on a run, runs no user code.
    pub(super) fn place(self: &Arc<Self>, record: Arc<Record>) {
        let mut slots = self.slots.lock();
        if slots.free > 0 {
            if record.status() != TaskStatus::Pending {
                return; // ended (cancelled, timed out) before it was placed
            }
            slots.free -= 1;
            drop(slots);
            if let Err(unsent) = self.to_executors.send(Some(record)) {
                // The execution threads have stopped (shutdown): nobody will run it.
                let record = unsent.expect("a task was sent");
                self.cancel_task(&record, "because the runtime shut down");
            }
            return;
        }
        if !record.enqueue(self) {
            return;
        }
        let position = slots
            .waiting
            .iter()
            .rposition(|queued| queued.seq < record.seq)
            .map_or(0, |before| before + 1);
        slots.waiting.insert(position, record);
    }

    /// An execution thread: runs what it is handed, then whatever waits, until nothing does.
    pub(super) fn execute(self: &Arc<Self>, slot: usize, tasks: &Consumer<Option<Arc<Record>>>) {
        let _thread = OnRuntimeThread::enter(self, Some(slot));
        while let Some(first) = tasks.recv() {
            let mut next = Some(first);
            while let Some(record) = next {
                // `run` holds every unwind point in guards; this is the sentinel that keeps
                // the slot even through a bug in the runtime itself.
                if let Err(panic) =
                    catch_unwind(AssertUnwindSafe(|| self.run(&record, slot, false)))
                {
                    log::error!(
                        "subtask's execution thread caught a panic outside a job (a bug, \
                         please report it): {}",
                        panic_message(panic.as_ref())
                    );
                    drop_quietly(panic);
                }
                drop(record);
                next = {
                    let mut slots = self.slots.lock();
                    let next = slots.waiting.pop_front();
                    match &next {
                        Some(record) => record.dequeued(),
                        None => slots.free += 1,
                    }
                    next
                };
            }
        }
    }

    /// Starts the task on this thread (execution thread `slot`) and runs its job. `inline`:
    /// a waiting parent runs its queued child on its own thread.
    pub(in crate::runtime) fn run(
        self: &Arc<Self>,
        record: &Arc<Record>,
        slot: usize,
        inline: bool,
    ) {
        let now = Instant::now();
        let (runner, deadline) = match record.start(self, now, inline) {
            Start::Running(runner, deadline) => (runner, deadline),
            Start::Ended => return,
            Start::Expired(limit) => {
                self.time_out(record, limit, now, Ender::Other);
                return;
            }
        };
        let _deadline = self.timer.running(slot, record, deadline);
        let context = JobContext::new(self, record);
        let outcome = catch_unwind(AssertUnwindSafe(|| runner(&context)));
        if let Err(panic) = outcome {
            // Only the runner's own bookkeeping can get here (the job runs in its own
            // catch_unwind); the value it held has been dropped by the unwind.
            log::error!(
                "task {}: the runtime's wrapper panicked: {}",
                record.id,
                panic_message(panic.as_ref())
            );
            drop_quietly(panic);
        }
        if !context.completed() {
            // The guard's part: the job's thread is released and `Finished` posted whatever
            // happened above.
            let error = Error::new(
                ErrorKind::Internal,
                format!(
                    "task {} ended without a result; this is a bug in subtask, please report it",
                    record.id
                ),
            );
            self.complete(record, Some(error));
        }
    }

    /// The job returned (`error` is `None` for a value): end the task with its outcome unless
    /// it already ended, and release the job's thread. Returns whether the value is taken
    /// (the task completed); otherwise the caller drops it.
    pub(in crate::runtime) fn complete(
        self: &Arc<Self>,
        record: &Arc<Record>,
        error: Option<Error>,
    ) -> bool {
        let now = Instant::now();
        let status = match error {
            None => TaskStatus::Completed,
            Some(_) => TaskStatus::Failed,
        };
        let ending = record.end(self, status, error, now, true);
        if !ending.won {
            log::info!(
                "task {} returned after it ended ({}); its result is discarded",
                record.id,
                ending.status
            );
            return false;
        }
        if let TaskStatus::TimedOut(limit) = ending.status {
            log::info!(
                "task {} returned after its {limit} deadline; its result is discarded",
                record.id
            );
            record.token.trip(CancelReason::TimedOut(limit));
            return false;
        }
        ending.status == TaskStatus::Completed
    }

    /// Takes an ended task out of the slot queue, if it waits there.
    pub(super) fn unqueue(&self, record: &Record) {
        let removed = {
            let mut slots = self.slots.lock();
            let position = slots
                .waiting
                .iter()
                .position(|queued| queued.seq == record.seq);
            let removed = position.and_then(|position| slots.waiting.remove(position));
            if removed.is_some() {
                record.dequeued();
            }
            removed
        };
        drop(removed);
    }

    /// A caller waiting on an execution thread found its task in the slot queue: takes it
    /// out so the caller can run it. False if a thread took it first.
    pub(in crate::runtime) fn steal(&self, record: &Record) -> bool {
        let mut slots = self.slots.lock();
        let Some(position) = slots
            .waiting
            .iter()
            .position(|queued| queued.seq == record.seq)
        else {
            return false;
        };
        if let Some(stolen) = slots.waiting.remove(position) {
            stolen.dequeued();
        }
        true
    }

    /// The execution thread this thread is, if it is one of this runtime's.
    pub(in crate::runtime) fn current_slot(&self) -> Option<usize> {
        let thread = RUNTIME_THREAD.with(Cell::get);
        (thread.shared == self as *const Shared as usize)
            .then_some(thread.slot)
            .flatten()
    }
}
