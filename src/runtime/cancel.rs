//! [`CancelToken`]: how a job learns that it should stop, and how its side effects are undone.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::TimeoutKind;
use super::time::deadline_after;
use crate::error::{Error, ErrorKind};

/// Why a token was tripped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CancelReason {
    /// `Runtime::cancel`, `Runtime::cancel_all`, a dropped handle, or [`CancelToken::cancel`].
    Cancelled,
    /// The runtime is shutting down.
    Shutdown,
    /// A time limit fired.
    TimedOut(TimeoutKind),
}

impl CancelReason {
    fn encode(self) -> u8 {
        match self {
            CancelReason::Cancelled => 1,
            CancelReason::Shutdown => 2,
            CancelReason::TimedOut(TimeoutKind::Queue) => 3,
            CancelReason::TimedOut(TimeoutKind::Execution) => 4,
            CancelReason::TimedOut(TimeoutKind::Wait) => 5,
        }
    }

    fn decode(code: u8) -> Option<CancelReason> {
        Some(match code {
            1 => CancelReason::Cancelled,
            2 => CancelReason::Shutdown,
            3 => CancelReason::TimedOut(TimeoutKind::Queue),
            4 => CancelReason::TimedOut(TimeoutKind::Execution),
            5 => CancelReason::TimedOut(TimeoutKind::Wait),
            _ => return None,
        })
    }

    /// The error a job should return when it stops for this reason.
    pub fn to_error(self) -> Error {
        match self {
            CancelReason::Cancelled => Error::new(ErrorKind::Cancelled, "the task was cancelled"),
            CancelReason::Shutdown => Error::new(
                ErrorKind::Cancelled,
                "the task was cancelled because the runtime is shutting down",
            ),
            CancelReason::TimedOut(limit) => Error::timeout(
                limit,
                format!("the task's {limit} timeout passed; raise it or give the task less work"),
            ),
        }
    }
}

/// A cancellation signal handed to every job, aware of the job's deadline.
///
/// The runtime trips it when the task times out (either limit), is cancelled
/// (`Runtime::cancel`, `Runtime::cancel_all`, a dropped handle) or when the runtime shuts
/// down. A cooperative job checks it between steps ([`check`](Self::check)), sleeps through it
/// ([`sleep`](Self::sleep)), and registers actions that undo work in flight
/// ([`on_cancel`](Self::on_cancel)) such as killing a child process.
///
/// Past its deadline a token reports itself cancelled even before the runtime's timer has
/// tripped it, so a job never works on borrowed time. Clones share the same signal.
#[derive(Clone)]
pub struct CancelToken {
    inner: Arc<Inner>,
}

struct Inner {
    /// 0 while live, else the encoded [`CancelReason`]. Written once: the first trip wins.
    reason: AtomicU8,
    /// The instant the job must be done by and the limit it comes from; set at most once,
    /// when the run starts (the execution clock starts then, not at submission).
    deadline: OnceLock<(Instant, TimeoutKind)>,
    /// Cancel actions not yet run, and the one running. Also the mutex `tripped` pairs with:
    /// a trip takes it before notifying, and sleepers check `reason` while holding it, so no
    /// wake-up is lost.
    actions: Mutex<Actions>,
    /// Signalled when a trip is written and each time a running action returns.
    tripped: Condvar,
}

#[derive(Default)]
struct Actions {
    next_id: u64,
    /// Registered and not yet started. A trip takes them one at a time, in order.
    pending: Vec<(u64, Box<dyn FnOnce() + Send>)>,
    /// The action a trip is running now, and the thread running it. A guard dropped on another
    /// thread waits until this is no longer its own action, so whatever the action acts on
    /// (a process group id) is not released while it still might be used.
    running: Option<(u64, ThreadId)>,
}

impl CancelToken {
    /// A live token with no deadline. The runtime makes one per task; make your own to call
    /// cancellable code (tools, models) outside a runtime.
    pub fn new() -> CancelToken {
        CancelToken {
            inner: Arc::new(Inner {
                reason: AtomicU8::new(0),
                deadline: OnceLock::new(),
                actions: Mutex::new(Actions::default()),
                tripped: Condvar::new(),
            }),
        }
    }

    /// A live token whose deadline is `timeout` from now (reported as an execution timeout).
    pub fn with_timeout(timeout: Duration) -> CancelToken {
        let token = CancelToken::new();
        token.set_deadline(
            deadline_after(Instant::now(), timeout),
            TimeoutKind::Execution,
        );
        token
    }

    /// Sets the deadline; only the first call has an effect.
    pub(crate) fn set_deadline(&self, deadline: Instant, limit: TimeoutKind) {
        let _ = self.inner.deadline.set((deadline, limit));
    }

    /// Whether the job should stop: the token was tripped or its deadline has passed.
    pub fn is_cancelled(&self) -> bool {
        self.reason().is_some()
    }

    /// Why the job should stop, or `None` while it may go on.
    pub fn reason(&self) -> Option<CancelReason> {
        if let Some(reason) = CancelReason::decode(self.inner.reason.load(Ordering::Acquire)) {
            return Some(reason);
        }
        match self.inner.deadline.get() {
            Some(&(deadline, limit)) if Instant::now() >= deadline => {
                Some(CancelReason::TimedOut(limit))
            }
            _ => None,
        }
    }

    /// `Ok(())` while the job may go on, else the error to return (`Cancelled` or `Timeout`).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Cancelled`] or [`ErrorKind::Timeout`] once the token is tripped or past
    /// its deadline.
    pub fn check(&self) -> Result<(), Error> {
        match self.reason() {
            Some(reason) => Err(reason.to_error()),
            None => Ok(()),
        }
    }

    /// The deadline, once the run has started (or for tokens made with
    /// [`with_timeout`](Self::with_timeout)).
    pub fn deadline(&self) -> Option<Instant> {
        self.inner.deadline.get().map(|&(deadline, _)| deadline)
    }

    /// Time left before the deadline (zero once it has passed); `None` without a deadline.
    /// Use it as the timeout of anything blocking, such as an HTTP request.
    pub fn remaining(&self) -> Option<Duration> {
        self.deadline()
            .map(|deadline| deadline.saturating_duration_since(Instant::now()))
    }

    /// Sleeps for `duration`, waking at once if the token is tripped or the deadline passes.
    ///
    /// # Errors
    ///
    /// The same as [`check`](Self::check), if the sleep was cut short.
    pub fn sleep(&self, duration: Duration) -> Result<(), Error> {
        let now = Instant::now();
        let wake_at = deadline_after(now, duration);
        let mut actions = self.inner.actions.lock();
        loop {
            self.check()?;
            let now = Instant::now();
            if now >= wake_at {
                return Ok(());
            }
            let until = match self.deadline() {
                Some(deadline) => wake_at.min(deadline),
                None => wake_at,
            };
            self.inner.tripped.wait_until(&mut actions, until);
        }
    }

    /// Trips the token: wakes sleepers and runs the registered cancel actions on this thread.
    /// Returns `false` if it was already tripped (the first reason stays).
    pub fn cancel(&self) -> bool {
        self.trip(CancelReason::Cancelled)
    }

    pub(crate) fn trip(&self, reason: CancelReason) -> bool {
        if self
            .inner
            .reason
            .compare_exchange(0, reason.encode(), Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return false;
        }
        let mut actions = self.inner.actions.lock();
        self.inner.tripped.notify_all();
        // One at a time, outside the lock: an action may register or drop guards of this
        // same token. A guard dropped meanwhile removes its action from `pending` (it never
        // runs) or, if it is the one running, waits for it.
        while !actions.pending.is_empty() {
            let (id, action) = actions.pending.remove(0);
            actions.running = Some((id, std::thread::current().id()));
            drop(actions);
            run_action(action);
            actions = self.inner.actions.lock();
            actions.running = None;
            self.inner.tripped.notify_all();
        }
        true
    }

    /// Registers `action` to run when the token is tripped (at once, on this thread, if it
    /// already is). Dropping the returned guard unregisters it, so an action that kills a
    /// child process is forgotten once that process has been reaped.
    ///
    /// Actions run on the thread that trips the token, one after another: the host's thread
    /// for a cancel, the runtime's janitor thread for a timeout (never its timer or dispatch
    /// threads). Keep them short (send a signal, shut a socket down): a blocking action delays
    /// the actions of other timed-out tasks, though not their ending. A panicking action is
    /// logged and skipped.
    ///
    /// A token past its deadline that nobody has tripped yet does not run its actions; the
    /// runtime trips every task's token when the deadline passes.
    #[must_use = "dropping the guard unregisters the action at once"]
    pub fn on_cancel(&self, action: impl FnOnce() + Send + 'static) -> CancelGuard {
        let mut actions = self.inner.actions.lock();
        if self.inner.reason.load(Ordering::Acquire) != 0 {
            drop(actions);
            run_action(Box::new(action));
            return CancelGuard { token: None, id: 0 };
        }
        let id = actions.next_id;
        actions.next_id += 1;
        actions.pending.push((id, Box::new(action)));
        CancelGuard {
            token: Some(self.inner.clone()),
            id,
        }
    }
}

fn run_action(action: Box<dyn FnOnce() + Send>) {
    if let Err(panic) = catch_unwind(AssertUnwindSafe(action)) {
        log::error!(
            "a cancel action panicked: {}",
            super::panic_message(panic.as_ref())
        );
        super::drop_quietly(panic);
    }
}

impl Default for CancelToken {
    fn default() -> CancelToken {
        CancelToken::new()
    }
}

impl fmt::Debug for CancelToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelToken")
            .field("reason", &self.reason())
            .field("remaining", &self.remaining())
            .finish()
    }
}

/// Keeps a cancel action registered; dropping it unregisters the action.
///
/// If the action is running on another thread at that moment (the token was just tripped),
/// the drop waits for it to return: after the drop, the action is neither running nor will
/// it run. So a job can reap its child process and drop the guard knowing that no other
/// thread is about to signal that (possibly reused) process id.
#[must_use = "dropping the guard unregisters the action at once"]
pub struct CancelGuard {
    /// `None` when the action already ran at registration.
    token: Option<Arc<Inner>>,
    id: u64,
}

impl Drop for CancelGuard {
    fn drop(&mut self) {
        let Some(inner) = &self.token else { return };
        let mut actions = inner.actions.lock();
        actions.pending.retain(|(id, _)| *id != self.id);
        let me = std::thread::current().id();
        // An action dropping its own guard must not wait for itself.
        while matches!(actions.running, Some((id, thread)) if id == self.id && thread != me) {
            inner.tripped.wait(&mut actions);
        }
    }
}

impl fmt::Debug for CancelGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelGuard").field("id", &self.id).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn first_reason_wins() {
        let token = CancelToken::new();
        assert!(token.check().is_ok());
        assert!(token.trip(CancelReason::TimedOut(TimeoutKind::Execution)));
        assert!(!token.cancel());
        assert_eq!(
            token.reason(),
            Some(CancelReason::TimedOut(TimeoutKind::Execution))
        );
        assert_eq!(token.check().unwrap_err().kind(), ErrorKind::Timeout);
    }

    #[test]
    fn actions_run_once_on_trip_and_not_after_their_guard_drops() {
        let runs = Arc::new(AtomicUsize::new(0));
        let token = CancelToken::new();
        let counted = || {
            let runs = runs.clone();
            move || {
                runs.fetch_add(1, Ordering::SeqCst);
            }
        };
        let kept = token.on_cancel(counted());
        drop(token.on_cancel(counted()));
        token.cancel();
        token.cancel();
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        // Registering on a tripped token runs the action at once.
        let _late = token.on_cancel(counted());
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        drop(kept);
    }

    #[test]
    fn a_panicking_action_does_not_stop_the_others() {
        let token = CancelToken::new();
        let ran = Arc::new(AtomicUsize::new(0));
        let _a = token.on_cancel(|| panic!("action failed"));
        let ran2 = ran.clone();
        let _b = token.on_cancel(move || {
            ran2.fetch_add(1, Ordering::SeqCst);
        });
        token.cancel();
        assert_eq!(ran.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn sleep_wakes_on_cancel_from_another_thread() {
        let token = CancelToken::new();
        let sleeper = token.clone();
        let handle = std::thread::spawn(move || sleeper.sleep(Duration::from_secs(60)));
        token.cancel();
        let result = handle.join().unwrap();
        assert_eq!(result.unwrap_err().kind(), ErrorKind::Cancelled);
    }

    #[test]
    fn a_passed_deadline_cancels_without_a_trip() {
        let token = CancelToken::with_timeout(Duration::from_millis(5));
        let result = token.sleep(Duration::from_secs(60));
        assert_eq!(
            result.unwrap_err().timeout_kind(),
            Some(TimeoutKind::Execution)
        );
        assert!(token.is_cancelled());
        assert_eq!(token.remaining(), Some(Duration::ZERO));
    }

    #[test]
    fn a_short_sleep_returns_ok() {
        let token = CancelToken::with_timeout(Duration::from_secs(60));
        assert!(token.sleep(Duration::from_millis(1)).is_ok());
        assert!(token.remaining().unwrap() > Duration::from_secs(50));
    }
}
