//! The janitor thread: runs, for the timer thread, the user code a deadline sets off — the
//! cancel actions of a timed-out task's token and the drop of a job that never ran — each
//! inside `catch_unwind`, so the timer only ever writes states and cannot be stopped or slowed
//! by a panicking or blocking `Drop`.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};

use crossbeam_channel::{Receiver, Sender};

use super::cancel::{CancelReason, CancelToken};
use super::drop_quietly;

/// Work for the janitor. The queue holds at most a few chores per live task.
pub(crate) enum Chore {
    /// Trip the token (its cancel actions run here).
    Trip(CancelToken, CancelReason),
    /// Drop a value of the user's (a job that never ran).
    Drop(Box<dyn Any + Send>),
    /// Exit after the chores queued before.
    Stop,
}

pub(crate) struct Janitor {
    sender: Sender<Chore>,
}

impl Janitor {
    pub(crate) fn new() -> (Janitor, Receiver<Chore>) {
        let (sender, receiver) = crossbeam_channel::unbounded();
        (Janitor { sender }, receiver)
    }

    pub(crate) fn send(&self, chore: Chore) {
        // After the janitor has stopped, the chore is done here instead (shutdown only).
        if let Err(error) = self.sender.send(chore) {
            run(error.into_inner());
        }
    }
}

/// The janitor thread's loop.
pub(crate) fn work(chores: &Receiver<Chore>) {
    for chore in chores {
        if matches!(chore, Chore::Stop) {
            return;
        }
        run(chore);
    }
}

fn run(chore: Chore) {
    match chore {
        Chore::Trip(token, reason) => {
            // Actions catch their own panics; this guards the trip itself.
            if let Err(panic) = catch_unwind(AssertUnwindSafe(|| token.trip(reason))) {
                log::error!(
                    "tripping a token panicked: {}",
                    super::panic_message(panic.as_ref())
                );
                drop_quietly(panic);
            }
        }
        Chore::Drop(value) => drop_quietly(value),
        Chore::Stop => {}
    }
}
