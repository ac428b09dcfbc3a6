//! Time limits: execution (counted from the run's start), queue and wait timeouts, and
//! first-write-wins when a job returns after its task has timed out.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crossbeam_channel::{Receiver, unbounded};
use subtask::{
    Error, ErrorKind, Event, EventKind, RunOptions, Runtime, TaskId, TaskStatus, TimeoutKind,
};
use support::{
    Gate, PATIENCE, drop_signal, dropped_within, events_until_finished, hold_slot, ms, recorder,
    wait_until, watchdog,
};

/// The status and error of `task`'s Finished event.
fn finished(events: &Receiver<Event>, task: &TaskId) -> (TaskStatus, Option<Error>) {
    let seen = events_until_finished(events, task);
    match &seen.last().unwrap().kind {
        EventKind::Finished { status, error, .. } => (*status, error.clone()),
        other => unreachable!("{other:?}"),
    }
}

#[test]
fn a_job_that_runs_too_long_times_out_with_the_execution_limit() {
    watchdog(|| {
        let (observer, events) = recorder();
        let runtime = Runtime::builder().observer(observer).build().unwrap();
        let handle = runtime
            .submit(
                |job| job.token().sleep(PATIENCE),
                RunOptions::new().execution_timeout(ms(50)),
            )
            .unwrap();
        let id = handle.id().clone();
        let error = handle.wait().unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Timeout, "{error}");
        assert_eq!(error.timeout_kind(), Some(TimeoutKind::Execution));
        let (status, event_error) = finished(&events, &id);
        assert_eq!(status, TaskStatus::TimedOut(TimeoutKind::Execution));
        assert_eq!(
            event_error.and_then(|error| error.timeout_kind()),
            Some(TimeoutKind::Execution)
        );
        assert_eq!(runtime.stats().timed_out, 1);
    });
}

#[test]
fn the_execution_clock_starts_when_the_run_starts_not_at_submission() {
    watchdog(|| {
        let (observer, events) = recorder();
        let runtime = Runtime::builder()
            .execution_threads(1)
            .observer(observer)
            .build()
            .unwrap();
        let execution_timeout = ms(200);
        let held_for = ms(500);
        let (running, holder_running) = unbounded();
        let gate = Gate::new();
        let pass = gate.pass();
        let holder = runtime
            .submit(
                move |_| {
                    running.send(()).unwrap();
                    pass.wait()?;
                    // Simulated work: the queued task waits behind it all this time.
                    std::thread::sleep(held_for);
                    Ok(())
                },
                RunOptions::new().label("holder"),
            )
            .unwrap();
        holder_running.recv_timeout(PATIENCE).unwrap();
        let quick = runtime
            .submit(
                |_| Ok("quick"),
                RunOptions::new().execution_timeout(execution_timeout),
            )
            .unwrap();
        let id = quick.id().clone();
        gate.open();
        assert_eq!(quick.wait().unwrap(), "quick");
        holder.wait().unwrap();
        let seen = events_until_finished(&events, &id);
        let queued_for = seen
            .iter()
            .find_map(|event| match event.kind {
                EventKind::Started { queued_for } => Some(queued_for),
                _ => None,
            })
            .expect("a Started event");
        assert!(
            queued_for > execution_timeout,
            "the task should have waited longer than its execution timeout; waited {queued_for:?}"
        );
    });
}

#[test]
fn a_task_that_waits_too_long_for_a_slot_times_out_without_running() {
    watchdog(|| {
        let (observer, events) = recorder();
        let runtime = Runtime::builder()
            .execution_threads(1)
            .observer(observer)
            .build()
            .unwrap();
        let gate = Gate::new();
        let holder = hold_slot(&runtime, &gate);
        let ran = Arc::new(AtomicBool::new(false));
        let (signal, job_gone) = drop_signal();
        let job_ran = ran.clone();
        let waiting = runtime
            .submit(
                move |_| {
                    job_ran.store(true, Ordering::SeqCst);
                    drop(signal);
                    Ok(())
                },
                RunOptions::new().queue_timeout(ms(50)),
            )
            .unwrap();
        let id = waiting.id().clone();
        let error = waiting.wait().unwrap_err();
        assert_eq!(error.timeout_kind(), Some(TimeoutKind::Queue), "{error}");
        let seen = events_until_finished(&events, &id);
        match &seen.last().unwrap().kind {
            EventKind::Finished {
                status, ran_for, ..
            } => {
                assert_eq!(*status, TaskStatus::TimedOut(TimeoutKind::Queue));
                assert_eq!(*ran_for, None);
            }
            other => unreachable!("{other:?}"),
        }
        gate.open();
        holder.wait().unwrap();
        assert!(
            dropped_within(&job_gone, PATIENCE),
            "the runtime never let go of the job"
        );
        assert!(
            !ran.load(Ordering::SeqCst),
            "a task that timed out in the queue ran"
        );
    });
}

#[test]
fn a_wait_timeout_shorter_than_the_execution_timeout_ends_the_run() {
    watchdog(|| {
        let (observer, events) = recorder();
        let runtime = Runtime::builder().observer(observer).build().unwrap();
        let handle = runtime
            .submit(
                |job| job.token().sleep(PATIENCE),
                RunOptions::new()
                    .execution_timeout(Duration::from_secs(30))
                    .wait_timeout(ms(50)),
            )
            .unwrap();
        let id = handle.id().clone();
        let error = handle.wait().unwrap_err();
        assert_eq!(error.timeout_kind(), Some(TimeoutKind::Wait), "{error}");
        assert_eq!(
            finished(&events, &id).0,
            TaskStatus::TimedOut(TimeoutKind::Wait)
        );
    });
}

#[test]
fn the_wait_timeout_counts_time_spent_in_the_queue() {
    watchdog(|| {
        let (observer, events) = recorder();
        let runtime = Runtime::builder()
            .execution_threads(1)
            .observer(observer)
            .build()
            .unwrap();
        let gate = Gate::new();
        let holder = hold_slot(&runtime, &gate);
        let handle = runtime
            .submit(|_| Ok(()), RunOptions::new().wait_timeout(ms(50)))
            .unwrap();
        let id = handle.id().clone();
        let error = handle.wait().unwrap_err();
        assert_eq!(error.timeout_kind(), Some(TimeoutKind::Wait), "{error}");
        assert_eq!(
            finished(&events, &id).0,
            TaskStatus::TimedOut(TimeoutKind::Wait)
        );
        gate.open();
        holder.wait().unwrap();
    });
}

#[test]
fn the_caller_of_a_job_that_ignores_its_token_gets_the_timeout_while_the_job_runs_on() {
    watchdog(|| {
        let runtime = Runtime::builder().shutdown_grace(ms(100)).build().unwrap();
        let gate = Gate::new();
        let pass = gate.pass();
        // The gate stays shut until the caller has its answer: only the timer can end it.
        let error = runtime
            .run(
                move |_| pass.wait().map(|()| "late"),
                RunOptions::new().execution_timeout(ms(50)),
            )
            .unwrap_err();
        assert_eq!(
            error.timeout_kind(),
            Some(TimeoutKind::Execution),
            "{error}"
        );
        let stats = runtime.stats();
        assert_eq!((stats.zombies, stats.running, stats.live), (1, 0, 1));
        gate.open();
        assert!(
            wait_until(PATIENCE, || {
                let stats = runtime.stats();
                stats.zombies == 0 && stats.live == 0
            }),
            "the zombie never left: {:?}",
            runtime.stats()
        );
        let stats = runtime.stats();
        assert_eq!((stats.timed_out, stats.completed), (1, 0));
    });
}

#[test]
fn a_late_result_after_a_timeout_is_discarded() {
    watchdog(|| {
        let (observer, events) = recorder();
        let runtime = Runtime::builder()
            .shutdown_grace(ms(100))
            .observer(observer)
            .build()
            .unwrap();
        let gate = Gate::new();
        let pass = gate.pass();
        let handle = runtime
            .submit(
                move |_| pass.wait().map(|()| "late result"),
                RunOptions::new().execution_timeout(ms(50)),
            )
            .unwrap();
        let id = handle.id().clone();
        gate.expect_arrivals(1);
        // Nobody waits on the handle: the timer alone ends the task.
        let timed_out = TaskStatus::TimedOut(TimeoutKind::Execution);
        assert!(wait_until(PATIENCE, || handle.status() == timed_out));
        assert_eq!(runtime.stats().zombies, 1);
        gate.open(); // the job now returns Ok, too late
        assert!(
            wait_until(PATIENCE, || {
                let stats = runtime.stats();
                stats.zombies == 0 && stats.live == 0
            }),
            "the job never gave its thread back: {:?}",
            runtime.stats()
        );
        assert_eq!(handle.status(), timed_out);
        let error = handle.wait().unwrap_err();
        assert_eq!(
            error.timeout_kind(),
            Some(TimeoutKind::Execution),
            "{error}"
        );
        let stats = runtime.stats();
        assert_eq!((stats.timed_out, stats.completed, stats.failed), (1, 0, 0));
        // One Finished event, with the first status written.
        assert_eq!(finished(&events, &id).0, timed_out);
        runtime.shutdown(PATIENCE).unwrap();
        let later_finished = events
            .try_iter()
            .filter(|event| matches!(event.kind, EventKind::Finished { .. }))
            .count();
        assert_eq!(later_finished, 0);
    });
}
