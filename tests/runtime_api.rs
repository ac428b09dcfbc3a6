//! The handle API a Rust user expects: detach, try_wait, wait_timeout, wait_any; and
//! progress payloads of the job's own type.

mod support;

use std::fmt;

use crossbeam_channel::{bounded, unbounded};
use subtask::{ErrorKind, Event, EventKind, ProgressReport, RunOptions, Runtime, TaskHandle};
use support::{Gate, PATIENCE, ms, recorder, watchdog};

#[test]
fn a_detached_task_runs_to_its_end_without_anybody_waiting() {
    watchdog(|| {
        let runtime = Runtime::new().unwrap();
        let gate = Gate::new();
        let pass = gate.pass();
        let (done_tx, done) = bounded(1);
        let handle = runtime
            .submit(
                move |_| {
                    pass.wait()?;
                    done_tx.send(()).unwrap();
                    Ok(())
                },
                RunOptions::new(),
            )
            .unwrap();
        gate.expect_arrivals(1);
        handle.detach(); // unlike a drop, this does not cancel
        gate.open();
        done.recv_timeout(PATIENCE)
            .expect("the detached job ran on");
        assert!(support::wait_until(PATIENCE, || runtime.stats().live == 0));
        assert_eq!(runtime.stats().completed, 1);
    });
}

#[test]
fn try_wait_returns_nothing_until_the_task_ends_then_its_outcome_once() {
    watchdog(|| {
        let runtime = Runtime::new().unwrap();
        let gate = Gate::new();
        let pass = gate.pass();
        let mut handle = runtime
            .submit(move |_| pass.wait().map(|()| 5), RunOptions::new())
            .unwrap();
        gate.expect_arrivals(1);
        assert!(handle.try_wait().is_none());
        assert!(!handle.is_finished());
        gate.open();
        assert!(support::wait_until(PATIENCE, || handle.is_finished()));
        assert_eq!(handle.try_wait().unwrap().unwrap(), 5);
        let again = handle.try_wait().unwrap().unwrap_err();
        assert_eq!(again.kind(), ErrorKind::InvalidInput);
        assert!(again.message().contains("already taken"), "{again}");
    });
}

#[test]
fn wait_timeout_gives_up_without_touching_the_task() {
    watchdog(|| {
        let runtime = Runtime::new().unwrap();
        let gate = Gate::new();
        let pass = gate.pass();
        let mut handle = runtime
            .submit(move |_| pass.wait().map(|()| "done"), RunOptions::new())
            .unwrap();
        gate.expect_arrivals(1);
        assert!(handle.wait_timeout(ms(20)).is_none());
        assert_eq!(handle.status(), subtask::TaskStatus::Running);
        gate.open();
        assert_eq!(handle.wait_timeout(PATIENCE).unwrap().unwrap(), "done");
        // The outcome was taken: waiting again is an error, not a hang.
        assert_eq!(handle.wait().unwrap_err().kind(), ErrorKind::InvalidInput);
    });
}

#[test]
fn wait_any_returns_the_first_task_to_end_and_leaves_the_others_running() {
    watchdog(|| {
        let runtime = Runtime::new().unwrap();
        let slow = Gate::new();
        let fast = Gate::new();
        let mut handles: Vec<TaskHandle<&str>> = Vec::new();
        for (gate, name) in [(&slow, "slow"), (&fast, "fast"), (&slow, "slower")] {
            let pass = gate.pass();
            handles.push(
                runtime
                    .submit(move |_| pass.wait().map(|()| name), RunOptions::new())
                    .unwrap(),
            );
        }
        slow.expect_arrivals(2);
        fast.expect_arrivals(1);
        fast.open();
        let (index, outcome) = TaskHandle::wait_any(&mut handles).unwrap();
        assert_eq!((index, outcome.unwrap()), (1, "fast"));
        assert_eq!(handles.len(), 2);
        assert!(handles.iter().all(|handle| !handle.is_finished()));
        slow.open();
        let mut rest = Vec::new();
        while let Some((_, outcome)) = TaskHandle::wait_any(&mut handles) {
            rest.push(outcome.unwrap());
        }
        rest.sort_unstable();
        assert_eq!(rest, vec!["slow", "slower"]);
        assert!(TaskHandle::<()>::wait_any(&mut Vec::new()).is_none());
    });
}

#[test]
fn wait_any_reports_a_failure_like_any_other_ending() {
    watchdog(|| {
        let runtime = Runtime::new().unwrap();
        let gate = Gate::new();
        let pass = gate.pass();
        let mut handles = vec![
            runtime
                .submit(move |_| pass.wait().map(|()| 1), RunOptions::new())
                .unwrap(),
            runtime
                .submit(|_| Err(subtask::Error::other("no luck")), RunOptions::new())
                .unwrap(),
        ];
        let (index, outcome) = TaskHandle::wait_any(&mut handles).unwrap();
        assert_eq!(index, 1);
        assert_eq!(outcome.unwrap_err().message(), "no luck");
        gate.open();
    });
}

/// A higher layer's own progress report: the runtime carries it without knowing its type.
#[derive(Debug, PartialEq)]
struct Copied {
    files: u32,
}

impl fmt::Display for Copied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} files copied", self.files)
    }
}

impl ProgressReport for Copied {
    fn name(&self) -> &'static str {
        "copied"
    }
}

#[test]
fn jobs_emit_progress_of_their_own_type_and_observers_read_it_back() {
    watchdog(|| {
        let (observer, events) = recorder();
        let runtime = Runtime::new().unwrap();
        let handle = runtime
            .submit(
                |job| {
                    for files in 1..=3 {
                        job.emit(Copied { files });
                    }
                    Ok(())
                },
                RunOptions::new().observer(observer),
            )
            .unwrap();
        let id = handle.id().clone();
        handle.wait().unwrap();
        let seen = support::events_until_finished(&events, &id);
        let copied: Vec<u32> = seen
            .iter()
            .filter_map(|event| event.kind.progress::<Copied>())
            .map(|copied| copied.files)
            .collect();
        assert_eq!(copied, vec![1, 2, 3]);
        let progress = seen
            .iter()
            .find(|event| matches!(event.kind, EventKind::Progress(_)))
            .unwrap();
        assert_eq!(progress.kind.name(), "copied");
        assert!(
            progress.to_string().ends_with("copied: 1 files copied"),
            "{progress}"
        );
        // Another layer's type does not match.
        assert!(progress.kind.progress::<subtask::Progress>().is_none());
    });
}

#[test]
fn a_slow_observer_delays_only_its_own_mailbox() {
    watchdog(|| {
        let (release, released) = bounded::<()>(0);
        let slow = move |_: &Event| {
            let _ = released.recv_timeout(PATIENCE);
        };
        let (fast_tx, fast) = unbounded::<Event>();
        let quick = move |event: &Event| {
            let _ = fast_tx.send(event.clone());
        };
        let runtime = Runtime::builder()
            .observer(slow)
            .observer(quick)
            .build()
            .unwrap();
        let handle = runtime.submit(|_| Ok(()), RunOptions::new()).unwrap();
        let id = handle.id().clone();
        handle.wait().unwrap();
        let seen = support::events_until_finished(&fast, &id);
        assert_eq!(support::names(&seen), ["queued", "started", "finished"]);
        drop(release);
    });
}
