//! How the scheduler and execution threads get their work: a queue that hands each item to
//! a thread still polling for work, else to the thread that parked last.
//!
//! A crossbeam channel wakes its blocked receivers in the order they blocked, so calls made
//! one after another visit every thread of a pool in turn, each one parked for longest and
//! coldest: its stack, its allocator's thread cache and, for a Python host, the
//! interpreter's state for that thread. Here a thread that has just finished its work polls
//! the queue for a while (spinning, then yielding: crossbeam's `Backoff`, as a channel's
//! `recv` does) and gets the next item without being woken; once parked, the thread that
//! parked last is woken first. Sequential work stays on one or two warm threads per pool.
//!
//! Measured on a 2-vCPU VM, three runs each, p50: `cargo bench --features mimalloc --bench
//! ffi` (a trivial task through the C ABI) back to back 122–144 µs on the channel, 98–115 µs
//! here; 1 ms apart 280–327 µs, 213–244 µs. `cargo bench --bench facade`: round trip
//! (17–19 µs) and 16-caller throughput (134–161k jobs/s) within the channel's range.
//! Parking at once instead of polling gained another ~15 % on sequential calls but cost 16
//! callers on 2 cores 45 % of their throughput.
//!
//! Under load items wait in a FIFO queue, which every thread drains before it parks again.

use std::cell::Cell;
use std::collections::VecDeque;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crossbeam_utils::Backoff;
use parking_lot::{Condvar, Mutex};

/// Multi-producer, multi-consumer. Consumers are [`Consumer`]s, one per thread.
pub(crate) struct Handoff<T> {
    state: Mutex<State<T>>,
    /// `state.queue.len()`, written under the lock, read without it: a consumer about to
    /// park polls it instead of the lock. A hint only; the queue itself decides.
    queued: AtomicUsize,
    /// Consumers polling the queue before they park. Raised without the lock as one starts
    /// (a sender that misses it wakes a parked consumer instead: harmless), lowered under the
    /// lock as it takes an item or parks, so a sender holding the lock never counts one that
    /// has stopped polling. Each polling consumer takes one queued item before it may park.
    spinning: AtomicUsize,
}

struct State<T> {
    /// Items waiting for a consumer, oldest first. Invariant: every item has a taker —
    /// while `idle` is not empty, at most as many items as consumers polling (a consumer
    /// parks only after finding the queue empty; a send queues one more item only for a
    /// polling consumer or when nobody is parked; a polling consumer leaves the count only
    /// by taking an item or by parking on an empty queue).
    queue: VecDeque<T>,
    /// Consumers parked in `recv`, the most recently idle last. Invariant: each one's slot
    /// is empty and it waits on its condition variable (or is about to).
    idle: Vec<Arc<Parked<T>>>,
    /// Live `Consumer`s. Once none is left, `send` gives its item back, like a channel
    /// whose receivers are gone.
    consumers: usize,
}

/// One consumer's mailbox while it is parked.
struct Parked<T> {
    /// The item handed to it. Written once per park, by the sender that popped it from
    /// `idle`; taken by the consumer.
    slot: Mutex<Option<T>>,
    filled: Condvar,
}

/// A thread's end of a [`Handoff`]: takes items with [`recv`](Self::recv). `Send`, not
/// `Sync`: two threads in `recv` on one consumer would park the same `Parked` twice and the
/// second item handed to it would overwrite the first.
pub(crate) struct Consumer<T> {
    handoff: Arc<Handoff<T>>,
    parked: Arc<Parked<T>>,
    _not_sync: PhantomData<Cell<()>>,
}

impl<T> Handoff<T> {
    pub(crate) fn new() -> Arc<Handoff<T>> {
        Arc::new(Handoff {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                idle: Vec::new(),
                consumers: 0,
            }),
            queued: AtomicUsize::new(0),
            spinning: AtomicUsize::new(0),
        })
    }

    /// A new consumer, for one thread.
    pub(crate) fn consumer(self: &Arc<Self>) -> Consumer<T> {
        let mut state = self.state.lock();
        state.consumers += 1;
        // Room for every consumer in `idle`: the push in `recv`, between the two changes
        // of `spinning`, then never allocates (so never unwinds).
        let room = state.consumers - state.idle.len();
        state.idle.reserve(room);
        drop(state);
        Consumer {
            handoff: self.clone(),
            parked: Arc::new(Parked {
                slot: Mutex::new(None),
                filled: Condvar::new(),
            }),
            _not_sync: PhantomData,
        }
    }

    /// Queues `item` for a consumer that is polling the queue, else gives it to the
    /// consumer that parked last, else queues it for the next one done with its work.
    /// Returns it when no consumer is left.
    pub(crate) fn send(&self, item: T) -> Result<(), T> {
        let mut state = self.state.lock();
        if state.consumers == 0 {
            return Err(item);
        }
        let polling = self.spinning.load(Ordering::Relaxed);
        let parked = if state.queue.len() < polling {
            None // one of them takes it, without a wake-up
        } else {
            state.idle.pop()
        };
        let Some(parked) = parked else {
            state.queue.push_back(item);
            self.queued.store(state.queue.len(), Ordering::Relaxed);
            debug_assert!(
                state.idle.is_empty() || state.queue.len() <= self.spinning.load(Ordering::Relaxed),
                "an item queued with nobody to take it"
            );
            return Ok(());
        };
        // Popped: no other sender can reach this consumer until it parks again.
        drop(state);
        *parked.slot.lock() = Some(item);
        parked.filled.notify_one();
        Ok(())
    }
}

impl<T> Consumer<T> {
    /// The oldest queued item, or, when none is queued, the next item sent (blocking).
    pub(crate) fn recv(&self) -> T {
        let handoff = &*self.handoff;
        let backoff = Backoff::new();
        handoff.spinning.fetch_add(1, Ordering::Relaxed);
        loop {
            if backoff.is_completed() || handoff.queued.load(Ordering::Relaxed) > 0 {
                let mut state = handoff.state.lock();
                if let Some(item) = state.queue.pop_front() {
                    handoff.queued.store(state.queue.len(), Ordering::Relaxed);
                    handoff.spinning.fetch_sub(1, Ordering::Relaxed);
                    return item;
                }
                if backoff.is_completed() {
                    state.idle.push(self.parked.clone());
                    handoff.spinning.fetch_sub(1, Ordering::Relaxed);
                    break;
                }
            }
            backoff.snooze();
        }
        // The slot's lock orders this check after the sender's write, so a send between
        // the two locks is not missed.
        let mut slot = self.parked.slot.lock();
        loop {
            if let Some(item) = slot.take() {
                return item;
            }
            self.parked.filled.wait(&mut slot);
        }
    }
}

impl<T> Drop for Consumer<T> {
    fn drop(&mut self) {
        // Never while in `recv` (a consumer is not `Sync`): its thread's, or, when that
        // thread could not be started, the one that made it.
        self.handoff.state.lock().consumers -= 1;
    }
}

#[cfg(test)]
mod stress;

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Barrier;
    use std::thread;

    /// Parks `consumer` on its own thread; its first item comes back on the channel with
    /// the consumer's name.
    fn park(
        name: usize,
        consumer: Consumer<usize>,
        got: crossbeam_channel::Sender<(usize, usize)>,
    ) -> thread::JoinHandle<()> {
        thread::spawn(move || {
            let item = consumer.recv();
            got.send((name, item)).unwrap();
        })
    }

    fn wait_until_idle(handoff: &Handoff<usize>, count: usize) {
        // Test-only: the consumers announce nothing between locking and parking, so this
        // waits on the state itself (yielding), never on time.
        while handoff.state.lock().idle.len() < count {
            thread::yield_now();
        }
    }

    #[test]
    fn the_consumer_that_parked_last_gets_the_item() {
        let handoff = Handoff::new();
        let (got_tx, got) = crossbeam_channel::unbounded();
        let first = park(1, handoff.consumer(), got_tx.clone());
        wait_until_idle(&handoff, 1);
        let second = park(2, handoff.consumer(), got_tx);
        wait_until_idle(&handoff, 2);
        handoff.send(10).unwrap();
        assert_eq!(got.recv().unwrap(), (2, 10));
        handoff.send(20).unwrap();
        assert_eq!(got.recv().unwrap(), (1, 20));
        first.join().unwrap();
        second.join().unwrap();
    }

    #[test]
    fn a_polling_consumer_takes_one_item_without_a_wake_up_and_a_parked_one_the_next() {
        let handoff = Handoff::new();
        let (got_tx, got) = crossbeam_channel::unbounded();
        let parked = park(1, handoff.consumer(), got_tx);
        wait_until_idle(&handoff, 1);
        // A consumer between two jobs, polling before it parks (its thread is elsewhere).
        let polling = handoff.consumer();
        handoff.spinning.fetch_add(1, Ordering::Relaxed);
        handoff.send(10).unwrap();
        assert_eq!(
            handoff.state.lock().queue.len(),
            1,
            "kept for the polling consumer"
        );
        assert_eq!(
            handoff.state.lock().idle.len(),
            1,
            "the parked one still sleeps"
        );
        // One queued item per polling consumer: the next goes to the parked one.
        handoff.send(20).unwrap();
        assert_eq!(got.recv().unwrap(), (1, 20));
        handoff.spinning.fetch_sub(1, Ordering::Relaxed);
        assert_eq!(polling.recv(), 10);
        parked.join().unwrap();
        let state = handoff.state.lock();
        assert_eq!((state.queue.len(), state.idle.len()), (0, 0));
        assert_eq!(handoff.spinning.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn items_sent_while_nobody_waits_are_taken_in_order() {
        let handoff = Handoff::new();
        let consumer = handoff.consumer();
        for item in 0..5 {
            handoff.send(item).unwrap();
        }
        assert_eq!(
            (0..5).map(|_| consumer.recv()).collect::<Vec<_>>(),
            [0, 1, 2, 3, 4]
        );
    }

    #[test]
    fn send_gives_the_item_back_once_every_consumer_is_gone() {
        let handoff = Handoff::new();
        assert_eq!(handoff.send(1), Err(1));
        let consumer = handoff.consumer();
        assert_eq!(handoff.send(2), Ok(()));
        assert_eq!(consumer.recv(), 2);
        drop(consumer);
        assert_eq!(handoff.send(3), Err(3));
    }

    #[test]
    fn every_item_reaches_exactly_one_consumer_under_contention() {
        const SENDERS: usize = 4;
        const PER_SENDER: usize = 5_000;
        const CONSUMERS: usize = 6;
        let handoff = Handoff::new();
        let (got_tx, got) = crossbeam_channel::unbounded();
        let consumers: Vec<_> = (0..CONSUMERS)
            .map(|_| {
                let consumer = handoff.consumer();
                let got_tx = got_tx.clone();
                thread::spawn(move || {
                    // `usize::MAX` stops a consumer.
                    loop {
                        let item = consumer.recv();
                        if item == usize::MAX {
                            return;
                        }
                        got_tx.send(item).unwrap();
                    }
                })
            })
            .collect();
        drop(got_tx);
        let start = Arc::new(Barrier::new(SENDERS));
        let senders: Vec<_> = (0..SENDERS)
            .map(|s| {
                let handoff = handoff.clone();
                let start = start.clone();
                thread::spawn(move || {
                    start.wait();
                    for i in 0..PER_SENDER {
                        handoff.send(s * PER_SENDER + i).unwrap();
                    }
                })
            })
            .collect();
        for sender in senders {
            sender.join().unwrap();
        }
        let mut seen: Vec<usize> = got.iter().take(SENDERS * PER_SENDER).collect();
        for _ in 0..CONSUMERS {
            handoff.send(usize::MAX).unwrap();
        }
        for consumer in consumers {
            consumer.join().unwrap();
        }
        seen.sort_unstable();
        assert_eq!(seen, (0..SENDERS * PER_SENDER).collect::<Vec<_>>());
        let state = handoff.state.lock();
        assert!(state.queue.is_empty() && state.consumers == 0);
        assert_eq!(handoff.spinning.load(Ordering::Relaxed), 0);
    }
}
