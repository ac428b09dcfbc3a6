//! Event delivery: every observer of the runtime gets a mailbox of its own — a queue and a
//! thread that calls it — and the observers given per call share one more. No observer runs on
//! a thread that dispatches work, runs jobs or enforces deadlines, and a slow observer delays
//! only the events in its own mailbox.
//!
//! Events are posted under the lock of the task they report, so each mailbox receives a
//! task's events in the order of its state changes, and delivers them in that order.
//!
//! Bounded in what can be dropped: past [`MAILBOX_BACKLOG`] undelivered events, a mailbox
//! drops new `Heartbeat` and `Progress` events (and says so in the log, once per backlog);
//! `Queued`, `Started` and `Finished` are always delivered.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crossbeam_channel::{Receiver, Sender};

use super::drop_quietly;
use super::events::{self, Event, EventKind, Observer};

/// Undelivered events past which a mailbox drops heartbeats and progress.
pub(crate) const MAILBOX_BACKLOG: usize = 4096;

enum Letter {
    /// An event for the mailbox's observer, or (in the per-call mailbox) for the observer it
    /// carries.
    Event(Arc<Event>, Option<Arc<dyn Observer>>),
    /// A per-call observer to drop (its task ended unobserved).
    Release(Arc<dyn Observer>),
    /// Exit after the letters queued before.
    Stop,
}

struct Mailbox {
    sender: Sender<Letter>,
    /// Letters sent and not yet handled.
    backlog: Arc<AtomicUsize>,
    /// Whether the overflow warning was logged for the current backlog.
    warned: AtomicBool,
}

/// What a mailbox thread runs with.
pub(crate) struct MailboxThread {
    receiver: Receiver<Letter>,
    backlog: Arc<AtomicUsize>,
    /// The runtime's observer this mailbox serves; `None` for the per-call mailbox.
    observer: Option<Arc<dyn Observer>>,
}

pub(crate) struct Delivery {
    /// One per runtime observer, in the order they were added.
    runtime: Vec<Mailbox>,
    /// For observers given per call.
    calls: Mailbox,
}

fn mailbox(observer: Option<Arc<dyn Observer>>) -> (Mailbox, MailboxThread) {
    let (sender, receiver) = crossbeam_channel::unbounded();
    let backlog = Arc::new(AtomicUsize::new(0));
    (
        Mailbox {
            sender,
            backlog: backlog.clone(),
            warned: AtomicBool::new(false),
        },
        MailboxThread {
            receiver,
            backlog,
            observer,
        },
    )
}

impl Delivery {
    /// The mailboxes, and the threads' halves to start.
    pub(crate) fn new(observers: Vec<Arc<dyn Observer>>) -> (Delivery, Vec<MailboxThread>) {
        let mut threads = Vec::with_capacity(observers.len() + 1);
        let runtime = observers
            .into_iter()
            .map(|observer| {
                let (mailbox, thread) = mailbox(Some(observer));
                threads.push(thread);
                mailbox
            })
            .collect();
        let (calls, thread) = mailbox(None);
        threads.push(thread);
        (Delivery { runtime, calls }, threads)
    }

    /// Whether any task is observed by the runtime's observers.
    pub(crate) fn has_runtime_observers(&self) -> bool {
        !self.runtime.is_empty()
    }

    /// Posts `event` to every runtime observer's mailbox and, with `call`, to the per-call
    /// mailbox. Never blocks.
    pub(crate) fn post(&self, event: Event, call: Option<Arc<dyn Observer>>) {
        let droppable = matches!(
            event.kind,
            EventKind::Heartbeat { .. } | EventKind::Progress(_)
        );
        let event = Arc::new(event);
        for mailbox in &self.runtime {
            mailbox.send(Letter::Event(event.clone(), None), droppable, &event);
        }
        if let Some(observer) = call {
            self.calls.send(
                Letter::Event(event.clone(), Some(observer)),
                droppable,
                &event,
            );
        }
    }

    /// Hands a per-call observer to its mailbox to drop.
    pub(crate) fn release(&self, observer: Arc<dyn Observer>) {
        self.calls.send(Letter::Release(observer), false, &());
    }

    /// Tells every mailbox thread to exit once it has delivered what was posted before.
    pub(crate) fn stop(&self) {
        for mailbox in self.runtime.iter().chain([&self.calls]) {
            let _ = mailbox.sender.send(Letter::Stop);
        }
    }
}

impl Mailbox {
    fn send(&self, letter: Letter, droppable: bool, what: &dyn std::fmt::Debug) {
        let backlog = self.backlog.load(Ordering::Relaxed);
        if droppable && backlog >= MAILBOX_BACKLOG {
            if !self.warned.swap(true, Ordering::Relaxed) {
                log::warn!(
                    "an observer is {backlog} events behind; heartbeat and progress events \
                     are dropped until it catches up (first dropped: {what:?})"
                );
            }
            drop_letter(letter);
            return;
        }
        if backlog < MAILBOX_BACKLOG / 2 {
            self.warned.store(false, Ordering::Relaxed);
        }
        self.backlog.fetch_add(1, Ordering::Relaxed);
        if let Err(error) = self.sender.send(letter) {
            // The mailbox thread is gone (shutdown): nothing will deliver this.
            self.backlog.fetch_sub(1, Ordering::Relaxed);
            drop_letter(error.into_inner());
        }
    }
}

/// Drops a letter that will not be delivered. It may hold the last handle on a per-call
/// observer, whose `Drop` is user code.
fn drop_letter(letter: Letter) {
    drop_quietly(letter);
}

/// A mailbox thread's loop: delivers each event to its observer inside `catch_unwind`.
pub(crate) fn work(mailbox: MailboxThread) {
    for letter in &mailbox.receiver {
        if !matches!(letter, Letter::Stop) {
            mailbox.backlog.fetch_sub(1, Ordering::Relaxed);
        }
        match letter {
            Letter::Event(event, call) => {
                if let Some(observer) = mailbox.observer.as_ref().or(call.as_ref()) {
                    events::notify(observer, &event);
                }
                if let Some(call) = call {
                    drop_quietly(call);
                }
            }
            Letter::Release(observer) => drop_quietly(observer),
            Letter::Stop => return,
        }
    }
}
