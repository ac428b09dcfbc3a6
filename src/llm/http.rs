//! The one HTTP layer under both providers: pooled ureq agents, retries with the providers'
//! policy, and requests that never outlive their task.
//!
//! Cancellation: each exchange runs on an agent checked out of a small pool, and the task's
//! token gets a cancel action that shuts that agent down, which interrupts a blocked read
//! at once (ureq's `Agent::shutdown`). An agent whose task was cancelled is not reused.
//! Deadlines: every request's global timeout is the time its task has left. Waiting: the
//! first byte of a response (headers and the start of the body) may take the first-byte
//! timeout, since reasoning models think and local servers load models before they send
//! anything; after that, a gap of the stall timeout between two reads fails the request.
//! One watchdog thread enforces both (see [`Watchdog`]): ureq's own per-read timeout
//! cannot tell the first read from the others.

use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use parking_lot::{Condvar, Mutex};
use ureq::http::HeaderMap;

use super::config::ApiKey;
use crate::error::{Error, ProviderDetails};
use crate::runtime::{CancelGuard, CancelToken};

/// Retries after the first attempt, by default (as the providers' SDKs).
pub const DEFAULT_MAX_RETRIES: u32 = 2;
/// How long a response may send no byte between two reads before the request fails, by
/// default.
pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the first byte of a response may take, by default: 600 s, as the official
/// OpenAI and Anthropic SDKs' request timeout. Always capped by the task's deadline.
pub const DEFAULT_FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(600);
/// How long connecting may take, by default.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest `Retry-After` honoured; a server asking for more gets the usual backoff.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// Idle agents kept for reuse (one per concurrent request is enough).
const MAX_IDLE_AGENTS: usize = 16;
/// The most of an error body read into a message.
const MAX_ERROR_BODY: u64 = 64 * 1024;
/// The most of a response body read at all.
pub(crate) const MAX_RESPONSE_BODY: u64 = 64 * 1024 * 1024;

/// Network settings of a provider. Every field documents its default.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpOptions {
    /// Retries after a retryable failure (408, 409, 429, 5xx, 529, connection failures).
    /// Defaults to `2`.
    pub max_retries: u32,
    /// A response that sends no byte for this long, once it has started, fails. Defaults
    /// to 60 s.
    pub stall_timeout: Duration,
    /// The wait for the first byte of a response (the model thinking, a local server
    /// loading the model), capped by the task's deadline. Defaults to 600 s.
    pub first_byte_timeout: Duration,
    /// The limit on connecting (DNS, TCP, TLS). Defaults to 10 s.
    pub connect_timeout: Duration,
}

impl Default for HttpOptions {
    fn default() -> HttpOptions {
        HttpOptions {
            max_retries: DEFAULT_MAX_RETRIES,
            stall_timeout: DEFAULT_STALL_TIMEOUT,
            first_byte_timeout: DEFAULT_FIRST_BYTE_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        }
    }
}

/// What a provider makes of an error response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Failure {
    pub(crate) error_type: Option<String>,
    pub(crate) code: Option<String>,
    pub(crate) message: String,
    /// Overrides the status-based decision (a quota 429 is not worth retrying).
    pub(crate) retryable: Option<bool>,
}

/// Reads a provider's error body.
pub(crate) type ErrorParser = fn(status: u16, body: &str) -> Failure;

/// Pooled agents and the retry policy, shared by every request of one provider.
pub(crate) struct HttpClient {
    provider: &'static str,
    options: HttpOptions,
    parse_error: ErrorParser,
    /// The API key, so a server that echoes it in an error cannot leak it into ours.
    secret: Option<ApiKey>,
    /// Agents not in use. An agent serves one exchange at a time, so shutting it down on
    /// cancel affects that exchange alone; its kept-alive connection is what gets reused.
    idle: Mutex<Vec<ureq::Agent>>,
}

/// A response with a 2xx status, its body not yet read. Dropping it returns its agent to
/// the pool unless the task was cancelled.
pub(crate) struct Exchange<'a> {
    client: &'a HttpClient,
    token: CancelToken,
    agent: Option<ureq::Agent>,
    cancel: Option<CancelGuard>,
    body: Option<ureq::Body>,
    request_id: Option<String>,
    attempts: u32,
    watch: Arc<Watch>,
}

impl HttpClient {
    pub(crate) fn new(
        provider: &'static str,
        options: HttpOptions,
        parse_error: ErrorParser,
        secret: Option<ApiKey>,
    ) -> HttpClient {
        HttpClient {
            provider,
            options,
            parse_error,
            secret: secret.filter(|key| !key.expose().is_empty()),
            idle: Mutex::new(Vec::new()),
        }
    }

    fn checkout(&self) -> ureq::Agent {
        if let Some(agent) = self.idle.lock().pop() {
            return agent;
        }
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(self.options.connect_timeout))
            // The system's certificate store: corporate proxies re-sign TLS with a root
            // that only the system trusts. Proxies come from HTTPS_PROXY / NO_PROXY (ureq
            // reads them by default).
            .tls_config(
                ureq::tls::TlsConfig::builder()
                    .root_certs(ureq::tls::RootCerts::PlatformVerifier)
                    .build(),
            )
            .user_agent(concat!("subtask/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent()
    }

    fn checkin(&self, agent: ureq::Agent) {
        let mut idle = self.idle.lock();
        if idle.len() < MAX_IDLE_AGENTS {
            idle.push(agent);
        }
    }

    /// [`post`](Self::post) with `body` encoded as JSON.
    ///
    /// # Errors
    ///
    /// As [`post`](Self::post).
    pub(crate) fn post_json(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        body: &serde_json::Value,
        token: &CancelToken,
    ) -> Result<Exchange<'_>, Error> {
        let body = serde_json::to_vec(body).map_err(|error| {
            Error::invalid_input(format!("the request could not be encoded: {error}"))
        })?;
        self.post(url, headers, &body, token)
    }

    /// POSTs a JSON body, retrying retryable failures, until a 2xx response arrives.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Provider`] with what the provider said (after the retries it allowed);
    /// [`ErrorKind::Cancelled`] or [`ErrorKind::Timeout`] when the task ends first.
    fn post(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        token: &CancelToken,
    ) -> Result<Exchange<'_>, Error> {
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            token.check()?;
            let agent = self.checkout();
            let shutdown = agent.clone();
            let cancel = token.on_cancel(move || shutdown.shutdown());
            let watch = Watchdog::get().watch(&agent, &self.options);
            let mut request = agent
                .post(url)
                .config()
                .timeout_global(token.remaining())
                .build()
                .header("content-type", "application/json");
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            log::debug!("{}: POST {url} (attempt {attempt})", self.provider);
            let failure = match request.send(body) {
                Ok(response) if response.status().is_success() => {
                    let request_id = request_id(response.headers());
                    return Ok(Exchange {
                        client: self,
                        token: token.clone(),
                        agent: Some(agent),
                        cancel: Some(cancel),
                        body: Some(response.into_body()),
                        request_id,
                        attempts: attempt,
                        watch,
                    });
                }
                Ok(response) => {
                    let status = response.status().as_u16();
                    let headers = response.headers().clone();
                    // The start of a long error page is kept; the rest is not read.
                    let mut raw = Vec::new();
                    let _ = response
                        .into_body()
                        .into_reader()
                        .take(MAX_ERROR_BODY)
                        .read_to_end(&mut raw);
                    let text = self.redact(&String::from_utf8_lossy(&raw));
                    drop(cancel);
                    watch.finish();
                    self.release(agent, token, &watch);
                    self.status_failure(status, &headers, &text, attempt)
                }
                Err(error) => {
                    drop(cancel);
                    watch.finish();
                    self.release(agent, token, &watch);
                    self.transport_failure(error, token, attempt, &watch)?
                }
            };
            let Some(wait) = self.retry_wait(&failure, attempt, token) else {
                return Err(failure.error);
            };
            log::info!(
                "{}: {}; retrying in {:.1} s",
                self.provider,
                failure.error,
                wait.as_secs_f64()
            );
            token.sleep(wait)?;
        }
    }

    /// The text with the API key replaced by `***`: applied to every body before it is
    /// parsed or cut, and to every message on its way out.
    pub(crate) fn redact(&self, text: &str) -> String {
        match &self.secret {
            Some(key) => text.replace(key.expose(), "***"),
            None => text.to_string(),
        }
    }

    /// Every error message passes here on its way out.
    fn details(
        &self,
        status: Option<u16>,
        error_type: Option<String>,
        code: Option<String>,
        message: String,
        request_id: Option<String>,
        attempts: u32,
    ) -> ProviderDetails {
        let message = self.redact(&message);
        ProviderDetails {
            provider: self.provider.to_string(),
            status,
            error_type,
            code,
            message,
            request_id,
            attempts,
        }
    }

    fn release(&self, agent: ureq::Agent, token: &CancelToken, watch: &Watch) {
        // A tripped token or the watchdog may have shut this agent down: never hand it to
        // another task.
        if !token.is_cancelled() && watch.fired().is_none() {
            self.checkin(agent);
        }
    }

    fn status_failure(
        &self,
        status: u16,
        headers: &HeaderMap,
        body: &str,
        attempt: u32,
    ) -> Attempt {
        let parsed = (self.parse_error)(status, body);
        let by_status = matches!(status, 408 | 409 | 429) || status >= 500;
        let mut retryable = parsed.retryable.unwrap_or(by_status);
        if let Some(should) = header(headers, "x-should-retry") {
            retryable = should.eq_ignore_ascii_case("true");
        }
        let retry_after = retry_after(headers);
        let mut message = parsed.message;
        if let RetryAfter::TooLong(wait) = retry_after {
            // More than we wait for: retried with the usual backoff instead (as the SDKs).
            message.push_str(&format!(
                " (the provider asks to wait {} s before retrying)",
                wait.as_secs()
            ));
        }
        let error = Error::provider(
            self.details(
                Some(status),
                parsed.error_type,
                parsed.code,
                message,
                request_id(headers),
                attempt,
            ),
            retryable,
        );
        Attempt {
            error,
            retry_after,
            final_here: false,
        }
    }

    /// A request that got no response. Cancellation and the task's deadline end the call
    /// with the token's own error; connection failures are retried; a stall is retryable
    /// but not retried here, having already waited the stall timeout.
    fn transport_failure(
        &self,
        error: ureq::Error,
        token: &CancelToken,
        attempt: u32,
        watch: &Watch,
    ) -> Result<Attempt, Error> {
        token.check()?;
        if let Some(fired) = watch.fired() {
            let error = Error::provider(
                self.details(
                    None,
                    Some(WAIT_TIMEOUT_TYPE.to_string()),
                    None,
                    self.wait_message(fired),
                    None,
                    attempt,
                ),
                true,
            )
            .with_source(error);
            return Ok(Attempt {
                error,
                retry_after: RetryAfter::None,
                final_here: true,
            });
        }
        let (message, final_here) = match &error {
            ureq::Error::Timeout(ureq::Timeout::Global) => {
                // The global timeout is the task's remaining time, so this is its deadline.
                return Err(token.check().err().unwrap_or_else(|| {
                    Error::timeout(
                        crate::TimeoutKind::Execution,
                        "the model request ran out of the task's time",
                    )
                }));
            }
            ureq::Error::Timeout(timeout) => (format!("timed out ({timeout})"), false),
            other => (format!("could not reach the server: {other}"), false),
        };
        let error = Error::provider(self.details(None, None, None, message, None, attempt), true)
            .with_source(error);
        Ok(Attempt {
            error,
            retry_after: RetryAfter::None,
            final_here,
        })
    }

    fn wait_message(&self, fired: Fired) -> String {
        match fired {
            Fired::FirstByte => format!(
                "no response: nothing came for {} s (first-byte timeout); a reasoning model \
                 or a local server loading its model may need longer: raise \
                 SUBTASK_FIRST_BYTE_TIMEOUT",
                self.options.first_byte_timeout.as_secs_f64()
            ),
            Fired::Stall => format!(
                "the response stalled: no byte for {} s (stall timeout); the server may be \
                 overloaded, or raise SUBTASK_STALL_TIMEOUT for slow local models",
                self.options.stall_timeout.as_secs_f64()
            ),
        }
    }

    /// After a body that failed before anything of it was handed on (an error event in a
    /// 200 stream, a cut stream): whether to send the request again, having waited the
    /// backoff. Counts against the same retry budget as status errors. A timeout of the
    /// watchdog is not retried: it already waited its limit.
    ///
    /// # Errors
    ///
    /// The token's error when the task ends during the wait.
    pub(crate) fn retry_body(
        &self,
        error: &Error,
        retries: &mut u32,
        token: &CancelToken,
    ) -> Result<bool, Error> {
        let waited = error
            .provider_details()
            .and_then(|details| details.error_type.as_deref())
            == Some(WAIT_TIMEOUT_TYPE);
        if waited
            || !error.is_retryable()
            || *retries >= self.options.max_retries
            || token.is_cancelled()
        {
            return Ok(false);
        }
        let wait = backoff(*retries);
        *retries += 1;
        if token.remaining().is_some_and(|left| left <= wait) {
            return Ok(false);
        }
        log::info!(
            "{}: {error}; sending the request again in {:.1} s",
            self.provider,
            wait.as_secs_f64()
        );
        token.sleep(wait)?;
        Ok(true)
    }

    /// How long to wait before the next attempt, or `None` to give up now.
    fn retry_wait(&self, failure: &Attempt, attempt: u32, token: &CancelToken) -> Option<Duration> {
        if failure.final_here || !failure.error.is_retryable() || attempt > self.options.max_retries
        {
            return None;
        }
        let wait = match failure.retry_after {
            RetryAfter::Wait(wait) => wait,
            RetryAfter::None | RetryAfter::TooLong(_) => backoff(attempt - 1),
        };
        match token.remaining() {
            Some(left) if left <= wait => {
                log::info!(
                    "{}: not retrying {}: the task has {:.1} s left, less than the {:.1} s wait",
                    self.provider,
                    failure.error,
                    left.as_secs_f64(),
                    wait.as_secs_f64()
                );
                None
            }
            _ => Some(wait),
        }
    }

    /// The error for a stream that failed after its headers came.
    pub(crate) fn body_error(&self, error: std::io::Error, exchange: &Exchange<'_>) -> Error {
        if let Err(ended) = exchange.token.check() {
            return ended;
        }
        match exchange.watch.fired() {
            Some(fired) => exchange.error(
                Some(WAIT_TIMEOUT_TYPE.to_string()),
                None,
                self.wait_message(fired),
                true,
            ),
            None => exchange.error(None, None, format!("the response broke off: {error}"), true),
        }
    }
}

struct Attempt {
    error: Error,
    retry_after: RetryAfter,
    /// Not retried here even if retryable later (a stall already waited its timeout).
    final_here: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RetryAfter {
    None,
    Wait(Duration),
    TooLong(Duration),
}

/// `retry-after-ms` (milliseconds), then `retry-after` (seconds or an HTTP date).
fn retry_after(headers: &HeaderMap) -> RetryAfter {
    let millis = header(headers, "retry-after-ms")
        .and_then(|value| value.trim().parse::<f64>().ok())
        .map(|ms| ms / 1000.0);
    let seconds = || {
        let value = header(headers, "retry-after")?;
        let value = value.trim();
        if let Ok(seconds) = value.parse::<f64>() {
            return Some(seconds);
        }
        let at = httpdate::parse_http_date(value).ok()?;
        Some(
            at.duration_since(SystemTime::now())
                .map_or(0.0, |wait| wait.as_secs_f64()),
        )
    };
    match millis.or_else(seconds) {
        Some(seconds) if seconds.is_finite() && seconds > 0.0 => {
            let wait = Duration::from_secs_f64(seconds);
            if wait <= MAX_RETRY_AFTER {
                RetryAfter::Wait(wait)
            } else {
                RetryAfter::TooLong(wait)
            }
        }
        _ => RetryAfter::None,
    }
}

/// `min(0.5 s · 2ⁿ, 8 s)`, less up to a quarter at random so clients spread out.
fn backoff(retry: u32) -> Duration {
    let base = (0.5 * 2f64.powi(retry.min(10) as i32)).min(8.0);
    // (Also the wait after a `Retry-After` longer than MAX_RETRY_AFTER.)
    Duration::from_secs_f64(base * (1.0 - 0.25 * random_fraction()))
}

/// A number in `[0, 1)` from the standard library's randomly keyed hasher: enough for
/// jitter, no dependency.
fn random_fraction() -> f64 {
    use std::hash::BuildHasher;
    let bits = std::collections::hash_map::RandomState::new().hash_one(std::time::Instant::now());
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

/// At most 300 characters of a body, for messages.
pub(crate) fn preview(text: &str) -> String {
    let text = text.trim();
    match text.char_indices().nth(300) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

fn request_id(headers: &HeaderMap) -> Option<String> {
    header(headers, "request-id")
        .or_else(|| header(headers, "x-request-id"))
        .map(str::to_string)
}

impl Exchange<'_> {
    /// The body as a reader (for streams), at most [`MAX_RESPONSE_BODY`] bytes; every
    /// byte read tells the watchdog the response is alive.
    pub(crate) fn reader(&mut self) -> impl Read + 'static {
        let body = self.body.take().expect("the body is read once");
        Watched {
            inner: body.into_with_config().limit(MAX_RESPONSE_BODY).reader(),
            watch: Arc::clone(&self.watch),
        }
    }

    /// The whole body as text.
    pub(crate) fn text(&mut self) -> Result<String, Error> {
        let mut text = String::new();
        let result = self.reader().read_to_string(&mut text);
        match result {
            Ok(_) => Ok(text),
            Err(error) => Err(self.client.body_error(error, self)),
        }
    }

    /// An error about this exchange's response (a malformed body, an error event in a
    /// 2xx stream), with its request id and attempt count.
    pub(crate) fn error(
        &self,
        error_type: Option<String>,
        code: Option<String>,
        message: String,
        retryable: bool,
    ) -> Error {
        let details = self.client.details(
            Some(200),
            error_type,
            code,
            message,
            self.request_id.clone(),
            self.attempts,
        );
        Error::provider(details, retryable)
    }

    pub(crate) fn client(&self) -> &HttpClient {
        self.client
    }

    /// A short, redacted quote of a body for an error message.
    pub(crate) fn preview(&self, text: &str) -> String {
        preview(&self.client.redact(text))
    }
}

impl Drop for Exchange<'_> {
    fn drop(&mut self) {
        drop(self.body.take());
        drop(self.cancel.take());
        self.watch.finish();
        if let Some(agent) = self.agent.take() {
            self.client.release(agent, &self.token, &self.watch);
        }
    }
}

/// The `error_type` of a first-byte or stall timeout (not retried: it already waited).
const WAIT_TIMEOUT_TYPE: &str = "wait_timeout";

/// Which wait ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fired {
    FirstByte,
    Stall,
}

/// One exchange under watch.
struct Watch {
    /// Shut down when a wait runs out, which interrupts the blocked read at once.
    agent: ureq::Agent,
    first_byte_timeout: Duration,
    stall_timeout: Duration,
    /// When the last byte came (or the request started): nanoseconds since the watchdog's
    /// epoch. Written by the reading thread, read by the watchdog.
    last: AtomicU64,
    /// Set by the reading thread at the first byte of the body; from then on the stall
    /// timeout applies.
    started: AtomicBool,
    /// 0, or which wait ran out (1 first byte, 2 stall). Written once, by the watchdog.
    fired: AtomicU8,
    /// Set when the exchange ends; the watchdog then forgets it.
    finished: AtomicBool,
}

impl Watch {
    fn fired(&self) -> Option<Fired> {
        match self.fired.load(Ordering::Acquire) {
            1 => Some(Fired::FirstByte),
            2 => Some(Fired::Stall),
            _ => None,
        }
    }

    fn finish(&self) {
        self.finished.store(true, Ordering::Release);
    }

    /// Records a byte. The first one switches the wait to the (usually shorter) stall
    /// timeout, so the watchdog, asleep until the first-byte deadline, is woken to look
    /// again; later bytes only move the deadline later and need no wake-up.
    fn touch(&self, watchdog: &Watchdog) {
        self.last.store(
            watchdog.epoch.elapsed().as_nanos() as u64,
            Ordering::Release,
        );
        if !self.started.swap(true, Ordering::AcqRel) {
            watchdog.changed.notify_one();
        }
    }

    /// When this exchange's current wait runs out, as nanoseconds since the epoch.
    fn deadline(&self) -> u64 {
        let limit = if self.started.load(Ordering::Acquire) {
            self.stall_timeout
        } else {
            self.first_byte_timeout
        };
        self.last
            .load(Ordering::Acquire)
            .saturating_add(limit.as_nanos() as u64)
    }
}

/// The process's one watchdog thread (`subtask-llm-watchdog`), started on first use and
/// alive until the process exits. It runs no user code and holds a lock only to scan its
/// list: agents to shut down are collected first and shut down after the lock is released.
struct Watchdog {
    epoch: Instant,
    /// The exchanges in flight. Invariant: an entry leaves the list when it finished or
    /// fired, at the watchdog's next scan (every registration wakes it).
    watches: Mutex<Vec<Arc<Watch>>>,
    changed: Condvar,
}

impl Watchdog {
    fn get() -> &'static Watchdog {
        static WATCHDOG: OnceLock<&'static Watchdog> = OnceLock::new();
        WATCHDOG.get_or_init(|| {
            let watchdog: &'static Watchdog = Box::leak(Box::new(Watchdog {
                epoch: Instant::now(),
                watches: Mutex::new(Vec::new()),
                changed: Condvar::new(),
            }));
            let spawned = std::thread::Builder::new()
                .name("subtask-llm-watchdog".into())
                .spawn(move || watchdog.run());
            if let Err(error) = spawned {
                // Without the thread the task's deadline still bounds every request.
                log::error!("could not start the LLM watchdog thread: {error}");
            }
            watchdog
        })
    }

    fn watch(&self, agent: &ureq::Agent, options: &HttpOptions) -> Arc<Watch> {
        let watch = Arc::new(Watch {
            agent: agent.clone(),
            first_byte_timeout: options.first_byte_timeout,
            stall_timeout: options.stall_timeout,
            last: AtomicU64::new(self.epoch.elapsed().as_nanos() as u64),
            started: AtomicBool::new(false),
            fired: AtomicU8::new(0),
            finished: AtomicBool::new(false),
        });
        self.watches.lock().push(Arc::clone(&watch));
        self.changed.notify_one();
        watch
    }

    fn run(&self) {
        loop {
            let mut expired = Vec::new();
            let mut watches = self.watches.lock();
            let now = self.epoch.elapsed().as_nanos() as u64;
            let mut next: Option<u64> = None;
            watches.retain(|watch| {
                if watch.finished.load(Ordering::Acquire) {
                    return false;
                }
                let deadline = watch.deadline();
                if deadline <= now {
                    let fired = if watch.started.load(Ordering::Acquire) {
                        2
                    } else {
                        1
                    };
                    watch.fired.store(fired, Ordering::Release);
                    expired.push(Arc::clone(watch));
                    return false;
                }
                next = Some(next.map_or(deadline, |next| next.min(deadline)));
                true
            });
            if expired.is_empty() {
                match next {
                    Some(next) => {
                        let wait = Duration::from_nanos(next - now);
                        self.changed.wait_for(&mut watches, wait);
                    }
                    None => self.changed.wait(&mut watches),
                }
                continue;
            }
            drop(watches);
            for watch in expired {
                watch.agent.clone().shutdown();
            }
        }
    }
}

/// A body reader that reports every byte to the watchdog.
struct Watched<R> {
    inner: R,
    watch: Arc<Watch>,
}

impl<R: Read> Read for Watched<R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buffer)?;
        if read > 0 {
            self.watch.touch(Watchdog::get());
        }
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ureq::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn retry_after_reads_milliseconds_seconds_and_dates() {
        assert_eq!(
            retry_after(&headers(&[("retry-after-ms", "250")])),
            RetryAfter::Wait(Duration::from_millis(250))
        );
        assert_eq!(
            retry_after(&headers(&[("retry-after", "1.5")])),
            RetryAfter::Wait(Duration::from_millis(1500))
        );
        let soon = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(30));
        match retry_after(&headers(&[("retry-after", &soon)])) {
            RetryAfter::Wait(wait) => assert!(wait > Duration::from_secs(25), "{wait:?}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            retry_after(&headers(&[("retry-after", "600")])),
            RetryAfter::TooLong(Duration::from_secs(600))
        );
        assert_eq!(
            retry_after(&headers(&[("retry-after", "soon")])),
            RetryAfter::None
        );
        assert_eq!(retry_after(&headers(&[])), RetryAfter::None);
    }

    #[test]
    fn backoff_doubles_up_to_eight_seconds_with_jitter() {
        for (retry, base) in [(0, 0.5), (1, 1.0), (2, 2.0), (4, 8.0), (9, 8.0)] {
            let wait = backoff(retry).as_secs_f64();
            assert!(wait <= base && wait >= base * 0.75, "retry {retry}: {wait}");
        }
    }
}
