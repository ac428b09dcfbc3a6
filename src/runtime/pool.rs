//! A fixed set of named threads fed by one crossbeam channel.
//!
//! Written here rather than taken from the `threadpool` crate, measured: its workers block
//! in `recv()` while holding a `Mutex<Receiver>`, so every job wakes two threads (the
//! receiver and the next waiter for the mutex), which doubled the context switches of a
//! round trip; and it can neither join its threads nor bound the wait for them, which
//! shutdown needs. crossbeam's channel is multi-consumer, so idle workers simply wait on it.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;

type Job = Box<dyn FnOnce() + Send>;

enum Message {
    Run(Job),
    /// Ends one worker, after the jobs queued before it.
    Stop,
}

pub(crate) struct Pool {
    name: &'static str,
    sender: Sender<Message>,
    /// Taken by `stop`; every thread the pool started is in here until then.
    threads: Mutex<Vec<JoinHandle<()>>>,
    /// Each worker sends once as it exits, so `stop` can wait with a deadline.
    exited: Receiver<()>,
}

/// Sends on the pool's `exited` channel when a worker ends, however it ends.
struct ExitSignal(Sender<()>);

impl Drop for ExitSignal {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

impl Pool {
    /// Starts `threads` threads named `{name}-{n}`.
    pub(crate) fn new(name: &'static str, threads: usize) -> std::io::Result<Pool> {
        let (sender, receiver) = crossbeam_channel::unbounded::<Message>();
        let (exit_sender, exited) = crossbeam_channel::unbounded();
        let pool = Pool {
            name,
            sender,
            threads: Mutex::new(Vec::with_capacity(threads)),
            exited,
        };
        for n in 0..threads {
            let receiver = receiver.clone();
            let exit = ExitSignal(exit_sender.clone());
            let thread = std::thread::Builder::new()
                .name(format!("{name}-{n}"))
                .spawn(move || work(name, &receiver, exit))?;
            pool.threads.lock().push(thread);
        }
        Ok(pool)
    }

    /// Queues `job` for the next free thread.
    pub(crate) fn execute(&self, job: impl FnOnce() + Send + 'static) {
        // The receiver lives as long as any worker; after `stop`, jobs are dropped unrun.
        let _ = self.sender.send(Message::Run(Box::new(job)));
    }

    /// Lets every thread finish the jobs queued so far, then waits until `deadline` for
    /// them to exit and joins them. Returns how many are still busy (left to exit on their
    /// own). Call at most once, and never from one of the pool's own threads.
    pub(crate) fn stop(&self, deadline: Instant) -> usize {
        let threads = std::mem::take(&mut *self.threads.lock());
        for _ in &threads {
            let _ = self.sender.send(Message::Stop);
        }
        let mut running = threads.len();
        while running > 0 && self.exited.recv_deadline(deadline).is_ok() {
            running -= 1;
        }
        if running == 0 {
            for thread in threads {
                let _ = thread.join();
            }
        } else {
            log::warn!(
                "{running} {} thread(s) still busy at shutdown; they exit when their job returns",
                self.name
            );
        }
        running
    }
}

fn work(name: &str, receiver: &Receiver<Message>, _exit: ExitSignal) {
    for message in receiver {
        match message {
            // Jobs catch their own panics; this keeps the thread alive through a bug.
            Message::Run(job) => {
                if let Err(panic) = catch_unwind(AssertUnwindSafe(job)) {
                    log::error!(
                        "a {name} job panicked: {}",
                        super::panic_message(panic.as_ref())
                    );
                }
            }
            Message::Stop => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[test]
    fn runs_every_job_then_stops_and_joins() {
        let pool = Pool::new("test-pool", 3).unwrap();
        let ran = Arc::new(AtomicUsize::new(0));
        for _ in 0..100 {
            let ran = ran.clone();
            pool.execute(move || {
                ran.fetch_add(1, Ordering::SeqCst);
            });
        }
        assert_eq!(pool.stop(Instant::now() + Duration::from_secs(10)), 0);
        assert_eq!(ran.load(Ordering::SeqCst), 100);
    }

    #[test]
    fn a_panicking_job_does_not_cost_a_thread() {
        let pool = Pool::new("test-pool", 1).unwrap();
        pool.execute(|| panic!("boom"));
        let (done, finished) = crossbeam_channel::bounded(1);
        pool.execute(move || done.send(()).unwrap());
        finished.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(pool.stop(Instant::now() + Duration::from_secs(10)), 0);
    }

    #[test]
    fn stop_reports_threads_still_busy_at_the_deadline() {
        let pool = Pool::new("test-pool", 2).unwrap();
        let (release, released) = crossbeam_channel::bounded::<()>(0);
        pool.execute(move || {
            let _ = released.recv();
        });
        assert_eq!(pool.stop(Instant::now() + Duration::from_millis(50)), 1);
        drop(release);
    }
}
