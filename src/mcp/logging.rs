//! The server's log records as `notifications/message` to the client: [`McpLogger`] wraps
//! the process's logger and also hands each record to the session being served, which sends
//! it when the client asked for that level (`logging/setLevel`, or a 2026-07-28 request's
//! `io.modelcontextprotocol/logLevel` while that request is in progress).

use std::sync::{Arc, Weak};

use parking_lot::Mutex;

/// Where records go while a session is served: set by [`McpServer::serve`](super::McpServer::serve)
/// for its duration (the latest session wins), read by [`McpLogger`] on any thread.
static SESSION: Mutex<Option<Weak<dyn LogSink>>> = Mutex::new(None);

/// The log target of records the server has already sent to the client itself.
pub(crate) const SENT_TARGET: &str = "subtask::mcp::client";

/// A session that takes log records.
pub(crate) trait LogSink: Send + Sync {
    /// Sends `message` at `level` (an MCP level name) if the client asked for it.
    fn log(&self, level: &str, logger: &str, message: &str);
}

/// Registers `sink` as the session records go to, until the returned guard drops.
pub(crate) fn register(sink: &Arc<dyn LogSink>) -> Registration {
    *SESSION.lock() = Some(Arc::downgrade(sink));
    Registration {
        sink: Arc::downgrade(sink),
    }
}

/// Unregisters its session when dropped (unless a newer one took its place).
pub(crate) struct Registration {
    sink: Weak<dyn LogSink>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut session = SESSION.lock();
        if session
            .as_ref()
            .is_some_and(|current| Weak::ptr_eq(current, &self.sink))
        {
            *session = None;
        }
    }
}

/// A [`log::Log`] that writes through `inner` (e.g. `env_logger` to stderr) and also sends
/// each record to the MCP client being served, as `notifications/message`, when the client
/// asked for its level. Install it as the global logger of a process that serves MCP:
///
/// ```no_run
/// let inner = env_logger::Builder::from_default_env().build();
/// let level = inner.filter();
/// subtask::mcp::McpLogger::new(Box::new(inner)).install(level)?;
/// # Ok::<(), subtask::Error>(())
/// ```
///
/// API keys are never logged (see the crate's security model), so nothing secret reaches
/// the client this way.
pub struct McpLogger {
    inner: Box<dyn log::Log>,
}

impl McpLogger {
    /// A logger writing through `inner` and to the client.
    pub fn new(inner: Box<dyn log::Log>) -> McpLogger {
        McpLogger { inner }
    }

    /// Installs this as the global logger, passing records up to `max_level`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) if a global logger is already set.
    pub fn install(self, max_level: log::LevelFilter) -> Result<(), crate::Error> {
        log::set_boxed_logger(Box::new(self)).map_err(|_| {
            crate::Error::config("a logger is already installed; install McpLogger instead")
        })?;
        log::set_max_level(max_level);
        Ok(())
    }
}

impl std::fmt::Debug for McpLogger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpLogger").finish_non_exhaustive()
    }
}

impl log::Log for McpLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        self.inner.enabled(metadata)
    }

    fn log(&self, record: &log::Record<'_>) {
        self.inner.log(record);
        if !self.inner.enabled(record.metadata()) || record.target() == SENT_TARGET {
            return;
        }
        // Out of the registry's lock before the session does anything.
        let sink = SESSION.lock().as_ref().and_then(Weak::upgrade);
        if let Some(sink) = sink {
            let level = match record.level() {
                log::Level::Error => "error",
                log::Level::Warn => "warning",
                log::Level::Info => "info",
                log::Level::Debug | log::Level::Trace => "debug",
            };
            sink.log(level, record.target(), &record.args().to_string());
        }
    }

    fn flush(&self) {
        self.inner.flush();
    }
}
