//! Named threads that can be joined with a deadline: the runtime's scheduler, execution,
//! janitor and mailbox threads are all started through a [`Crew`].
//!
//! Written here rather than taken from the `threadpool` crate, measured: its workers block in
//! `recv()` while holding a `Mutex<Receiver>`, so every job woke two threads, which doubled
//! the context switches of a round trip; and it can neither join its threads nor bound the
//! wait for them, which shutdown needs. Each crew's owner feeds its threads on a typed
//! queue of its own (an `Arc<Record>`, not a boxed closure): the scheduler and execution
//! threads on a [`Handoff`](super::handoff::Handoff), which keeps sequential work on warm
//! threads, the others on crossbeam channels.

use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;

/// A fixed set of threads. Every thread it started is in `threads` until `join_until`.
pub(crate) struct Crew {
    name: &'static str,
    threads: Mutex<Vec<JoinHandle<()>>>,
    /// Each thread sends once as it exits (however it exits), so `join_until` can wait with a
    /// deadline instead of blocking in `join`.
    exited: Receiver<()>,
    exit: Sender<()>,
}

/// Sends on the crew's `exited` channel when a thread ends, even by unwinding.
struct ExitSignal(Sender<()>);

impl Drop for ExitSignal {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

impl Crew {
    pub(crate) fn new(name: &'static str) -> Crew {
        let (exit, exited) = crossbeam_channel::unbounded();
        Crew {
            name,
            threads: Mutex::new(Vec::new()),
            exited,
            exit,
        }
    }

    /// Starts thread `{name}-{n}` running `body(n)`.
    pub(crate) fn spawn(
        &self,
        n: usize,
        body: impl FnOnce(usize) + Send + 'static,
    ) -> std::io::Result<()> {
        let signal = ExitSignal(self.exit.clone());
        let thread = std::thread::Builder::new()
            .name(format!("{}-{n}", self.name))
            .spawn(move || {
                let _signal = signal;
                body(n);
            })?;
        self.threads.lock().push(thread);
        Ok(())
    }

    /// How many threads the crew started and has not joined.
    pub(crate) fn len(&self) -> usize {
        self.threads.lock().len()
    }

    /// Waits until `deadline` for every thread to exit (the owner has told them to) and joins
    /// them. Returns how many are still busy; those are left to exit on their own. Never call
    /// from one of the crew's own threads.
    pub(crate) fn join_until(&self, deadline: Instant) -> usize {
        let threads = std::mem::take(&mut *self.threads.lock());
        let mut running = threads.len();
        while running > 0 && self.exited.recv_deadline(deadline).is_ok() {
            running -= 1;
        }
        if running == 0 {
            for thread in threads {
                if thread.join().is_err() {
                    log::error!("a {} thread panicked", self.name);
                }
            }
        } else {
            log::warn!(
                "{running} {} thread(s) still busy at shutdown; they exit when what they run \
                 returns",
                self.name
            );
        }
        running
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn joins_threads_that_exit_and_reports_the_busy_ones() {
        let crew = Crew::new("test-crew");
        let (release, released) = crossbeam_channel::bounded::<()>(0);
        crew.spawn(0, |_| {}).unwrap();
        crew.spawn(1, move |_| {
            let _ = released.recv();
        })
        .unwrap();
        assert_eq!(
            crew.join_until(Instant::now() + Duration::from_millis(50)),
            1
        );
        drop(release);
    }

    #[test]
    fn a_thread_that_panics_still_counts_as_exited() {
        let crew = Crew::new("test-crew");
        crew.spawn(0, |_| panic!("boom")).unwrap();
        assert_eq!(crew.join_until(Instant::now() + Duration::from_secs(10)), 0);
    }
}
