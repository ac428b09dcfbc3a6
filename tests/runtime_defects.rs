//! One test per defect found in review of the runtime (issue 11). Each failed on the runtime
//! before the fix; none sleeps to synchronise (gates, barriers and channels do).

mod support;

use std::cell::RefCell;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, TryRecvError, bounded, unbounded};
use subtask::{ErrorKind, Event, EventKind, RunOptions, Runtime, TimeoutKind};
use support::{DropSignal, Gate, PATIENCE, drop_signal, hold_slot, ms, watchdog};

/// A value whose `Drop` panics.
#[derive(Debug)]
struct PanicsOnDrop;

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        panic!("this value panics when dropped");
    }
}

// 1. Admission counts tasks headed for idle threads as queued.

#[test]
fn a_second_task_is_admitted_while_idle_threads_remain_even_with_max_queued_one() {
    watchdog(|| {
        let runtime = Runtime::builder().max_queued(1).build().unwrap();
        for _ in 0..50 {
            let first = runtime.submit(|_| Ok(1), RunOptions::new()).unwrap();
            let second = runtime
                .submit(|_| Ok(2), RunOptions::new())
                .expect("8 idle threads: the second task takes one, it does not queue");
            assert_eq!(first.wait().unwrap() + second.wait().unwrap(), 3);
        }
    });
}

#[test]
fn with_every_thread_busy_and_the_queue_full_the_next_task_is_refused_naming_both() {
    watchdog(|| {
        let runtime = Runtime::builder()
            .execution_threads(2)
            .max_queued(1)
            .build()
            .unwrap();
        let gate = Gate::new();
        let holders: Vec<_> = (0..2)
            .map(|_| {
                let pass = gate.pass();
                runtime
                    .submit(move |_| pass.wait(), RunOptions::new())
                    .unwrap()
            })
            .collect();
        gate.expect_arrivals(2);
        let queued = runtime.submit(|_| Ok(()), RunOptions::new()).unwrap();
        let error = runtime.submit(|_| Ok(()), RunOptions::new()).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::QueueFull);
        assert!(error.is_retryable());
        assert!(
            error.message().contains("all 2 execution threads are busy")
                && error.message().contains("max_queued = 1"),
            "{error}"
        );
        gate.open();
        for holder in holders {
            holder.wait().unwrap();
        }
        queued.wait().unwrap();
    });
}

/// Seven parallel `task` calls of ten subagents each, on an idle default runtime: 70 tasks,
/// 8 run and 62 wait (max_queued 64). Every one must be admitted and run.
#[test]
fn a_burst_of_seventy_on_an_idle_default_runtime_all_run() {
    watchdog(|| {
        let runtime = Runtime::new().unwrap();
        let gate = Gate::new();
        let start = Arc::new(Barrier::new(7));
        let callers: Vec<_> = (0..7)
            .map(|caller| {
                let runtime = runtime.clone();
                let start = start.clone();
                let passes: Vec<_> = (0..10).map(|_| gate.pass()).collect();
                std::thread::spawn(move || {
                    start.wait();
                    passes
                        .into_iter()
                        .enumerate()
                        .map(|(n, pass)| {
                            runtime.submit(
                                move |_| pass.wait().map(|()| caller * 10 + n),
                                RunOptions::new(),
                            )
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let handles: Vec<_> = callers
            .into_iter()
            .flat_map(|caller| caller.join().unwrap())
            .map(|submitted| submitted.expect("a burst of 70 fits 8 threads + 64 places"))
            .collect();
        gate.expect_arrivals(8);
        gate.open();
        let mut values: Vec<usize> = handles.into_iter().map(|h| h.wait().unwrap()).collect();
        values.sort_unstable();
        assert_eq!(values, (0..70).collect::<Vec<_>>());
        assert_eq!(runtime.stats().rejected, 0);
    });
}

// 2. A slow observer stops all dispatch.

#[test]
fn blocked_observers_do_not_stop_dispatch() {
    watchdog(|| {
        let (release, released) = bounded::<()>(0);
        let (blocked_tx, blocked) = unbounded();
        // Blocks on every event until released: like a CLI writing to a full stderr pipe or
        // a Python callback waiting for the GIL.
        let observer = move |_: &Event| {
            let _ = blocked_tx.send(());
            let _ = released.recv_timeout(PATIENCE);
        };
        let runtime = Runtime::builder().observer(observer).build().unwrap();
        // More stuck deliveries than there are scheduler threads.
        let handles: Vec<_> = (0..6)
            .map(|n| runtime.submit(move |_| Ok(n), RunOptions::new()).unwrap())
            .collect();
        blocked
            .recv_timeout(PATIENCE)
            .expect("the observer is called");
        let (ran_tx, ran) = bounded(1);
        let task = runtime
            .submit(
                move |_| {
                    ran_tx.send(()).unwrap();
                    Ok(())
                },
                RunOptions::new(),
            )
            .unwrap();
        ran.recv_timeout(PATIENCE)
            .expect("a task runs while the observer is blocked");
        task.wait().unwrap();
        for handle in handles {
            handle.wait().unwrap();
        }
        drop(release);
    });
}

#[test]
fn a_queue_timeout_reports_how_busy_the_threads_really_were() {
    watchdog(|| {
        let runtime = Runtime::builder().execution_threads(1).build().unwrap();
        let gate = Gate::new();
        let holder = hold_slot(&runtime, &gate);
        let error = runtime
            .run(|_| Ok(()), RunOptions::new().queue_timeout(ms(20)))
            .unwrap_err();
        assert_eq!(error.timeout_kind(), Some(TimeoutKind::Queue));
        assert!(
            error
                .message()
                .contains("1 of 1 execution threads were busy (1 running tasks"),
            "{error}"
        );
        gate.open();
        holder.wait().unwrap();
    });
}

// 3. The timer thread runs user code unprotected.

#[test]
fn a_panicking_drop_of_a_job_that_never_ran_does_not_stop_the_timer() {
    watchdog(|| {
        // A poll interval longer than the test, so only the timer can end the tasks.
        let runtime = Runtime::builder()
            .execution_threads(1)
            .poll_interval(Duration::from_secs(3600))
            .build()
            .unwrap();
        let gate = Gate::new();
        let holder = hold_slot(&runtime, &gate);
        let captured = PanicsOnDrop;
        let queued = runtime
            .submit(
                move |_| {
                    let _keep = &captured;
                    Ok(())
                },
                RunOptions::new().queue_timeout(ms(10)),
            )
            .unwrap();
        // The job never runs: it is dropped when the queue timeout ends its task.
        assert_eq!(
            queued.wait().unwrap_err().timeout_kind(),
            Some(TimeoutKind::Queue)
        );
        gate.open();
        holder.wait().unwrap();
        // The timer must still enforce deadlines: this job ignores its token.
        let gate = Gate::new();
        let pass = gate.pass();
        let stuck = runtime
            .submit(
                move |_| pass.wait(),
                RunOptions::new().execution_timeout(ms(100)),
            )
            .unwrap();
        gate.expect_arrivals(1);
        let error = stuck.wait().unwrap_err();
        assert_eq!(error.timeout_kind(), Some(TimeoutKind::Execution));
        gate.open();
    });
}

/// Cancel actions of timed-out tasks run off the timer thread: one that blocks delays no
/// other task's timeout.
#[test]
fn a_blocking_cancel_action_does_not_delay_other_deadlines() {
    watchdog(|| {
        let runtime = Runtime::builder()
            .poll_interval(Duration::from_secs(3600))
            .build()
            .unwrap();
        let gate = Gate::new();
        let (release, released) = bounded::<()>(0);
        let (acting_tx, acting) = bounded(1);
        let pass = gate.pass();
        let blocker = runtime
            .submit(
                move |job| {
                    let _guard = job.token().on_cancel(move || {
                        let _ = acting_tx.send(());
                        let _ = released.recv_timeout(PATIENCE);
                    });
                    pass.wait() // ignores its token: only the timer ends it
                },
                RunOptions::new().execution_timeout(ms(10)),
            )
            .unwrap();
        acting.recv_timeout(PATIENCE).unwrap();
        // The first task's cancel action blocks; the timer still ends this one.
        let pass = gate.pass();
        let other = runtime
            .run(
                move |_| pass.wait(),
                RunOptions::new().execution_timeout(ms(10)),
            )
            .unwrap_err();
        assert_eq!(other.timeout_kind(), Some(TimeoutKind::Execution));
        assert_eq!(
            blocker.wait().unwrap_err().timeout_kind(),
            Some(TimeoutKind::Execution)
        );
        drop(release);
        gate.open();
    });
}

// 4. A panic in a discarded result's Drop loses an execution slot.

#[test]
fn a_discarded_result_that_panics_in_drop_does_not_cost_a_thread() {
    watchdog(|| {
        let runtime = Runtime::builder().execution_threads(1).build().unwrap();
        for _ in 0..3 {
            let gate = Gate::new();
            let pass = gate.pass();
            let handle = runtime
                .submit(
                    move |_| pass.wait().map(|()| PanicsOnDrop),
                    RunOptions::new(),
                )
                .unwrap();
            gate.expect_arrivals(1);
            assert!(handle.cancel());
            gate.open();
            // The job returns a value nobody will read; dropping it panics.
            assert_eq!(handle.wait().unwrap_err().kind(), ErrorKind::Cancelled);
            // The only thread must still work.
            assert_eq!(runtime.run(|_| Ok(7), RunOptions::new()).unwrap(), 7);
        }
    });
}

// 5. A job waiting on another task of the same runtime can starve.

#[test]
fn parents_holding_every_thread_still_get_their_childrens_results() {
    watchdog(|| {
        let runtime = Runtime::builder().execution_threads(2).build().unwrap();
        let all_running = Arc::new(Barrier::new(2));
        let parents: Vec<_> = (0..2)
            .map(|n| {
                let inner = runtime.clone();
                let all_running = all_running.clone();
                runtime
                    .submit(
                        move |_| {
                            all_running.wait(); // both threads now hold a parent
                            let child = inner.submit(move |_| Ok(n * 10), RunOptions::new())?;
                            let grandchild_runtime = inner.clone();
                            let nested = inner.submit(
                                move |_| {
                                    grandchild_runtime.run(move |_| Ok(n + 1), RunOptions::new())
                                },
                                RunOptions::new(),
                            )?;
                            Ok(child.wait()? + nested.wait()?)
                        },
                        RunOptions::new(),
                    )
                    .unwrap()
            })
            .collect();
        let results: Vec<usize> = parents.into_iter().map(|p| p.wait().unwrap()).collect();
        assert_eq!(results, vec![1, 12]);
    });
}

// 6. A second concurrent shutdown returns Ok while a job still holds a thread.

#[test]
fn a_second_shutdown_returns_the_first_ones_result() {
    watchdog(|| {
        let runtime = Runtime::new().unwrap();
        let gate = Gate::new();
        let pass = gate.pass();
        let (cancelled_tx, cancelled) = bounded(1);
        let stubborn = runtime
            .submit(
                move |job| {
                    let _guard = job.token().on_cancel(move || {
                        let _ = cancelled_tx.send(());
                    });
                    pass.wait() // ignores its token
                },
                RunOptions::new(),
            )
            .unwrap();
        gate.expect_arrivals(1);
        let first_runtime = runtime.clone();
        let first = std::thread::spawn(move || first_runtime.shutdown(ms(300)));
        cancelled.recv_timeout(PATIENCE).unwrap(); // the first shutdown is under way
        let second = runtime.shutdown(PATIENCE);
        let first = first.join().unwrap();
        let first = first.expect_err("a job still held a thread after the grace");
        let second = second.expect_err("the job still held a thread when the second returned");
        assert_eq!(second.kind(), ErrorKind::Timeout);
        assert_eq!(second.message(), first.message());
        gate.open();
        assert_eq!(stubborn.wait().unwrap_err().kind(), ErrorKind::Cancelled);
    });
}

// 7. Dropping the runtime after a shutdown called from inside a job does not join.

thread_local! {
    /// Dropped when the thread that set it exits.
    static ON_EXIT: RefCell<Option<DropSignal>> = const { RefCell::new(None) };
}

/// Puts a signal in every execution thread's thread-local storage, dropped when it exits.
fn mark_execution_threads(runtime: &Runtime) -> Vec<Receiver<()>> {
    let threads = runtime.config().execution_threads();
    let all_here = Arc::new(Barrier::new(threads));
    let (handles, exits): (Vec<_>, Vec<_>) = (0..threads)
        .map(|_| {
            let (signal, exited) = drop_signal();
            let all_here = all_here.clone();
            let handle = runtime
                .submit(
                    move |_| {
                        ON_EXIT.with(|slot| *slot.borrow_mut() = Some(signal));
                        all_here.wait(); // one job per thread
                        Ok(())
                    },
                    RunOptions::new(),
                )
                .unwrap();
            (handle, exited)
        })
        .unzip();
    for handle in handles {
        handle.wait().unwrap();
    }
    exits
}

#[test]
fn dropping_the_runtime_after_a_shutdown_from_inside_a_job_joins_every_thread() {
    watchdog(|| {
        for _ in 0..3 {
            let runtime = Runtime::new().unwrap();
            let exits = mark_execution_threads(&runtime);
            let inner = runtime.clone();
            // The job's own handle must be gone before the test drops the last one: the
            // shutdown cancels the job, so its caller may wake while the job still runs.
            let (released, was_released) = crossbeam_channel::bounded(1);
            let closer = runtime
                .submit(
                    move |_| {
                        let closed = inner.shutdown(PATIENCE);
                        drop(inner);
                        let _ = released.send(());
                        closed
                    },
                    RunOptions::new(),
                )
                .unwrap();
            assert_eq!(closer.wait().unwrap_err().kind(), ErrorKind::Cancelled);
            was_released
                .recv_timeout(PATIENCE)
                .expect("the closing job dropped its handle");
            drop(runtime);
            for exited in &exits {
                assert_eq!(
                    exited.try_recv(),
                    Err(TryRecvError::Disconnected),
                    "an execution thread was still alive right after the runtime was dropped"
                );
            }
        }
    });
}

#[test]
fn shutdown_joins_every_execution_thread_before_it_returns() {
    watchdog(|| {
        let runtime = Runtime::new().unwrap();
        let exits = mark_execution_threads(&runtime);
        runtime.shutdown(PATIENCE).unwrap();
        for exited in &exits {
            assert_eq!(exited.try_recv(), Err(TryRecvError::Disconnected));
        }
    });
}

// 8. Dropping a CancelGuard does not wait for its action if it is already running.

#[test]
fn dropping_a_guard_waits_for_its_action_running_on_another_thread() {
    watchdog(|| {
        let token = subtask::CancelToken::new();
        let (started_tx, started) = bounded(1);
        let (release, released) = bounded::<()>(0);
        let finished = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let finished_in_action = finished.clone();
        let guard = token.on_cancel(move || {
            started_tx.send(()).unwrap();
            let _ = released.recv_timeout(PATIENCE);
            finished_in_action.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        let tripper = {
            let token = token.clone();
            std::thread::spawn(move || token.cancel())
        };
        started.recv_timeout(PATIENCE).unwrap(); // the action runs on the tripping thread
        let (dropped_tx, dropped) = bounded(1);
        let dropper = std::thread::spawn(move || {
            drop(guard);
            dropped_tx
                .send(finished.load(std::sync::atomic::Ordering::SeqCst))
                .unwrap();
        });
        // Whenever the drop returns, the action must have finished: a drop that returned
        // early reports `false` here.
        let early = dropped.recv_timeout(ms(200));
        drop(release);
        let action_done_at_drop = early.unwrap_or_else(|_| dropped.recv_timeout(PATIENCE).unwrap());
        assert!(
            action_done_at_drop,
            "the guard's drop returned while its action was still running"
        );
        dropper.join().unwrap();
        assert!(tripper.join().unwrap());
    });
}

#[test]
fn an_action_may_drop_its_own_guard_without_deadlock() {
    watchdog(|| {
        let token = subtask::CancelToken::new();
        let slot: Arc<parking_lot_free::Slot> = Arc::default();
        let in_action = slot.clone();
        let guard = token.on_cancel(move || drop(in_action.take()));
        slot.put(guard);
        assert!(token.cancel());
    });
}

/// A tiny mutex-protected slot (std only) for the test above.
mod parking_lot_free {
    use std::sync::Mutex;

    #[derive(Default)]
    pub struct Slot(Mutex<Option<subtask::CancelGuard>>);

    impl Slot {
        pub fn put(&self, guard: subtask::CancelGuard) {
            *self.0.lock().unwrap() = Some(guard);
        }

        pub fn take(&self) -> Option<subtask::CancelGuard> {
            self.0.lock().unwrap().take()
        }
    }
}

// 9. Event order: Queued first, Started never lost.

/// Every task's events: `queued` first, `started` if and only if its job ran, `finished`
/// last and once, heartbeats reporting the status of their moment; run with a poll interval of 1 ms (heartbeats race the dispatch) and
/// execution timeouts that fire as the job starts.
#[test]
fn queued_comes_first_and_started_is_never_lost_to_a_deadline() {
    watchdog(|| {
        let (sender, events) = unbounded::<Event>();
        let observer = move |event: &Event| {
            let _ = sender.send(event.clone());
        };
        let runtime = Runtime::builder()
            .poll_interval(ms(1))
            .observer(observer)
            .build()
            .unwrap();
        let (ran_tx, ran): (Sender<subtask::TaskId>, _) = unbounded();
        let mut ids = Vec::new();
        for n in 0..200u64 {
            let ran_tx = ran_tx.clone();
            let options = RunOptions::new().execution_timeout(Duration::from_micros(1 + n % 50));
            let handle = runtime
                .submit(
                    move |job| {
                        ran_tx.send(job.id().clone()).unwrap();
                        Ok(())
                    },
                    options,
                )
                .unwrap();
            ids.push(handle.id().clone());
            let _ = handle.wait();
        }
        runtime.shutdown(PATIENCE).unwrap(); // every event delivered
        drop(ran_tx);
        let ran: std::collections::HashSet<_> = ran.iter().collect();
        let events: Vec<Event> = events.try_iter().collect();
        for id in &ids {
            let names: Vec<&str> = events
                .iter()
                .filter(|event| &event.task == id)
                .map(|event| event.kind.name())
                .collect();
            assert_eq!(names.first(), Some(&"queued"), "{id}: {names:?}");
            assert_eq!(names.last(), Some(&"finished"), "{id}: {names:?}");
            assert_eq!(names.iter().filter(|n| **n == "finished").count(), 1);
            assert_eq!(
                names.contains(&"started"),
                ran.contains(id),
                "{id}: {names:?}"
            );
            // Between them, only heartbeats: of a Pending task before `started`, of a
            // Running one after.
            let started = names.iter().position(|n| *n == "started");
            for (position, event) in events.iter().filter(|event| &event.task == id).enumerate() {
                if let EventKind::Heartbeat { status, .. } = event.kind {
                    let before_start = started.is_none_or(|started| position < started);
                    let expected = if before_start {
                        subtask::TaskStatus::Pending
                    } else {
                        subtask::TaskStatus::Running
                    };
                    assert_eq!(status, expected, "{id}: {names:?}");
                }
            }
        }
        let finished = events
            .iter()
            .filter(|event| matches!(event.kind, EventKind::Finished { .. }))
            .count();
        assert_eq!(finished, ids.len());
    });
}
