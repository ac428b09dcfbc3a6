//! The crate's one error type: an opaque [`Error`] with a [`ErrorKind`] to match on.

use std::fmt;
use std::sync::Arc;

use crate::runtime::TimeoutKind;

/// What went wrong, in a form a program can match on.
///
/// The same table drives the C error codes and the Python exceptions, so a kind never changes
/// meaning once released; new kinds may be added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The caller passed something invalid (a zero timeout, an empty id, bad JSON arguments).
    InvalidInput,
    /// The runtime, a provider or a subagent is configured wrongly.
    Config,
    /// `max_queued` tasks are already waiting for an execution slot. Retryable.
    QueueFull,
    /// A time limit fired; [`Error::timeout_kind`] says which one.
    Timeout,
    /// The task was cancelled by the host (`cancel`, `cancel_all`, shutdown, a dropped handle).
    Cancelled,
    /// The runtime has shut down and takes no more work.
    Shutdown,
    /// The job panicked; the message carries the panic message.
    Panic,
    /// An LLM provider refused or failed a request, or could not be reached;
    /// [`Error::provider_details`] has what it said. Retryable when the provider says so
    /// (rate limits, overload, server errors).
    Provider,
    /// A tool call failed in a way the model can fix (bad arguments, a path outside the
    /// workspace, a file not found); the agent hands the message back to the model.
    Tool,
    /// An I/O operation failed.
    Io,
    /// The job failed for a reason of its own.
    Other,
    /// A bug in subtask: please report it.
    Internal,
}

impl ErrorKind {
    /// A short lowercase name, stable across releases (used in logs, C and Python).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidInput => "invalid input",
            ErrorKind::Config => "configuration",
            ErrorKind::QueueFull => "queue full",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::Shutdown => "shutdown",
            ErrorKind::Panic => "panic",
            ErrorKind::Provider => "provider",
            ErrorKind::Tool => "tool",
            ErrorKind::Io => "i/o",
            ErrorKind::Other => "failed",
            ErrorKind::Internal => "internal",
        }
    }
}

impl ErrorKind {
    /// The stable number of this kind in the C ABI (`SUBTASK_ERROR_*`) and the Python
    /// exceptions. Never reused; 0 means success and is no kind.
    pub fn code(self) -> i32 {
        match self {
            ErrorKind::InvalidInput => 1,
            ErrorKind::Config => 2,
            ErrorKind::QueueFull => 3,
            ErrorKind::Timeout => 4,
            ErrorKind::Cancelled => 5,
            ErrorKind::Shutdown => 6,
            ErrorKind::Panic => 7,
            ErrorKind::Provider => 8,
            ErrorKind::Tool => 9,
            ErrorKind::Io => 10,
            ErrorKind::Other => 11,
            ErrorKind::Internal => 12,
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error from subtask: a [`kind`](Error::kind) to match on and a message that says what
/// was wrong and what to do next.
///
/// Cheap to clone (the source, if any, is shared), so one error can go to the caller and to
/// the observers of a task.
#[derive(Clone)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    timeout: Option<TimeoutKind>,
    retryable: bool,
    provider: Option<Arc<ProviderDetails>>,
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

/// What an LLM provider said about a failed request: everything needed to act on it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProviderDetails {
    /// `openai`, `openai-compat` or `anthropic`.
    pub provider: String,
    /// The HTTP status; `None` when no response came (connection failure, stall) and
    /// `Some(200)` for an error sent inside a successful stream.
    pub status: Option<u16>,
    /// The provider's error type (`rate_limit_error`, `insufficient_quota`…), if given.
    pub error_type: Option<String>,
    /// The provider's error code, if given apart from the type.
    pub code: Option<String>,
    /// The provider's own message.
    pub message: String,
    /// The request id the provider assigned (`request-id`, `x-request-id`), for support.
    pub request_id: Option<String>,
    /// How many requests were made in all (1 + retries).
    pub attempts: u32,
}

/// Shorthand for `std::result::Result<T, subtask::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error of `kind` with a message. Retryable if the kind usually is (only `QueueFull`).
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            kind,
            message: message.into(),
            timeout: None,
            retryable: kind == ErrorKind::QueueFull,
            provider: None,
            source: None,
        }
    }

    /// A failure of a job's own (kind [`ErrorKind::Other`]).
    pub fn other(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Other, message)
    }

    /// Invalid input from the caller (kind [`ErrorKind::InvalidInput`]).
    pub fn invalid_input(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::InvalidInput, message)
    }

    /// A tool failure the model can act on (kind [`ErrorKind::Tool`]).
    pub fn tool(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Tool, message)
    }

    /// A configuration error (kind [`ErrorKind::Config`]).
    pub fn config(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Config, message)
    }

    /// A timeout of the given limit (kind [`ErrorKind::Timeout`]).
    pub fn timeout(limit: TimeoutKind, message: impl Into<String>) -> Error {
        let mut error = Error::new(ErrorKind::Timeout, message);
        error.timeout = Some(limit);
        error
    }

    /// A provider error. The message reads like `anthropic: HTTP 529 overloaded_error:
    /// Overloaded (request req_1; 3 attempts)`.
    pub fn provider(details: ProviderDetails, retryable: bool) -> Error {
        let mut message = format!("{}: ", details.provider);
        if let Some(status) = details.status {
            message.push_str(&format!("HTTP {status} "));
        }
        if let Some(error_type) = &details.error_type {
            message.push_str(error_type);
            message.push_str(": ");
        }
        message.push_str(&details.message);
        let mut notes = Vec::new();
        if let Some(code) = &details.code
            && details.error_type.as_ref() != Some(code)
        {
            notes.push(format!("code {code}"));
        }
        if let Some(request_id) = &details.request_id {
            notes.push(format!("request {request_id}"));
        }
        if details.attempts > 1 {
            notes.push(format!("{} attempts", details.attempts));
        }
        if !notes.is_empty() {
            message.push_str(&format!(" ({})", notes.join("; ")));
        }
        let mut error = Error::new(ErrorKind::Provider, message).with_retryable(retryable);
        error.provider = Some(Arc::new(details));
        error
    }

    /// Puts `context` before the message: `cannot open x: permission denied`.
    pub fn with_context(mut self, context: impl Into<String>) -> Error {
        self.message = format!("{}: {}", context.into(), self.message);
        self
    }

    /// Attaches the underlying cause, returned by [`std::error::Error::source`].
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Error {
        self.source = Some(Arc::new(source));
        self
    }

    /// Overrides whether retrying the same request may succeed.
    pub fn with_retryable(mut self, retryable: bool) -> Error {
        self.retryable = retryable;
        self
    }

    /// What kind of error this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message alone, without the kind.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// For [`ErrorKind::Timeout`]: which limit fired.
    pub fn timeout_kind(&self) -> Option<TimeoutKind> {
        self.timeout
    }

    /// Whether the same request may succeed if made again later (a full queue, a rate limit).
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }

    /// For [`ErrorKind::Provider`]: what the provider said.
    pub fn provider_details(&self) -> Option<&ProviderDetails> {
        self.provider.as_deref()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("Error");
        s.field("kind", &self.kind).field("message", &self.message);
        if let Some(limit) = self.timeout {
            s.field("timeout", &limit);
        }
        if let Some(provider) = &self.provider {
            s.field("provider", provider);
        }
        if let Some(source) = &self.source {
            s.field("source", source);
        }
        s.finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|source| source as &(dyn std::error::Error + 'static))
    }
}

impl From<std::io::Error> for Error {
    fn from(error: std::io::Error) -> Error {
        Error::new(ErrorKind::Io, error.to_string()).with_source(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_full_is_retryable_and_others_are_not() {
        assert!(Error::new(ErrorKind::QueueFull, "full").is_retryable());
        assert!(!Error::other("boom").is_retryable());
        assert!(Error::other("flaky").with_retryable(true).is_retryable());
    }

    #[test]
    fn io_errors_keep_their_source() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let error = Error::from(io);
        assert_eq!(error.kind(), ErrorKind::Io);
        assert_eq!(error.to_string(), "no such file");
        assert!(std::error::Error::source(&error).is_some());
    }

    #[test]
    fn provider_errors_say_everything_a_user_acts_on() {
        let error = Error::provider(
            ProviderDetails {
                provider: "anthropic".into(),
                status: Some(529),
                error_type: Some("overloaded_error".into()),
                code: None,
                message: "Overloaded".into(),
                request_id: Some("req_1".into()),
                attempts: 3,
            },
            true,
        );
        assert_eq!(error.kind(), ErrorKind::Provider);
        assert!(error.is_retryable());
        assert_eq!(
            error.to_string(),
            "anthropic: HTTP 529 overloaded_error: Overloaded (request req_1; 3 attempts)"
        );
        assert_eq!(error.provider_details().unwrap().status, Some(529));
    }

    #[test]
    fn timeout_errors_say_which_limit() {
        let error = Error::timeout(TimeoutKind::Queue, "waited too long");
        assert_eq!(error.kind(), ErrorKind::Timeout);
        assert_eq!(error.timeout_kind(), Some(TimeoutKind::Queue));
    }
}
