//! The end of a runtime: closing (no more tasks, every live one cancelled) and draining
//! (every thread told to stop and joined), kept apart because a shutdown called from inside
//! a job can close but not join its own thread.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::super::CancelReason;
use super::super::janitor::Chore;
use super::super::task::{TaskStatus, TimeoutKind};
use super::super::time::{self, deadline_after};
use super::{Ender, Shared};
use crate::error::{Error, ErrorKind};

/// Where the stopping and joining of the threads stands.
pub(super) enum Drain {
    NotStarted,
    /// One caller is stopping and joining them; the others wait for its result.
    Running,
    Done(Result<(), Error>),
}

impl Shared {
    /// Refuses new tasks and cancels every live one. Idempotent.
    pub(super) fn close(self: &Arc<Self>) {
        self.closing.store(true, Ordering::SeqCst);
        let live = self.registry.close();
        for record in &live {
            self.end_task(
                record,
                TaskStatus::Cancelled,
                CancelReason::Shutdown,
                Error::new(
                    ErrorKind::Cancelled,
                    format!(
                        "task {} was cancelled because the runtime shut down",
                        record.id
                    ),
                ),
                Ender::Other,
            );
        }
    }

    /// `Runtime::shutdown`: closes, then (unless called on one of the runtime's own threads)
    /// stops and joins every thread — once: a concurrent or later call waits for the first
    /// one's result and returns it.
    pub(in crate::runtime) fn shutdown(self: &Arc<Self>, grace: Duration) -> Result<(), Error> {
        let started = Instant::now();
        if self.on_own_thread() {
            self.close();
            log::debug!("shutdown called from a runtime thread: not waiting for jobs");
            return Ok(());
        }
        // The drain is claimed before closing, so the call that closes first is the one that
        // drains (with its own grace) and a later one waits for its result, however the two
        // threads are scheduled between closing and draining.
        let first = {
            let mut drain = self.drain.lock();
            let first = matches!(*drain, Drain::NotStarted);
            if first {
                *drain = Drain::Running;
            }
            first
        };
        self.close();
        if !first {
            return self.drained_result();
        }
        let result = self.stop_and_join(deadline_after(started, grace), grace);
        *self.drain.lock() = Drain::Done(result.clone());
        self.drained.notify_all();
        result
    }

    /// The last handle went. On a runtime thread (a job held it), the threads are told to stop
    /// and left to exit on their own: none can join itself.
    pub(in crate::runtime) fn release(self: &Arc<Self>) {
        if !self.on_own_thread() {
            if let Err(error) = self.shutdown(self.config.shutdown_grace()) {
                log::warn!("{error}");
            }
            return;
        }
        self.close();
        let mut drain = self.drain.lock();
        if matches!(*drain, Drain::NotStarted) {
            *drain = Drain::Done(Ok(()));
            drop(drain);
            self.stop_threads();
            log::debug!("last runtime handle dropped on a runtime thread: threads detached");
        }
    }

    /// Waits for the drain another call started, and returns its result.
    fn drained_result(&self) -> Result<(), Error> {
        let mut drain = self.drain.lock();
        loop {
            match &*drain {
                Drain::Done(result) => return result.clone(),
                _ => self.drained.wait(&mut drain),
            }
        }
    }

    /// Tells every thread to stop after what it has in hand.
    pub(super) fn stop_threads(&self) {
        self.timer.stop();
        for _ in 0..self.crews.schedulers.len() {
            let _ = self.to_schedulers.send(None);
        }
        for _ in 0..self.crews.executors.len() {
            let _ = self.to_executors.send(None);
        }
        self.janitor.send(Chore::Stop);
        self.delivery.stop();
    }

    /// Stops every thread and joins it, all by one deadline. Execution threads exit as their
    /// jobs return (at once for cooperative ones); the janitor and the mailboxes then finish
    /// the cancel actions and events those jobs set off.
    fn stop_and_join(&self, deadline: Instant, grace: Duration) -> Result<(), Error> {
        let started = Instant::now();
        self.stop_threads();
        self.crews.timer.join_until(deadline);
        self.crews.schedulers.join_until(deadline);
        let stuck = self.crews.executors.join_until(deadline);
        self.crews.janitor.join_until(deadline);
        self.crews.mailboxes.join_until(deadline);
        if stuck > 0 {
            return Err(Error::timeout(
                TimeoutKind::Execution,
                format!(
                    "shutdown: {stuck} job(s) ignore cancellation and still hold execution \
                     threads after {}; they finish on their own and their results are \
                     discarded",
                    time::human(grace)
                ),
            ));
        }
        log::debug!("runtime shut down in {}", time::human(started.elapsed()));
        Ok(())
    }
}
