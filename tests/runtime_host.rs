//! What a host sees and relies on: a task's lifecycle, admission limits, panics as
//! failures, the `stats()` and `tasks()` views, and ended tasks that never pile up.

mod support;

use std::sync::Arc;

use subtask::{Error, ErrorKind, EventKind, RunOptions, Runtime, TaskStatus, TimeoutKind};
use support::{
    Gate, PATIENCE, events_until_finished, hold_slot, ms, names, recorder, wait_until, watchdog,
};

#[test]
fn a_task_goes_pending_then_running_then_completed() {
    watchdog(|| {
        let (observer, events) = recorder();
        let runtime = Runtime::builder()
            .execution_threads(1)
            .observer(observer)
            .build()
            .unwrap();
        let slot = Gate::new();
        let holder = hold_slot(&runtime, &slot);
        let gate = Gate::new();
        let pass = gate.pass();
        let task = runtime
            .submit(move |_| pass.wait().map(|()| 5), RunOptions::new())
            .unwrap();
        let id = task.id().clone();
        assert_eq!(task.status(), TaskStatus::Pending);
        slot.open();
        holder.wait().unwrap();
        gate.expect_arrivals(1);
        assert_eq!(task.status(), TaskStatus::Running);
        gate.open();
        assert!(wait_until(PATIENCE, || task.status() == TaskStatus::Completed));
        assert_eq!(task.wait().unwrap(), 5);
        let seen = events_until_finished(&events, &id);
        assert_eq!(names(&seen), ["queued", "started", "finished"]);
    });
}

#[test]
fn each_way_of_ending_leaves_its_own_terminal_status() {
    watchdog(|| {
        let runtime = Runtime::new().unwrap();
        let failed = runtime
            .submit(|_| Err::<(), _>(Error::other("no")), RunOptions::new())
            .unwrap();
        let panicked = runtime
            .submit(
                |_| -> Result<(), Error> { panic!("boom") },
                RunOptions::new(),
            )
            .unwrap();
        let timed_out = runtime
            .submit(
                |job| job.token().sleep(PATIENCE),
                RunOptions::new().execution_timeout(ms(20)),
            )
            .unwrap();
        let cancelled = runtime
            .submit(|job| job.token().sleep(PATIENCE), RunOptions::new())
            .unwrap();
        assert!(cancelled.cancel());
        for (handle, status) in [
            (&failed, TaskStatus::Failed),
            (&panicked, TaskStatus::Failed),
            (&timed_out, TaskStatus::TimedOut(TimeoutKind::Execution)),
            (&cancelled, TaskStatus::Cancelled),
        ] {
            assert!(
                wait_until(PATIENCE, || handle.status() == status),
                "{handle:?} should end {status}"
            );
            assert!(status.is_terminal());
        }
        assert_eq!(failed.wait().unwrap_err().kind(), ErrorKind::Other);
        assert_eq!(panicked.wait().unwrap_err().kind(), ErrorKind::Panic);
        assert_eq!(timed_out.wait().unwrap_err().kind(), ErrorKind::Timeout);
        assert_eq!(cancelled.wait().unwrap_err().kind(), ErrorKind::Cancelled);
        let stats = runtime.stats();
        assert_eq!(
            (
                stats.failed,
                stats.timed_out,
                stats.cancelled,
                stats.completed
            ),
            (2, 1, 1, 0)
        );
    });
}

#[test]
fn a_full_queue_refuses_the_next_task_at_once_with_a_retryable_error() {
    watchdog(|| {
        let runtime = Runtime::builder()
            .execution_threads(1)
            .max_queued(3)
            .build()
            .unwrap();
        let gate = Gate::new();
        let holder = hold_slot(&runtime, &gate);
        let queued: Vec<_> = (0..3)
            .map(|_| runtime.submit(|_| Ok(()), RunOptions::new()).unwrap())
            .collect();
        let error = runtime.submit(|_| Ok(()), RunOptions::new()).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::QueueFull, "{error}");
        assert!(error.is_retryable());
        assert!(
            error.to_string().contains('3') && error.to_string().contains("max_queued"),
            "the error should name the limit: {error}"
        );
        let stats = runtime.stats();
        assert_eq!((stats.rejected, stats.queued, stats.submitted), (1, 3, 4));
        gate.open();
        holder.wait().unwrap();
        for handle in queued {
            handle.wait().unwrap();
        }
        // The queue has room again.
        runtime.run(|_| Ok(()), RunOptions::new()).unwrap();
        assert_eq!(runtime.stats().rejected, 1);
    });
}

#[test]
fn a_panicking_job_fails_with_the_panic_message() {
    watchdog(|| {
        let (observer, events) = recorder();
        let runtime = Runtime::builder().observer(observer).build().unwrap();
        let handle = runtime
            .submit(
                |_| -> Result<(), Error> { panic!("the model went sideways") },
                RunOptions::new(),
            )
            .unwrap();
        let id = handle.id().clone();
        assert!(wait_until(PATIENCE, || handle.status() == TaskStatus::Failed));
        let error = handle.wait().unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Panic);
        assert!(
            error.to_string().contains("the model went sideways"),
            "{error}"
        );
        let seen = events_until_finished(&events, &id);
        match &seen.last().unwrap().kind {
            EventKind::Finished { status, error, .. } => {
                assert_eq!(*status, TaskStatus::Failed);
                assert_eq!(error.as_ref().map(Error::kind), Some(ErrorKind::Panic));
            }
            other => unreachable!("{other:?}"),
        }
        assert_eq!(runtime.stats().failed, 1);
    });
}

#[test]
fn a_hundred_panicking_jobs_leave_all_eight_execution_threads_working() {
    watchdog(|| {
        let runtime = Runtime::new().unwrap();
        for i in 0..100 {
            let error = runtime
                .run(
                    move |_| -> Result<(), Error> { panic!("panic number {i}") },
                    RunOptions::new(),
                )
                .unwrap_err();
            assert_eq!(error.kind(), ErrorKind::Panic);
            assert!(error.to_string().contains(&format!("panic number {i}")));
        }
        assert_eq!(runtime.stats().failed, 100);
        let gate = Gate::new();
        let eight: Vec<_> = (0..8)
            .map(|_| {
                let pass = gate.pass();
                runtime
                    .submit(move |_| pass.wait(), RunOptions::new())
                    .unwrap()
            })
            .collect();
        gate.expect_arrivals(8);
        assert_eq!(runtime.stats().running, 8);
        gate.open();
        for handle in eight {
            handle.wait().unwrap();
        }
    });
}

#[test]
fn stats_count_a_known_mix_of_outcomes() {
    watchdog(|| {
        let runtime = Runtime::builder().execution_threads(1).build().unwrap();
        for _ in 0..2 {
            runtime.run(|_| Ok(()), RunOptions::new()).unwrap();
        }
        runtime
            .run(|_| Err::<(), _>(Error::other("no")), RunOptions::new())
            .unwrap_err();
        runtime
            .run(
                |_| -> Result<(), Error> { panic!("boom") },
                RunOptions::new(),
            )
            .unwrap_err();
        runtime
            .run(
                |job| job.token().sleep(PATIENCE),
                RunOptions::new().execution_timeout(ms(20)),
            )
            .unwrap_err();
        let cancelled = runtime
            .submit(|job| job.token().sleep(PATIENCE), RunOptions::new())
            .unwrap();
        assert!(wait_until(PATIENCE, || cancelled.status() == TaskStatus::Running));
        assert!(cancelled.cancel());
        cancelled.wait().unwrap_err();
        // One task running (it got the slot, so every job above has returned) and one queued.
        let gate = Gate::new();
        let holder = hold_slot(&runtime, &gate);
        let waiting = runtime.submit(|_| Ok(()), RunOptions::new()).unwrap();

        let stats = runtime.stats();
        assert_eq!(stats.submitted, 8);
        assert_eq!(
            (
                stats.completed,
                stats.failed,
                stats.cancelled,
                stats.timed_out
            ),
            (2, 2, 1, 1)
        );
        assert_eq!(
            (stats.running, stats.queued, stats.zombies, stats.live),
            (1, 1, 0, 2)
        );
        assert_eq!(stats.rejected, 0);

        gate.open();
        holder.wait().unwrap();
        waiting.wait().unwrap();
        let stats = runtime.stats();
        assert_eq!((stats.completed, stats.running, stats.queued), (4, 0, 0));
    });
}

#[test]
fn tasks_lists_running_and_pending_tasks_oldest_first() {
    watchdog(|| {
        let runtime = Runtime::builder().execution_threads(1).build().unwrap();
        assert!(runtime.tasks().is_empty());
        let gate = Gate::new();
        let holder = hold_slot(&runtime, &gate);
        let waiting = runtime
            .submit(|_| Ok(()), RunOptions::new().label("Waiter Two"))
            .unwrap();
        let tasks = runtime.tasks();
        assert_eq!(tasks.len(), 2, "{tasks:?}");
        let (running, pending) = (&tasks[0], &tasks[1]);
        assert_eq!(&running.id, holder.id());
        assert_eq!(&*running.label, "holder");
        assert_eq!(running.status, TaskStatus::Running);
        assert!(running.holds_slot);
        assert!(running.running_for.is_some());
        assert_eq!(&pending.id, waiting.id());
        assert_eq!(&*pending.label, "waiter-two");
        assert_eq!(pending.status, TaskStatus::Pending);
        assert!(!pending.holds_slot);
        assert_eq!(pending.running_for, None);
        assert!(running.age > pending.age);
        gate.open();
        holder.wait().unwrap();
        waiting.wait().unwrap();
        assert!(runtime.tasks().is_empty());
    });
}

#[test]
fn a_job_that_ignores_cancellation_is_listed_as_a_zombie_holding_its_slot() {
    watchdog(|| {
        let runtime = Runtime::builder().shutdown_grace(ms(100)).build().unwrap();
        let gate = Gate::new();
        let pass = gate.pass();
        let handle = runtime
            .submit(
                move |_| pass.wait(),
                RunOptions::new()
                    .label("stubborn")
                    .execution_timeout(ms(30)),
            )
            .unwrap();
        gate.expect_arrivals(1);
        let timed_out = TaskStatus::TimedOut(TimeoutKind::Execution);
        assert!(wait_until(PATIENCE, || handle.status() == timed_out));
        let stats = runtime.stats();
        assert_eq!(
            (stats.zombies, stats.running, stats.live, stats.timed_out),
            (1, 0, 1, 1)
        );
        let tasks = runtime.tasks();
        assert_eq!(tasks.len(), 1, "{tasks:?}");
        assert_eq!(&tasks[0].id, handle.id());
        assert_eq!(tasks[0].status, timed_out);
        assert!(tasks[0].status.is_terminal());
        assert!(tasks[0].holds_slot);
        gate.open();
        assert!(wait_until(PATIENCE, || {
            let stats = runtime.stats();
            stats.zombies == 0 && stats.live == 0
        }));
        assert!(runtime.tasks().is_empty());
        assert_eq!(
            handle.wait().unwrap_err().timeout_kind(),
            Some(TimeoutKind::Execution)
        );
    });
}

#[test]
fn a_forgotten_handle_leaves_no_record_behind() {
    watchdog(|| {
        let runtime = Runtime::new().unwrap();
        std::mem::forget(runtime.submit(|_| Ok(()), RunOptions::new()).unwrap());
        std::mem::forget(
            runtime
                .submit(
                    |job| job.token().sleep(PATIENCE),
                    RunOptions::new().execution_timeout(ms(20)),
                )
                .unwrap(),
        );
        assert!(
            wait_until(PATIENCE, || {
                let stats = runtime.stats();
                stats.live == 0 && stats.completed == 1 && stats.timed_out == 1
            }),
            "records of ended tasks stayed: {:?}",
            runtime.stats()
        );
        assert!(runtime.tasks().is_empty());
    });
}

#[test]
fn run_is_refused_at_once_too_when_the_queue_is_full() {
    watchdog(|| {
        let runtime = Runtime::builder()
            .execution_threads(1)
            .max_queued(1)
            .build()
            .unwrap();
        let gate = Gate::new();
        let holder = hold_slot(&runtime, &gate);
        let first = runtime.submit(|_| Ok(1), RunOptions::new()).unwrap();
        let refused = runtime.run(|_| Ok(2), RunOptions::new()).unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::QueueFull);
        assert_eq!(runtime.stats().rejected, 1);
        gate.open();
        holder.wait().unwrap();
        assert_eq!(first.wait().unwrap(), 1);
        assert_eq!(runtime.run(|_| Ok(2), RunOptions::new()).unwrap(), 2);
    });
}

/// A task that ends while queued (queue timeout, cancel) leaves the queue and drops its job
/// at once, so a job that holds its thread forever cannot make tasks pile up behind it.
#[test]
fn tasks_that_end_in_the_queue_do_not_pile_up_behind_a_stuck_job() {
    watchdog(|| {
        let max_queued = 2;
        let runtime = Runtime::builder()
            .execution_threads(1)
            .max_queued(max_queued)
            .shutdown_grace(ms(100))
            .build()
            .unwrap();
        let gate = Gate::new();
        let stuck = hold_slot(&runtime, &gate);
        let jobs = Arc::new(()); // each queued job holds a clone
        for _ in 0..20 {
            let held = jobs.clone();
            let error = runtime
                .run(
                    move |_| {
                        drop(held);
                        Ok(())
                    },
                    RunOptions::new().queue_timeout(ms(10)),
                )
                .unwrap_err();
            assert_eq!(error.timeout_kind(), Some(TimeoutKind::Queue), "{error}");
        }
        assert_eq!(runtime.stats().queued, 0);
        assert!(
            wait_until(ms(1000), || Arc::strong_count(&jobs) - 1 <= max_queued),
            "{} jobs of tasks that already timed out are still held (max_queued = {max_queued})",
            Arc::strong_count(&jobs) - 1
        );
        gate.open();
        stuck.wait().unwrap();
    });
}
