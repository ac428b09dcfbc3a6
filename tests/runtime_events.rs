//! Observers: which events a task emits, in which order, with what in them, and that
//! observers cannot break a task.

mod support;

use std::time::{Duration, Instant};

use crossbeam_channel::unbounded;
use subtask::{Error, ErrorKind, Event, EventKind, RunOptions, Runtime, TaskStatus};
use support::{Gate, PATIENCE, events_until_finished, ms, names, recorder, wait_until, watchdog};

#[test]
fn events_arrive_queued_started_finished_in_order() {
    watchdog(|| {
        let (observer, events) = recorder();
        let runtime = Runtime::builder()
            .poll_interval(Duration::from_secs(60)) // no heartbeats
            .observer(observer)
            .build()
            .unwrap();
        let handle = runtime
            .submit(|_| Ok(()), RunOptions::new().label("ordered"))
            .unwrap();
        let id = handle.id().clone();
        handle.wait().unwrap();
        let seen = events_until_finished(&events, &id);
        assert_eq!(names(&seen), ["queued", "started", "finished"]);
        assert!(seen.windows(2).all(|pair| pair[0].at <= pair[1].at));
        assert!(seen.iter().all(|event| &*event.label == "ordered"));
    });
}

#[test]
fn waiting_callers_emit_heartbeats_while_the_task_runs() {
    watchdog(|| {
        let (observer, events) = recorder();
        let runtime = Runtime::builder()
            .poll_interval(ms(20))
            .observer(observer)
            .build()
            .unwrap();
        let gate = Gate::new();
        let pass = gate.pass();
        let caller_runtime = runtime.clone();
        let caller =
            std::thread::spawn(move || caller_runtime.run(move |_| pass.wait(), RunOptions::new()));
        gate.expect_arrivals(1);
        // Heartbeats from before the run started may say Pending; from then on, Running.
        let mut running = Vec::new();
        let mut last_elapsed = Duration::ZERO;
        while running.len() < 2 {
            let event = events.recv_timeout(PATIENCE).expect("a heartbeat");
            if let EventKind::Heartbeat { status, elapsed } = event.kind {
                assert!(elapsed > last_elapsed, "{elapsed:?} after {last_elapsed:?}");
                last_elapsed = elapsed;
                match status {
                    TaskStatus::Running => running.push(elapsed),
                    TaskStatus::Pending if running.is_empty() => {}
                    other => panic!("a heartbeat with status {other}"),
                }
            }
        }
        gate.open();
        caller.join().unwrap().unwrap();
    });
}

#[test]
fn heartbeats_come_between_started_and_finished() {
    watchdog(|| {
        let (observer, events) = recorder();
        let runtime = Runtime::builder()
            .poll_interval(ms(50)) // long enough for the task to be queued before the first
            .observer(observer)
            .build()
            .unwrap();
        let (heartbeats_tx, heartbeats) = unbounded();
        let gate = Gate::new();
        let pass = gate.pass();
        let caller_runtime = runtime.clone();
        let caller = std::thread::spawn(move || {
            caller_runtime.run(
                move |_| pass.wait(),
                RunOptions::new().observer(move |event: &Event| {
                    if let EventKind::Heartbeat { .. } = event.kind {
                        let _ = heartbeats_tx.send(());
                    }
                }),
            )
        });
        gate.expect_arrivals(1);
        for _ in 0..2 {
            heartbeats.recv_timeout(PATIENCE).expect("a heartbeat");
        }
        gate.open();
        caller.join().unwrap().unwrap();
        let first = events.recv_timeout(PATIENCE).unwrap();
        let seen = events_until_finished(&events, &first.task);
        let mut order = vec![first.kind.name()];
        order.extend(names(&seen));
        assert_eq!(&order[..2], ["queued", "started"], "{order:?}");
        assert_eq!(order.last(), Some(&"finished"), "{order:?}");
        let middle = &order[2..order.len() - 1];
        assert!(middle.len() >= 2, "{order:?}");
        assert!(middle.iter().all(|name| *name == "heartbeat"), "{order:?}");
    });
}

#[test]
fn finished_events_carry_status_durations_and_the_error_of_failed_tasks() {
    watchdog(|| {
        let (observer, events) = recorder();
        let runtime = Runtime::builder().observer(observer).build().unwrap();
        let work = ms(30);
        let submitted = Instant::now();
        let failed = runtime
            .submit(
                move |_| {
                    std::thread::sleep(work); // simulated work
                    Err::<(), _>(Error::invalid_input("no such file: notes.md"))
                },
                RunOptions::new(),
            )
            .unwrap();
        let failed_id = failed.id().clone();
        failed.wait().unwrap_err();
        let total = submitted.elapsed();
        match &events_until_finished(&events, &failed_id)
            .last()
            .unwrap()
            .kind
        {
            EventKind::Finished {
                status,
                queued_for,
                ran_for,
                error,
            } => {
                assert_eq!(*status, TaskStatus::Failed);
                let ran_for = ran_for.expect("the task ran");
                assert!(ran_for >= work, "ran for {ran_for:?}");
                assert!(
                    *queued_for + ran_for <= total,
                    "{queued_for:?} + {ran_for:?}"
                );
                let error = error.as_ref().expect("a failed task's error");
                assert_eq!(error.kind(), ErrorKind::InvalidInput);
                assert_eq!(error.to_string(), "no such file: notes.md");
            }
            other => unreachable!("{other:?}"),
        }

        let completed = runtime.submit(|_| Ok(()), RunOptions::new()).unwrap();
        let completed_id = completed.id().clone();
        completed.wait().unwrap();
        match &events_until_finished(&events, &completed_id)
            .last()
            .unwrap()
            .kind
        {
            EventKind::Finished {
                status,
                ran_for,
                error,
                ..
            } => {
                assert_eq!(*status, TaskStatus::Completed);
                assert!(ran_for.is_some());
                assert!(error.is_none(), "{error:?}");
            }
            other => unreachable!("{other:?}"),
        }
    });
}

#[test]
fn a_per_call_observer_sees_only_its_own_task() {
    watchdog(|| {
        let (everything, all_events) = recorder();
        let runtime = Runtime::builder().observer(everything).build().unwrap();
        let (mine, my_events) = recorder();
        let (theirs, their_events) = recorder();
        let gate = Gate::new();
        let (pass_a, pass_b) = (gate.pass(), gate.pass());
        let a = runtime
            .submit(move |_| pass_a.wait(), RunOptions::new().observer(mine))
            .unwrap();
        let b = runtime
            .submit(move |_| pass_b.wait(), RunOptions::new().observer(theirs))
            .unwrap();
        let unobserved = runtime.submit(|_| Ok(()), RunOptions::new()).unwrap();
        let (a_id, b_id) = (a.id().clone(), b.id().clone());
        unobserved.wait().unwrap();
        gate.expect_arrivals(2);
        gate.open();
        a.wait().unwrap();
        b.wait().unwrap();
        let mut finished = 0;
        while finished < 3 {
            let event = all_events.recv_timeout(PATIENCE).expect("an event");
            if let EventKind::Finished { .. } = event.kind {
                finished += 1;
            }
        }
        runtime.shutdown(PATIENCE).unwrap(); // every event has been delivered
        let mine: Vec<Event> = my_events.try_iter().collect();
        let theirs: Vec<Event> = their_events.try_iter().collect();
        assert_eq!(names(&mine), ["queued", "started", "finished"]);
        assert_eq!(names(&theirs), ["queued", "started", "finished"]);
        assert!(mine.iter().all(|event| event.task == a_id), "{mine:?}");
        assert!(theirs.iter().all(|event| event.task == b_id), "{theirs:?}");
    });
}

#[test]
fn a_panicking_observer_breaks_neither_the_task_nor_the_other_observers() {
    watchdog(|| {
        let (observer, events) = recorder();
        let (own, own_events) = recorder();
        let runtime = Runtime::builder()
            .observer(|event: &Event| panic!("observer failed on {}", event.kind.name()))
            .observer(observer)
            .build()
            .unwrap();
        let handle = runtime
            .submit(|_| Ok("still fine"), RunOptions::new().observer(own))
            .unwrap();
        let id = handle.id().clone();
        assert_eq!(handle.wait().unwrap(), "still fine");
        let seen = events_until_finished(&events, &id);
        assert_eq!(names(&seen), ["queued", "started", "finished"]);
        let own_seen = events_until_finished(&own_events, &id);
        assert_eq!(names(&own_seen), ["queued", "started", "finished"]);
        // The runtime still works.
        assert_eq!(runtime.run(|_| Ok(1), RunOptions::new()).unwrap(), 1);
    });
}

/// A task's events are delivered in the order of the state changes they report, one at a
/// time: a heartbeat held up in a slow observer cannot be overtaken by `Finished`, and none
/// is delivered after it.
#[test]
fn no_heartbeat_reaches_an_observer_after_the_finished_event() {
    watchdog(|| {
        // The first observer is slow with the first heartbeat: it holds the caller's thread
        // inside the heartbeat until the task has finished.
        let slow = Gate::new();
        let slow_pass = slow.pass();
        let (observer, events) = recorder();
        let runtime = Runtime::builder()
            .poll_interval(ms(20))
            .observer(move |event: &Event| {
                if let EventKind::Heartbeat { .. } = event.kind {
                    let _ = slow_pass.wait();
                }
            })
            .observer(observer)
            .build()
            .unwrap();
        let gate = Gate::new();
        let pass = gate.pass();
        let caller_runtime = runtime.clone();
        let caller =
            std::thread::spawn(move || caller_runtime.run(move |_| pass.wait(), RunOptions::new()));
        gate.expect_arrivals(1);
        slow.expect_arrivals(1); // a heartbeat is on its way
        gate.open(); // the task completes while the heartbeat is held
        assert!(wait_until(PATIENCE, || runtime.stats().completed == 1));
        // Give a Finished event the chance to overtake the held heartbeat (a runtime that
        // orders a task's events holds it back, and this wait simply runs out).
        let mut seen = Vec::new();
        let overtake_deadline = Instant::now() + ms(500);
        while let Ok(event) = events.recv_deadline(overtake_deadline) {
            let finished = matches!(event.kind, EventKind::Finished { .. });
            seen.push(event);
            if finished {
                break;
            }
        }
        slow.open();
        caller.join().unwrap().unwrap();
        runtime.shutdown(PATIENCE).unwrap(); // every event has been delivered
        seen.extend(events.try_iter());
        let order: Vec<String> = seen.iter().map(ToString::to_string).collect();
        assert_eq!(
            names(&seen).last(),
            Some(&"finished"),
            "events out of order: {order:?}"
        );
    });
}
