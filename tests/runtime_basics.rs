//! The runtime's basics: its configuration, the blocking `run` facade and how fast a
//! waiting caller is woken, how many jobs run at once, task ids, and the error type.

mod support;

use std::time::Duration;

use crossbeam_channel::unbounded;
use subtask::{Error, ErrorKind, RunOptions, Runtime, RuntimeBuilder, TaskStatus, TimeoutKind};
use support::{Gate, PATIENCE, expect_event, hold_slot, ms, names, recorder, wait_until, watchdog};

/// A runtime whose waiting callers only look at their task once a minute: a caller that
/// returns quickly was woken by the task's end, not by a poll.
fn long_poll() -> RuntimeBuilder {
    Runtime::builder().poll_interval(Duration::from_secs(60))
}

#[test]
fn the_default_builder_uses_the_documented_defaults() {
    let runtime = Runtime::builder().build().unwrap();
    let config = runtime.config();
    assert_eq!(config.scheduler_threads(), 4);
    assert_eq!(config.execution_threads(), 8);
    assert_eq!(config.poll_interval(), Duration::from_secs(2));
    assert_eq!(config.execution_timeout(), Duration::from_secs(300));
    assert_eq!(config.queue_timeout(), Duration::from_secs(60));
    assert_eq!(config.wait_timeout(), Duration::from_secs(300 + 60 + 5));
    assert_eq!(config.max_queued(), 64);
    assert_eq!(Runtime::new().unwrap().config(), config);
}

#[test]
fn the_wait_timeout_follows_the_execution_and_queue_timeouts_unless_set() {
    let derived = Runtime::builder()
        .execution_timeout(Duration::from_secs(10))
        .queue_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    assert_eq!(derived.config().wait_timeout(), Duration::from_secs(17));
    let explicit = Runtime::builder()
        .wait_timeout(Duration::from_secs(3))
        .build()
        .unwrap();
    assert_eq!(explicit.config().wait_timeout(), Duration::from_secs(3));
}

fn assert_config_error(builder: RuntimeBuilder, setting: &str) {
    let error = builder.build().expect_err("a zero setting must be refused");
    assert_eq!(error.kind(), ErrorKind::Config, "{setting}: {error}");
    assert!(
        error.to_string().contains(setting),
        "the error should name {setting}: {error}"
    );
}

#[test]
fn zero_thread_counts_are_config_errors_naming_the_setting() {
    assert_config_error(Runtime::builder().scheduler_threads(0), "scheduler_threads");
    assert_config_error(Runtime::builder().execution_threads(0), "execution_threads");
}

#[test]
fn a_zero_max_queued_is_a_config_error_naming_the_setting() {
    assert_config_error(Runtime::builder().max_queued(0), "max_queued");
}

#[test]
fn zero_durations_are_config_errors_naming_the_setting() {
    let zero = Duration::ZERO;
    assert_config_error(Runtime::builder().poll_interval(zero), "poll_interval");
    assert_config_error(
        Runtime::builder().execution_timeout(zero),
        "execution_timeout",
    );
    assert_config_error(Runtime::builder().queue_timeout(zero), "queue_timeout");
    assert_config_error(Runtime::builder().wait_timeout(zero), "wait_timeout");
}

#[test]
fn zero_per_call_timeouts_are_invalid_input_and_admit_nothing() {
    let runtime = Runtime::new().unwrap();
    let zero = Duration::ZERO;
    for (limit, options) in [
        ("execution", RunOptions::new().execution_timeout(zero)),
        ("queue", RunOptions::new().queue_timeout(zero)),
        ("wait", RunOptions::new().wait_timeout(zero)),
    ] {
        let error = runtime
            .submit(|_| Ok(()), options)
            .expect_err("a zero timeout must be refused");
        assert_eq!(error.kind(), ErrorKind::InvalidInput, "{error}");
        assert!(
            error.to_string().contains(&format!("{limit} timeout")),
            "the error should name the {limit} timeout: {error}"
        );
    }
    let stats = runtime.stats();
    assert_eq!((stats.submitted, stats.queued, stats.live), (0, 0, 0));
}

#[test]
fn run_returns_the_jobs_value() {
    let runtime = Runtime::new().unwrap();
    let words = runtime
        .run(
            |_| Ok(vec!["blocking".to_string(), "facade".to_string()]),
            RunOptions::new(),
        )
        .unwrap();
    assert_eq!(words, ["blocking", "facade"]);
    let sum: u64 = runtime
        .run(|_| Ok((1..=10).sum()), RunOptions::new())
        .unwrap();
    assert_eq!(sum, 55);
}

#[test]
fn job_errors_come_back_with_their_own_kind_and_message() {
    let runtime = Runtime::new().unwrap();
    for error in [
        Error::invalid_input("the path must be relative"),
        Error::new(ErrorKind::Io, "disk on fire"),
        Error::other("the model refused"),
    ] {
        let expected = (error.kind(), error.to_string());
        let handle = runtime
            .submit(move |_| Err::<(), _>(error), RunOptions::new())
            .unwrap();
        assert!(wait_until(PATIENCE, || handle.status() == TaskStatus::Failed));
        let got = handle.wait().unwrap_err();
        assert_eq!((got.kind(), got.to_string()), expected);
    }
    assert_eq!(runtime.stats().failed, 3);
}

#[test]
fn run_returns_when_the_job_ends_not_at_the_next_poll() {
    watchdog(|| {
        let runtime = long_poll().build().unwrap();
        let value = runtime
            .run(
                |_| {
                    // Simulated work, so the caller is surely waiting when the job ends.
                    std::thread::sleep(ms(50));
                    Ok(7)
                },
                RunOptions::new(),
            )
            .unwrap();
        assert_eq!(value, 7);
    });
}

#[test]
fn a_cancelled_caller_is_woken_at_once_not_at_the_next_poll() {
    watchdog(|| {
        let runtime = long_poll().shutdown_grace(ms(100)).build().unwrap();
        let gate = Gate::new();
        let (ids, id) = unbounded();
        let pass = gate.pass();
        let caller_runtime = runtime.clone();
        let caller = std::thread::spawn(move || {
            caller_runtime.run(
                move |job| {
                    ids.send(job.id().clone()).unwrap();
                    pass.wait() // ignores its token: only the runtime can wake the caller
                },
                RunOptions::new(),
            )
        });
        let id = id.recv_timeout(PATIENCE).expect("the job started");
        assert!(runtime.cancel(id.as_str()));
        let error = caller.join().unwrap().unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Cancelled, "{error}");
        gate.open();
    });
}

#[test]
fn a_timed_out_caller_is_woken_at_once_not_at_the_next_poll() {
    watchdog(|| {
        let runtime = long_poll().shutdown_grace(ms(100)).build().unwrap();
        let gate = Gate::new();
        let pass = gate.pass();
        let error = runtime
            .run(
                move |_| pass.wait(),
                RunOptions::new().execution_timeout(ms(50)),
            )
            .unwrap_err();
        assert_eq!(
            error.timeout_kind(),
            Some(TimeoutKind::Execution),
            "{error}"
        );
        gate.open();
    });
}

#[test]
fn eight_jobs_run_at_once_with_the_default_pools_and_a_ninth_waits() {
    watchdog(|| {
        let (observer, events) = recorder();
        let runtime = Runtime::builder().observer(observer).build().unwrap();
        assert_eq!(runtime.config(), Runtime::new().unwrap().config());
        let gate = Gate::new();
        let eight: Vec<_> = (0..8)
            .map(|_| {
                let pass = gate.pass();
                runtime
                    .submit(move |_| pass.wait(), RunOptions::new())
                    .unwrap()
            })
            .collect();
        gate.expect_arrivals(8); // all eight are inside their jobs at the same time
        assert_eq!(runtime.stats().running, 8);

        let ninth_gate = Gate::new();
        let pass = ninth_gate.pass();
        let ninth = runtime
            .submit(move |_| pass.wait(), RunOptions::new().label("ninth"))
            .unwrap();
        // Once queued, the ninth waits in the execution pool: it must not start.
        expect_event(&events, ninth.id(), "queued");
        assert!(
            !ninth_gate.arrival_within(ms(200)),
            "a ninth job started while eight held every execution thread"
        );
        assert_eq!(ninth.status(), TaskStatus::Pending);
        let stats = runtime.stats();
        assert_eq!((stats.running, stats.queued), (8, 1));

        gate.open();
        ninth_gate.expect_arrivals(1);
        ninth_gate.open();
        for handle in eight {
            handle.wait().unwrap();
        }
        ninth.wait().unwrap();
    });
}

#[test]
fn task_ids_start_with_the_sanitized_label_or_task() {
    let runtime = Runtime::new().unwrap();
    let (id, label) = runtime
        .run(
            |job| Ok((job.id().clone(), job.label().to_string())),
            RunOptions::new().label("Explore Code"),
        )
        .unwrap();
    assert!(id.as_str().starts_with("explore-code-"), "{id}");
    assert_eq!(label, "explore-code");
    let plain = runtime
        .run(|job| Ok(job.id().clone()), RunOptions::new())
        .unwrap();
    assert!(plain.as_str().starts_with("task-"), "{plain}");
    assert!(
        plain.as_str().len() > "task-".len(),
        "{plain} has no suffix"
    );
}

#[test]
fn the_task_id_is_the_same_in_the_job_the_handle_and_the_events() {
    watchdog(|| {
        let (observer, events) = recorder();
        let runtime = Runtime::builder().observer(observer).build().unwrap();
        let handle = runtime
            .submit(|job| Ok(job.id().clone()), RunOptions::new().label("same"))
            .unwrap();
        let id = handle.id().clone();
        assert_eq!(handle.wait().unwrap(), id);
        // This runtime runs one task: every event it emits must carry that task's id.
        let seen: Vec<_> = (0..3)
            .map(|_| events.recv_timeout(PATIENCE).expect("an event"))
            .collect();
        assert_eq!(names(&seen), ["queued", "started", "finished"]);
        for event in &seen {
            assert_eq!(event.task, id);
            assert_eq!(&*event.label, "same");
        }
    });
}

#[test]
fn errors_display_their_message() {
    watchdog(|| {
        let runtime = Runtime::builder()
            .execution_threads(1)
            .max_queued(1)
            .build()
            .unwrap();
        let gate = Gate::new();
        let holder = hold_slot(&runtime, &gate);
        let queued = runtime.submit(|_| Ok(()), RunOptions::new()).unwrap();
        let full = runtime.submit(|_| Ok(()), RunOptions::new()).unwrap_err();
        let config = Runtime::builder().max_queued(0).build().unwrap_err();
        let invalid = runtime
            .submit(|_| Ok(()), RunOptions::new().queue_timeout(Duration::ZERO))
            .unwrap_err();
        assert!(queued.cancel());
        let cancelled = queued.wait().unwrap_err();
        gate.open();
        holder.wait().unwrap();
        let timed_out = runtime
            .run(
                |job| job.token().sleep(PATIENCE),
                RunOptions::new().execution_timeout(ms(20)),
            )
            .unwrap_err();
        let panicked = runtime
            .run(
                |_| -> Result<(), Error> { panic!("oh no") },
                RunOptions::new(),
            )
            .unwrap_err();
        runtime.shutdown(PATIENCE).unwrap();
        let shut_down = runtime.run(|_| Ok(()), RunOptions::new()).unwrap_err();
        for (error, kind) in [
            (&full, ErrorKind::QueueFull),
            (&config, ErrorKind::Config),
            (&invalid, ErrorKind::InvalidInput),
            (&cancelled, ErrorKind::Cancelled),
            (&timed_out, ErrorKind::Timeout),
            (&panicked, ErrorKind::Panic),
            (&shut_down, ErrorKind::Shutdown),
        ] {
            assert_eq!(error.kind(), kind, "{error:?}");
            assert!(!error.message().is_empty());
            assert_eq!(error.to_string(), error.message());
            assert_eq!(
                error.is_retryable(),
                kind == ErrorKind::QueueFull,
                "{error:?}"
            );
        }
        assert_eq!(timed_out.timeout_kind(), Some(TimeoutKind::Execution));
        assert_eq!(full.timeout_kind(), None);
    });
}
