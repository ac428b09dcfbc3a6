//! Cancellation: tokens reach the work, cancel actions run on every path that ends a task,
//! and a cancelled or timed-out cooperative job gives its execution thread back.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded, unbounded};
use subtask::{
    CancelReason, Error, ErrorKind, JobContext, RunOptions, Runtime, TaskId, TaskStatus,
    TimeoutKind,
};
use support::{Gate, PATIENCE, drop_signal, dropped_within, hold_slot, ms, wait_until, watchdog};

/// Jobs whose work only their cancel action can stop, as a job blocked on a child process
/// is stopped by the action that kills it. Each job registers that action (which also
/// reports its token's reason), says it is running, then blocks until the action runs.
///
/// Blocking on the token instead (`token().sleep`) would race with the timer on a
/// timeout: the job may notice its own deadline, return and unregister the action before
/// the runtime trips the token, and the action then rightly never runs.
struct Stoppable {
    reason_tx: Sender<Option<CancelReason>>,
    reasons: Receiver<Option<CancelReason>>,
    running_tx: Sender<TaskId>,
    running: Receiver<TaskId>,
}

impl Stoppable {
    fn new() -> Stoppable {
        let (reason_tx, reasons) = unbounded();
        let (running_tx, running) = unbounded();
        Stoppable {
            reason_tx,
            reasons,
            running_tx,
            running,
        }
    }

    fn job(&self) -> impl FnOnce(&JobContext<'_>) -> Result<(), Error> + Send + 'static {
        let (reasons, running) = (self.reason_tx.clone(), self.running_tx.clone());
        move |job: &JobContext<'_>| {
            let (stop, stopped) = bounded::<()>(0);
            let token = job.token().clone();
            let _action = job.token().on_cancel(move || {
                let _ = reasons.send(token.reason());
                drop(stop); // the blocked work ends
            });
            running.send(job.id().clone()).unwrap();
            let _ = stopped.recv_timeout(PATIENCE);
            job.token().check()
        }
    }

    /// The id of the next job to start running.
    fn expect_running(&self) -> TaskId {
        self.running
            .recv_timeout(PATIENCE)
            .expect("a stoppable job started")
    }

    /// The reason the next cancel action saw.
    fn expect_action(&self) -> Option<CancelReason> {
        self.reasons
            .recv_timeout(PATIENCE)
            .expect("a cancel action ran")
    }
}

#[test]
fn a_cooperative_job_that_times_out_frees_its_slot_for_the_next_task() {
    watchdog(|| {
        let runtime = Runtime::builder().execution_threads(1).build().unwrap();
        let sleeper = runtime
            .submit(
                |job| job.token().sleep(Duration::from_secs(60)),
                RunOptions::new().execution_timeout(ms(30)),
            )
            .unwrap();
        assert!(wait_until(PATIENCE, || sleeper.status() != TaskStatus::Pending));
        let started = Instant::now();
        let next = runtime.submit(|_| Ok("next"), RunOptions::new()).unwrap();
        assert_eq!(next.wait().unwrap(), "next");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the next task waited {:?} for the slot",
            started.elapsed()
        );
        let error = sleeper.wait().unwrap_err();
        assert_eq!(
            error.timeout_kind(),
            Some(TimeoutKind::Execution),
            "{error}"
        );
        assert_eq!(runtime.stats().zombies, 0);
    });
}

#[test]
fn remaining_time_inside_a_job_is_bounded_by_its_execution_timeout() {
    let runtime = Runtime::new().unwrap();
    let execution_timeout = Duration::from_secs(30);
    let (remaining, deadline) = runtime
        .run(
            |job| Ok((job.token().remaining(), job.token().deadline())),
            RunOptions::new().execution_timeout(execution_timeout),
        )
        .unwrap();
    let remaining = remaining.expect("a running job has a deadline");
    assert!(deadline.is_some());
    assert!(remaining <= execution_timeout, "{remaining:?}");
    assert!(remaining > Duration::ZERO);
    // A shorter wait timeout bounds the run as well.
    let remaining = runtime
        .run(
            |job| Ok(job.token().remaining()),
            RunOptions::new()
                .execution_timeout(execution_timeout)
                .wait_timeout(Duration::from_secs(5)),
        )
        .unwrap()
        .unwrap();
    assert!(remaining <= Duration::from_secs(5), "{remaining:?}");
}

#[test]
fn cancel_actions_run_when_the_task_times_out() {
    watchdog(|| {
        let runtime = Runtime::new().unwrap();
        let jobs = Stoppable::new();
        let error = runtime
            .run(jobs.job(), RunOptions::new().execution_timeout(ms(30)))
            .unwrap_err();
        assert_eq!(
            error.timeout_kind(),
            Some(TimeoutKind::Execution),
            "{error}"
        );
        assert_eq!(
            jobs.expect_action(),
            Some(CancelReason::TimedOut(TimeoutKind::Execution))
        );
    });
}

#[test]
fn cancel_actions_run_when_the_host_cancels_the_task_by_id() {
    watchdog(|| {
        let runtime = Runtime::new().unwrap();
        let jobs = Stoppable::new();
        let handle = runtime.submit(jobs.job(), RunOptions::new()).unwrap();
        let id = jobs.expect_running();
        assert_eq!(&id, handle.id());
        assert!(runtime.cancel(id.as_str()));
        assert_eq!(jobs.expect_action(), Some(CancelReason::Cancelled));
        assert_eq!(handle.wait().unwrap_err().kind(), ErrorKind::Cancelled);
        assert!(
            !runtime.cancel(id.as_str()),
            "an ended task cannot be cancelled"
        );
    });
}

#[test]
fn cancel_actions_run_on_cancel_all() {
    watchdog(|| {
        let runtime = Runtime::new().unwrap();
        let jobs = Stoppable::new();
        let handles: Vec<_> = (0..2)
            .map(|_| runtime.submit(jobs.job(), RunOptions::new()).unwrap())
            .collect();
        for _ in 0..2 {
            jobs.expect_running();
        }
        assert_eq!(runtime.cancel_all(), 2);
        for _ in 0..2 {
            assert_eq!(jobs.expect_action(), Some(CancelReason::Cancelled));
        }
        for handle in handles {
            assert_eq!(handle.wait().unwrap_err().kind(), ErrorKind::Cancelled);
        }
        assert_eq!(runtime.cancel_all(), 0);
        assert_eq!(runtime.stats().cancelled, 2);
    });
}

#[test]
fn cancel_actions_run_on_shutdown() {
    watchdog(|| {
        let runtime = Runtime::new().unwrap();
        let jobs = Stoppable::new();
        let handle = runtime.submit(jobs.job(), RunOptions::new()).unwrap();
        jobs.expect_running();
        runtime.shutdown(PATIENCE).unwrap();
        assert_eq!(jobs.expect_action(), Some(CancelReason::Shutdown));
        assert_eq!(handle.wait().unwrap_err().kind(), ErrorKind::Cancelled);
    });
}

#[test]
fn dropping_a_task_handle_cancels_its_task() {
    watchdog(|| {
        let runtime = Runtime::new().unwrap();
        let jobs = Stoppable::new();
        let handle = runtime.submit(jobs.job(), RunOptions::new()).unwrap();
        jobs.expect_running();
        drop(handle);
        assert_eq!(jobs.expect_action(), Some(CancelReason::Cancelled));
        assert!(wait_until(PATIENCE, || {
            let stats = runtime.stats();
            stats.cancelled == 1 && stats.live == 0
        }));
    });
}

#[test]
fn a_task_cancelled_while_queued_ends_cancelled_and_its_job_never_runs() {
    watchdog(|| {
        let runtime = Runtime::builder().execution_threads(1).build().unwrap();
        let gate = Gate::new();
        let holder = hold_slot(&runtime, &gate);
        let ran = Arc::new(AtomicBool::new(false));
        let (signal, job_gone) = drop_signal();
        let job_ran = ran.clone();
        let queued = runtime
            .submit(
                move |_| {
                    job_ran.store(true, Ordering::SeqCst);
                    drop(signal);
                    Ok(())
                },
                RunOptions::new(),
            )
            .unwrap();
        assert_eq!(queued.status(), TaskStatus::Pending);
        assert!(runtime.cancel(queued.id().as_str()));
        assert_eq!(queued.status(), TaskStatus::Cancelled);
        let stats = runtime.stats();
        assert_eq!((stats.queued, stats.cancelled), (0, 1));
        assert_eq!(queued.wait().unwrap_err().kind(), ErrorKind::Cancelled);
        gate.open();
        holder.wait().unwrap();
        assert!(
            dropped_within(&job_gone, PATIENCE),
            "the runtime never let go of the job"
        );
        assert!(!ran.load(Ordering::SeqCst), "a cancelled task's job ran");
    });
}

#[test]
fn a_running_task_can_be_cancelled_once() {
    watchdog(|| {
        let runtime = Runtime::new().unwrap();
        let jobs = Stoppable::new();
        let handle = runtime.submit(jobs.job(), RunOptions::new()).unwrap();
        jobs.expect_running();
        assert_eq!(handle.status(), TaskStatus::Running);
        assert!(handle.cancel());
        assert!(!handle.cancel(), "the first terminal write wins");
        assert_eq!(handle.status(), TaskStatus::Cancelled);
        let error = handle.wait().unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Cancelled, "{error}");
        assert!(wait_until(PATIENCE, || runtime.stats().live == 0));
        assert_eq!(runtime.stats().completed, 0);
    });
}

#[test]
fn cancelling_an_unknown_id_returns_false() {
    let runtime = Runtime::new().unwrap();
    assert!(!runtime.cancel("no-such-task"));
    assert!(!runtime.cancel(""));
    let finished = runtime
        .run(|job| Ok(job.id().clone()), RunOptions::new())
        .unwrap();
    assert!(!runtime.cancel(finished.as_str()));
    assert_eq!(runtime.stats().cancelled, 0);
}
