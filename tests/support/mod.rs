//! Helpers for the runtime's integration tests.
//!
//! Nothing here sleeps to synchronise: jobs are held by [`Gate`]s, progress is seen through
//! channels and observers, and every wait has a limit, so a broken runtime fails a test
//! instead of hanging it.

#![allow(dead_code)] // each test binary uses its own subset

pub mod llm_rules;
pub mod llm_server;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded, unbounded};
use subtask::{Error, Event, EventKind, RunOptions, Runtime, TaskHandle, TaskId};

/// How long anything in a test may block before the test fails rather than hangs.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// Shorthand for a duration in milliseconds.
pub fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

/// Runs `test` on its own thread and fails if it has not finished within [`PATIENCE`].
/// A panic inside `test` fails the calling test with the same payload.
pub fn watchdog<T: Send + 'static>(test: impl FnOnce() -> T + Send + 'static) -> T {
    watchdog_for(PATIENCE, test)
}

/// [`watchdog`] with a limit of its own.
pub fn watchdog_for<T: Send + 'static>(
    limit: Duration,
    test: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (done, result) = bounded(1);
    let body = std::thread::Builder::new()
        .name("test-body".into())
        .spawn(move || {
            let _ = done.send(test());
        })
        .expect("spawn the test body");
    match result.recv_timeout(limit) {
        Ok(value) => value,
        Err(RecvTimeoutError::Disconnected) => match body.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => unreachable!("the test body ended without a result or a panic"),
        },
        Err(RecvTimeoutError::Timeout) => {
            panic!("watchdog: the test did not finish within {limit:?}; something blocks")
        }
    }
}

/// A `sleep` argument no other process has (`1000.<pid><n>` seconds), to find the process
/// from the host with [`running_with_arg`] whatever PID namespace it runs in.
pub fn unique_sleep() -> String {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let next = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("1000.{}{next}", std::process::id())
}

/// Host pids of the live (not zombie) processes with `arg` among their arguments.
pub fn running_with_arg(arg: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let zombie = matches!(
                state
                    .rsplit(')')
                    .next()
                    .and_then(|rest| rest.split_whitespace().next()),
                Some("Z" | "X") | None
            );
            !zombie
                && cmdline
                    .split(|byte| *byte == 0)
                    .any(|part| part == arg.as_bytes())
        })
        .collect()
}

/// Spins (yielding) until `condition` holds or `limit` passes; returns whether it held.
pub fn wait_until(limit: Duration, condition: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::yield_now();
    }
}

/// Holds jobs until the test opens it. Each job reports its arrival, then blocks (ignoring
/// its cancel token on purpose) until the gate opens, is dropped, or [`PATIENCE`] passes.
pub struct Gate {
    arrivals: Receiver<()>,
    arrive: Sender<()>,
    open: Mutex<Option<Sender<()>>>,
    opened: Receiver<()>,
}

/// What a job holds to wait at a [`Gate`].
#[derive(Clone)]
pub struct Pass {
    arrive: Sender<()>,
    opened: Receiver<()>,
}

impl Gate {
    pub fn new() -> Gate {
        let (arrive, arrivals) = unbounded();
        let (open, opened) = bounded(0);
        Gate {
            arrivals,
            arrive,
            open: Mutex::new(Some(open)),
            opened,
        }
    }

    pub fn pass(&self) -> Pass {
        Pass {
            arrive: self.arrive.clone(),
            opened: self.opened.clone(),
        }
    }

    /// Waits for `count` jobs to arrive; panics if they do not within [`PATIENCE`].
    pub fn expect_arrivals(&self, count: usize) {
        for arrived in 0..count {
            if self.arrivals.recv_timeout(PATIENCE).is_err() {
                panic!("only {arrived} of {count} jobs reached the gate within {PATIENCE:?}");
            }
        }
    }

    /// Whether a job arrives within `limit` (for checking that none does).
    pub fn arrival_within(&self, limit: Duration) -> bool {
        self.arrivals.recv_timeout(limit).is_ok()
    }

    /// Lets every job through, now and later.
    pub fn open(&self) {
        self.open.lock().unwrap().take();
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        // A test that fails half-way must not leave jobs blocked.
        self.open();
    }
}

impl Pass {
    /// Reports arrival, then blocks until the gate opens.
    pub fn wait(&self) -> Result<(), Error> {
        let _ = self.arrive.send(());
        match self.opened.recv_timeout(PATIENCE) {
            Err(RecvTimeoutError::Disconnected) => Ok(()),
            Ok(()) => unreachable!("nothing is ever sent through a gate"),
            Err(RecvTimeoutError::Timeout) => Err(Error::other("the gate never opened")),
        }
    }
}

/// Submits a job that holds an execution thread until `gate` opens, and returns once the
/// job is running.
pub fn hold_slot(runtime: &Runtime, gate: &Gate) -> TaskHandle<()> {
    let pass = gate.pass();
    let handle = runtime
        .submit(move |_| pass.wait(), RunOptions::new().label("holder"))
        .expect("submit the job that holds the slot");
    gate.expect_arrivals(1);
    handle
}

/// An observer that sends every event it sees into the returned channel.
pub fn recorder() -> (impl Fn(&Event) + Send + Sync + 'static, Receiver<Event>) {
    let (sender, events) = unbounded();
    let observer = move |event: &Event| {
        let _ = sender.send(event.clone());
    };
    (observer, events)
}

/// Receives `task`'s events (skipping other tasks') up to and including its `Finished`.
pub fn events_until_finished(events: &Receiver<Event>, task: &TaskId) -> Vec<Event> {
    let mut seen = Vec::new();
    loop {
        let Ok(event) = events.recv_timeout(PATIENCE) else {
            panic!(
                "no Finished event for {task} within {PATIENCE:?}; saw {:?}",
                names(&seen)
            );
        };
        if &event.task != task {
            continue;
        }
        let finished = matches!(event.kind, EventKind::Finished { .. });
        seen.push(event);
        if finished {
            return seen;
        }
    }
}

/// Waits for `task`'s event named `name` (`queued`, `started`…), skipping the others.
pub fn expect_event(events: &Receiver<Event>, task: &TaskId, name: &str) -> Event {
    loop {
        let Ok(event) = events.recv_timeout(PATIENCE) else {
            panic!("no {name} event for {task} within {PATIENCE:?}");
        };
        if &event.task == task && event.kind.name() == name {
            return event;
        }
    }
}

/// The names of events, for readable assertions.
pub fn names(events: &[Event]) -> Vec<&'static str> {
    events.iter().map(|event| event.kind.name()).collect()
}

/// Disconnects its channel when dropped: put one in a closure to learn when the runtime
/// lets go of it.
pub struct DropSignal(Sender<()>);

pub fn drop_signal() -> (DropSignal, Receiver<()>) {
    let (sender, receiver) = bounded(0);
    (DropSignal(sender), receiver)
}

/// Whether the [`DropSignal`] behind `receiver` is dropped within `limit`.
pub fn dropped_within(receiver: &Receiver<()>, limit: Duration) -> bool {
    matches!(
        receiver.recv_timeout(limit),
        Err(RecvTimeoutError::Disconnected)
    )
}

/// A directory under the system temp dir, unique to this process and call, removed on drop.
pub struct TempDir(std::path::PathBuf);

impl TempDir {
    /// A new empty directory whose name includes `tag`.
    pub fn new(tag: &str) -> TempDir {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "subtask-test-{tag}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create a temp dir");
        TempDir(path)
    }

    /// The directory.
    pub fn path(&self) -> &std::path::Path {
        &self.0
    }

    /// The directory as a workspace.
    pub fn workspace(&self) -> subtask::tools::Workspace {
        subtask::tools::Workspace::new(&self.0).expect("a temp workspace")
    }

    /// Writes a file (making its directories); returns its path.
    pub fn write(&self, relative: &str, contents: impl AsRef<[u8]>) -> std::path::PathBuf {
        let path = self.0.join(relative);
        std::fs::create_dir_all(path.parent().expect("a file has a parent")).unwrap();
        std::fs::write(&path, contents).unwrap();
        path
    }
}

/// Removes a directory when dropped: what a test wrote outside its [`TempDir`] (its
/// transcripts in the per-user state directory).
pub struct RemoveOnDrop(pub std::path::PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A streamed delta as a model's sink saw it, owned.
#[derive(Debug, Clone, PartialEq)]
pub enum Seen {
    Text(String),
    Call(String),
    Input(String),
    Reasoning(String),
}

/// Calls `model` with a fresh token, recording every delta.
pub fn chat_with(
    model: &dyn subtask::llm::ChatModel,
    request: &subtask::llm::ChatRequest<'_>,
) -> (Result<subtask::llm::ChatResponse, Error>, Vec<Seen>) {
    use subtask::llm::Delta;
    let mut seen = Vec::new();
    let result = model.chat(request, &subtask::CancelToken::new(), &mut |delta| {
        seen.push(match delta {
            Delta::Text(part) => Seen::Text(part.into()),
            Delta::ToolCall { name } => Seen::Call(name.into()),
            Delta::ToolInput(part) => Seen::Input(part.into()),
            Delta::Reasoning(part) => Seen::Reasoning(part.into()),
            other => panic!("a delta of an unknown kind: {other:?}"),
        })
    });
    (result, seen)
}
