//! Shutdown: explicit, by dropping the last handle, and from inside a job; and jobs that
//! ignore cancellation.

mod support;

use crossbeam_channel::unbounded;
use subtask::{CancelReason, ErrorKind, RunOptions, Runtime, TimeoutKind};
use support::{
    DropSignal, Gate, PATIENCE, drop_signal, dropped_within, hold_slot, ms, wait_until, watchdog,
};

#[test]
fn shutdown_cancels_a_running_cooperative_job_and_returns_ok() {
    watchdog(|| {
        let runtime = Runtime::new().unwrap();
        let (running_tx, running) = unbounded();
        let handle = runtime
            .submit(
                move |job| {
                    running_tx.send(()).unwrap();
                    job.token().sleep(PATIENCE)
                },
                RunOptions::new(),
            )
            .unwrap();
        running.recv_timeout(PATIENCE).unwrap();
        runtime.shutdown(PATIENCE).unwrap();
        let error = handle.wait().unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Cancelled, "{error}");
        let stats = runtime.stats();
        assert_eq!(
            (stats.cancelled, stats.running, stats.zombies, stats.live),
            (1, 0, 0, 0)
        );
        // Calling it again is harmless.
        runtime.shutdown(PATIENCE).unwrap();
    });
}

#[test]
fn submit_and_run_fail_with_shutdown_after_shutdown() {
    watchdog(|| {
        let runtime = Runtime::new().unwrap();
        runtime.shutdown(PATIENCE).unwrap();
        let error = runtime.submit(|_| Ok(()), RunOptions::new()).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Shutdown, "{error}");
        assert!(!error.is_retryable());
        assert_eq!(error.to_string(), error.message());
        let error = runtime.run(|_| Ok(()), RunOptions::new()).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Shutdown, "{error}");
        let stats = runtime.stats();
        assert_eq!((stats.submitted, stats.queued, stats.live), (0, 0, 0));
    });
}

#[test]
fn shutdown_reports_jobs_that_ignore_cancellation_as_a_timeout_naming_their_count() {
    watchdog(|| {
        let runtime = Runtime::builder().shutdown_grace(ms(100)).build().unwrap();
        let gate = Gate::new();
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let pass = gate.pass();
                runtime
                    .submit(move |_| pass.wait(), RunOptions::new())
                    .unwrap()
            })
            .collect();
        gate.expect_arrivals(2);
        let error = runtime.shutdown(ms(50)).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Timeout, "{error}");
        assert!(error.to_string().contains("2 job"), "{error}");
        for handle in handles {
            assert_eq!(handle.wait().unwrap_err().kind(), ErrorKind::Cancelled);
        }
        assert_eq!(runtime.stats().zombies, 2);
        gate.open();
        assert!(wait_until(PATIENCE, || {
            let stats = runtime.stats();
            stats.zombies == 0 && stats.live == 0
        }));
    });
}

#[test]
fn dropping_the_last_runtime_handle_cancels_running_jobs() {
    watchdog(|| {
        let runtime = Runtime::new().unwrap();
        let (running_tx, running) = unbounded();
        let (reasons_tx, reasons) = unbounded();
        let handle = runtime
            .submit(
                move |job| {
                    let token = job.token().clone();
                    let _action = job.token().on_cancel(move || {
                        let _ = reasons_tx.send(token.reason());
                    });
                    running_tx.send(()).unwrap();
                    job.token().sleep(PATIENCE)
                },
                RunOptions::new(),
            )
            .unwrap();
        running.recv_timeout(PATIENCE).unwrap();
        drop(runtime);
        assert_eq!(
            reasons
                .recv_timeout(PATIENCE)
                .expect("the cancel action ran"),
            Some(CancelReason::Shutdown)
        );
        let error = handle.wait().unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Cancelled, "{error}");
    });
}

#[test]
fn shutdown_called_from_inside_a_job_does_not_deadlock() {
    watchdog(|| {
        let runtime = Runtime::new().unwrap();
        let inner = runtime.clone();
        let (result_tx, result) = unbounded();
        let handle = runtime
            .submit(
                move |_| {
                    result_tx.send(inner.shutdown(PATIENCE)).unwrap();
                    Ok(())
                },
                RunOptions::new(),
            )
            .unwrap();
        let shutdown = result
            .recv_timeout(PATIENCE)
            .expect("shutdown returned inside the job");
        assert!(shutdown.is_ok(), "{shutdown:?}");
        // The job's own task was live when the runtime shut down.
        assert_eq!(handle.wait().unwrap_err().kind(), ErrorKind::Cancelled);
        let error = runtime.submit(|_| Ok(()), RunOptions::new()).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Shutdown);
    });
}

#[test]
fn dropping_the_last_runtime_handle_inside_a_job_does_not_deadlock() {
    watchdog(|| {
        let runtime = Runtime::new().unwrap();
        let (signal, runtime_gone) = drop_signal();
        let keeper = Keeper {
            _runtime: runtime.clone(),
            _signal: signal,
        };
        let (running_tx, running) = unbounded();
        let (go_tx, go) = unbounded::<()>();
        let handle = runtime
            .submit(
                move |_| {
                    running_tx.send(()).unwrap();
                    let _ = go.recv_timeout(PATIENCE);
                    drop(keeper); // the last Runtime handle goes on an execution thread
                    Ok(())
                },
                RunOptions::new(),
            )
            .unwrap();
        running.recv_timeout(PATIENCE).unwrap();
        drop(runtime);
        drop(go_tx);
        assert!(
            dropped_within(&runtime_gone, PATIENCE),
            "dropping the last handle inside a job never returned"
        );
        assert_eq!(handle.wait().unwrap_err().kind(), ErrorKind::Cancelled);
    });
}

/// A runtime handle kept by a job (as a job that submits subtasks would), and a signal
/// dropped after it: the signal fires once dropping the handle has returned.
struct Keeper {
    _runtime: Runtime,
    _signal: DropSignal,
}

/// A job that never runs is dropped by whoever ends its task, here the timer thread (queue
/// timeout). When it holds the last `Runtime`, shutdown runs on the timer thread and must not
/// wait for itself.
#[test]
fn a_queued_job_holding_the_last_handle_is_dropped_by_the_timer_without_hanging() {
    watchdog(|| {
        let runtime = Runtime::builder()
            .execution_threads(1)
            .shutdown_grace(ms(100))
            .build()
            .unwrap();
        let gate = Gate::new();
        let holder = hold_slot(&runtime, &gate);
        let (signal, runtime_gone) = drop_signal();
        let keeper = Keeper {
            _runtime: runtime.clone(),
            _signal: signal,
        };
        let queued = runtime
            .submit(
                move |_| {
                    drop(keeper);
                    Ok(())
                },
                RunOptions::new().label("keeper").queue_timeout(ms(50)),
            )
            .unwrap();
        drop(runtime); // the queued job now holds the last handle
        let error = queued.wait().unwrap_err();
        assert_eq!(error.timeout_kind(), Some(TimeoutKind::Queue));
        assert!(
            dropped_within(&runtime_gone, ms(3000)),
            "dropping the last Runtime handle on the timer thread never returned"
        );
        // The shutdown that followed cancelled the job holding the slot.
        assert_eq!(holder.wait().unwrap_err().kind(), ErrorKind::Cancelled);
        gate.open();
    });
}
