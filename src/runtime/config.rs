//! The runtime's configuration (one place for every default) and per-call options.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::events::Observer;
use super::{Runtime, TimeoutKind};
use crate::error::Error;

/// Default number of scheduler threads.
pub const DEFAULT_SCHEDULER_THREADS: usize = 4;
/// Default number of execution threads: how many jobs run at once.
pub const DEFAULT_EXECUTION_THREADS: usize = 8;
/// Default heartbeat period of a waiting call.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(2);
/// Default limit on one run, counted from the moment it starts.
pub const DEFAULT_EXECUTION_TIMEOUT: Duration = Duration::from_secs(300);
/// Default limit on the wait for an execution slot.
pub const DEFAULT_QUEUE_TIMEOUT: Duration = Duration::from_secs(60);
/// What the default wait timeout adds to the execution and queue timeouts.
pub const WAIT_TIMEOUT_MARGIN: Duration = Duration::from_secs(5);
/// Default number of tasks that may wait for an execution slot.
pub const DEFAULT_MAX_QUEUED: usize = 64;
/// Default time `shutdown` (and dropping the last handle) gives running jobs to return.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The settings a [`Runtime`] was built with. Read them with [`Runtime::config`]; the limits
/// shown to a model are read from here too, so what is shown is what is enforced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    scheduler_threads: usize,
    execution_threads: usize,
    poll_interval: Duration,
    execution_timeout: Duration,
    queue_timeout: Duration,
    wait_timeout: Option<Duration>,
    max_queued: usize,
    shutdown_grace: Duration,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            scheduler_threads: DEFAULT_SCHEDULER_THREADS,
            execution_threads: DEFAULT_EXECUTION_THREADS,
            poll_interval: DEFAULT_POLL_INTERVAL,
            execution_timeout: DEFAULT_EXECUTION_TIMEOUT,
            queue_timeout: DEFAULT_QUEUE_TIMEOUT,
            wait_timeout: None,
            max_queued: DEFAULT_MAX_QUEUED,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
        }
    }
}

impl Config {
    /// Threads that admit, prepare and dispatch tasks.
    pub fn scheduler_threads(&self) -> usize {
        self.scheduler_threads
    }

    /// Threads that run jobs: the number of tasks that execute at once.
    pub fn execution_threads(&self) -> usize {
        self.execution_threads
    }

    /// How often a waiting call checks its deadlines and emits a heartbeat.
    pub fn poll_interval(&self) -> Duration {
        self.poll_interval
    }

    /// The limit on one run, counted from the moment it starts running.
    pub fn execution_timeout(&self) -> Duration {
        self.execution_timeout
    }

    /// The limit on the wait for an execution slot.
    pub fn queue_timeout(&self) -> Duration {
        self.queue_timeout
    }

    /// The limit on a whole call, queueing included.
    pub fn wait_timeout(&self) -> Duration {
        derived_wait_timeout(
            self.wait_timeout,
            self.execution_timeout,
            self.queue_timeout,
        )
    }

    /// How many tasks may wait for an execution slot before `submit` refuses more.
    pub fn max_queued(&self) -> usize {
        self.max_queued
    }

    /// How long shutdown waits for running jobs to return.
    pub fn shutdown_grace(&self) -> Duration {
        self.shutdown_grace
    }

    /// The effective limits of one call: the options' overrides over these settings.
    pub(crate) fn limits_for(&self, options: &RunOptions) -> Result<Limits, Error> {
        let execution = options.execution_timeout.unwrap_or(self.execution_timeout);
        let queue = options.queue_timeout.unwrap_or(self.queue_timeout);
        // An explicit wait timeout (per call, then per runtime) wins; otherwise it follows
        // the effective execution and queue timeouts of this call.
        let wait =
            derived_wait_timeout(options.wait_timeout.or(self.wait_timeout), execution, queue);
        for (limit, value) in [
            (TimeoutKind::Execution, execution),
            (TimeoutKind::Queue, queue),
            (TimeoutKind::Wait, wait),
        ] {
            if value.is_zero() {
                return Err(Error::invalid_input(format!(
                    "the {limit} timeout of a task must be greater than zero; \
                     leave it unset to use the runtime's ({})",
                    super::time::human(match limit {
                        TimeoutKind::Execution => self.execution_timeout,
                        TimeoutKind::Queue => self.queue_timeout,
                        TimeoutKind::Wait => self.wait_timeout(),
                    })
                )));
            }
        }
        Ok(Limits {
            execution,
            queue,
            wait,
        })
    }
}

fn derived_wait_timeout(
    explicit: Option<Duration>,
    execution: Duration,
    queue: Duration,
) -> Duration {
    explicit.unwrap_or_else(|| {
        execution
            .saturating_add(queue)
            .saturating_add(WAIT_TIMEOUT_MARGIN)
    })
}

/// The three limits of one task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    pub(crate) execution: Duration,
    pub(crate) queue: Duration,
    pub(crate) wait: Duration,
}

impl Limits {
    pub(crate) fn of(&self, limit: TimeoutKind) -> Duration {
        match limit {
            TimeoutKind::Queue => self.queue,
            TimeoutKind::Execution => self.execution,
            TimeoutKind::Wait => self.wait,
        }
    }
}

/// Builds a [`Runtime`]. Every setter says its default.
///
/// ```
/// use std::time::Duration;
///
/// let runtime = subtask::Runtime::builder()
///     .execution_threads(8)
///     .execution_timeout(Duration::from_secs(120))
///     .build()?;
/// assert_eq!(runtime.config().wait_timeout(), Duration::from_secs(185));
/// # Ok::<(), subtask::Error>(())
/// ```
#[must_use = "call build() to make the runtime"]
#[derive(Default)]
pub struct RuntimeBuilder {
    config: Config,
    observers: Vec<Arc<dyn Observer>>,
}

impl RuntimeBuilder {
    /// A builder with every default.
    pub fn new() -> RuntimeBuilder {
        RuntimeBuilder::default()
    }

    /// Threads that admit, prepare and dispatch tasks and do their lifecycle work. They never
    /// wait for a run to finish. Defaults to `4`.
    pub fn scheduler_threads(mut self, threads: usize) -> Self {
        self.config.scheduler_threads = threads;
        self
    }

    /// Threads that run jobs, i.e. how many tasks execute at once. Defaults to `8`.
    pub fn execution_threads(mut self, threads: usize) -> Self {
        self.config.execution_threads = threads;
        self
    }

    /// How often a waiting call checks its deadlines and emits a heartbeat event. A finished
    /// task wakes its caller at once whatever this is. Defaults to 2 s.
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.config.poll_interval = interval;
        self
    }

    /// The limit on one run, counted from the moment it starts running (time spent queued
    /// does not count). Defaults to 300 s.
    pub fn execution_timeout(mut self, timeout: Duration) -> Self {
        self.config.execution_timeout = timeout;
        self
    }

    /// The limit on the wait for an execution slot. Defaults to 60 s.
    pub fn queue_timeout(mut self, timeout: Duration) -> Self {
        self.config.queue_timeout = timeout;
        self
    }

    /// The limit on a whole call, from submission to result. Defaults to the execution
    /// timeout plus the queue timeout plus 5 s (of the call's own timeouts when it overrides
    /// them).
    pub fn wait_timeout(mut self, timeout: Duration) -> Self {
        self.config.wait_timeout = Some(timeout);
        self
    }

    /// How many tasks may wait for an execution slot; past that, `submit` and `run` fail at
    /// once with [`ErrorKind::QueueFull`](crate::ErrorKind::QueueFull). Defaults to `64`.
    pub fn max_queued(mut self, max: usize) -> Self {
        self.config.max_queued = max;
        self
    }

    /// How long [`Runtime::shutdown`] and dropping the last handle wait for cancelled jobs to
    /// return before leaving them behind. Defaults to 5 s.
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.config.shutdown_grace = grace;
        self
    }

    /// Adds an observer that sees the events of every task. Defaults to none.
    pub fn observer(mut self, observer: impl Observer + 'static) -> Self {
        self.observers.push(Arc::new(observer));
        self
    }

    /// Checks the settings and starts the threads.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) for zero threads, a zero timeout or
    /// interval, or a zero `max_queued`; [`ErrorKind::Io`](crate::ErrorKind::Io) if a thread
    /// cannot be spawned.
    pub fn build(self) -> Result<Runtime, Error> {
        let config = &self.config;
        for (name, threads) in [
            ("scheduler_threads", config.scheduler_threads),
            ("execution_threads", config.execution_threads),
            ("max_queued", config.max_queued),
        ] {
            if threads == 0 {
                return Err(Error::config(format!(
                    "{name} must be at least 1 (it was 0); leave it unset for the default"
                )));
            }
        }
        let mut durations = vec![
            ("poll_interval", config.poll_interval),
            ("execution_timeout", config.execution_timeout),
            ("queue_timeout", config.queue_timeout),
        ];
        if let Some(wait) = config.wait_timeout {
            durations.push(("wait_timeout", wait));
        }
        for (name, duration) in durations {
            if duration.is_zero() {
                return Err(Error::config(format!(
                    "{name} must be greater than zero; leave it unset for the default"
                )));
            }
        }
        Runtime::start(self.config, self.observers)
    }
}

impl fmt::Debug for RuntimeBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuntimeBuilder")
            .field("config", &self.config)
            .field("observers", &self.observers.len())
            .finish()
    }
}

/// Per-call options: a label for the task id, overrides of the runtime's timeouts, and an
/// observer for this task alone.
///
/// ```
/// use std::time::Duration;
/// use subtask::RunOptions;
///
/// let options = RunOptions::new()
///     .label("explore")
///     .execution_timeout(Duration::from_secs(30));
/// ```
#[derive(Clone, Default)]
#[must_use]
pub struct RunOptions {
    pub(crate) label: Option<String>,
    pub(crate) execution_timeout: Option<Duration>,
    pub(crate) queue_timeout: Option<Duration>,
    pub(crate) wait_timeout: Option<Duration>,
    pub(crate) observer: Option<Arc<dyn Observer>>,
    pub(crate) trace: Option<Arc<str>>,
}

impl RunOptions {
    /// Options that take every setting from the runtime.
    pub fn new() -> RunOptions {
        RunOptions::default()
    }

    /// A short label that starts the task's id (`explore` → `explore-k3m9x2ab`) and shows in
    /// events. Lowercased; characters other than letters, digits, `-` and `_` become `-`.
    /// Defaults to `task`.
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// A trace context (a W3C `traceparent`, or any id the host logs by) carried on every
    /// event of this task ([`Event::trace`](super::Event::trace)). Defaults to none.
    pub fn trace(mut self, trace: impl Into<Arc<str>>) -> Self {
        self.trace = Some(trace.into());
        self
    }

    /// Overrides the runtime's execution timeout for this task.
    pub fn execution_timeout(mut self, timeout: Duration) -> Self {
        self.execution_timeout = Some(timeout);
        self
    }

    /// Overrides the runtime's queue timeout for this task.
    pub fn queue_timeout(mut self, timeout: Duration) -> Self {
        self.queue_timeout = Some(timeout);
        self
    }

    /// Overrides the runtime's wait timeout for this task.
    pub fn wait_timeout(mut self, timeout: Duration) -> Self {
        self.wait_timeout = Some(timeout);
        self
    }

    /// Adds an observer that sees this task's events only (after the runtime's observers).
    pub fn observer(mut self, observer: impl Observer + 'static) -> Self {
        self.observer = Some(Arc::new(observer));
        self
    }
}

impl fmt::Debug for RunOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunOptions")
            .field("label", &self.label)
            .field("execution_timeout", &self.execution_timeout)
            .field("queue_timeout", &self.queue_timeout)
            .field("wait_timeout", &self.wait_timeout)
            .field("observer", &self.observer.is_some())
            .field("trace", &self.trace)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn wait_timeout_follows_the_calls_own_limits() {
        let config = Config::default();
        assert_eq!(config.wait_timeout(), Duration::from_secs(365));
        let limits = config
            .limits_for(&RunOptions::new().execution_timeout(Duration::from_secs(10)))
            .unwrap();
        assert_eq!(limits.wait, Duration::from_secs(75));
        let limits = config
            .limits_for(&RunOptions::new().wait_timeout(Duration::from_secs(3)))
            .unwrap();
        assert_eq!(limits.wait, Duration::from_secs(3));
    }

    #[test]
    fn zero_overrides_are_invalid_input() {
        let error = Config::default()
            .limits_for(&RunOptions::new().queue_timeout(Duration::ZERO))
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidInput);
        assert!(error.message().contains("queue timeout"), "{error}");
    }
}
