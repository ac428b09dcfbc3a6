//! A scripted local HTTP/1.1 server that speaks the OpenAI Chat Completions and Anthropic
//! Messages wire formats, for the LLM client's tests.
//!
//! A test queues [`Reply`]s with [`LlmServer::push`]; every request, on any connection, takes
//! the next one (FIFO) and is recorded for [`LlmServer::requests`]. A request that finds the
//! queue empty gets a 500 that says so, so a test fails with a message instead of hanging.
//!
//! Connections are persistent: non-streaming replies carry `Content-Length`, streams are sent
//! with `Transfer-Encoding: chunked` (one chunk per SSE event, flushed at once) and end with
//! the zero chunk, so a client can reuse the connection. The misbehaviours ([`Reply::Reset`],
//! [`Reply::Hang`], [`Step::Stall`], [`Step::Close`], [`Step::Pause`]) are scripted per reply.
//!
//! Dropping the server never hangs: it shuts every accepted socket down (which wakes the
//! threads blocked reading them), wakes the acceptor by connecting to it, cuts every
//! [`Step::Pause`] short, and joins all of its threads. Tests never sleep; only this server
//! does, inside a [`Step::Pause`], to simulate generation time.
//!
//! The builders below the server produce realistic bodies from `PROTOCOLS.md` §1 and §2:
//! `openai_*` (with one `openai_quirk_*` / `openai_stream_quirk_*` per row of the table of
//! compatible servers' quirks), `vllm_*`, `openrouter_*`, `anthropic_*`, and generic
//! transformers ([`with_header`], [`truncated`], [`stalled_after`], [`paced`], [`delayed`]).
//! JSON objects built with `json!` serialise with their keys sorted; only
//! [`anthropic_captured_tool_use_stream`] keeps a provider's exact bytes.

#![allow(dead_code)] // each test binary uses its own subset

use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError, bounded};
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// Scripted replies
// ---------------------------------------------------------------------------------------------

/// Decides a reply from the request (see [`Reply::Handler`]).
pub type Handler = std::sync::Arc<dyn Fn(&Recorded) -> Reply + Send + Sync>;

/// What the server does with one request.
#[derive(Clone)]
pub enum Reply {
    /// A complete response framed by `Content-Length`. `Content-Type: application/json` is
    /// added unless `headers` names a content type.
    Json {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    },
    /// A `text/event-stream` response framed by `Transfer-Encoding: chunked`, written step by
    /// step; after the last step the zero chunk ends it and the connection stays usable.
    Stream {
        status: u16,
        headers: Vec<(String, String)>,
        steps: Vec<Step>,
    },
    /// Reads the request, then closes the connection without a byte of response. The client
    /// sees end-of-file where the status line should be (a FIN, not an RST: std cannot set
    /// `SO_LINGER` to zero); ureq 3 reports `Error::Io` of kind `UnexpectedEof` ("Peer
    /// disconnected"), and a client that writes again on that socket gets a broken pipe or
    /// a connection reset.
    Reset,
    /// Reads the request and never answers, until the client closes or the server is dropped.
    Hang,
    /// Waits `delay` (cut short when the server is dropped), then serves `reply`.
    Delayed { delay: Duration, reply: Box<Reply> },
    /// Computes the reply from the request, as a real API does: validates it (see
    /// `llm_rules`), accounts for caching, answers. Served again and again: a handler
    /// queued once answers every later request.
    Handler(Handler),
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reply::Json { status, body, .. } => write!(f, "Json({status}, {body})"),
            Reply::Stream { status, steps, .. } => write!(f, "Stream({status}, {steps:?})"),
            Reply::Reset => f.write_str("Reset"),
            Reply::Hang => f.write_str("Hang"),
            Reply::Delayed { delay, reply } => write!(f, "Delayed({delay:?}, {reply:?})"),
            Reply::Handler(_) => f.write_str("Handler"),
        }
    }
}

/// One step of a [`Reply::Stream`].
#[derive(Clone, Debug)]
pub enum Step {
    /// One SSE event in one chunk: `event: X\n` when named, then a `data: ` line per line of
    /// `data`, then the blank line.
    Event { event: Option<String>, data: String },
    /// Exact bytes in one chunk (comment lines, `data:` without a space, odd framing).
    /// An empty string writes nothing, since an empty chunk would end the body.
    Raw(String),
    /// Sleeps on the server side (simulated generation time); dropping the server cuts it short.
    Pause(Duration),
    /// Sends nothing more but keeps the connection open until the client closes it or the
    /// server is dropped. The body never ends.
    Stall,
    /// Closes the connection here, without the terminating zero chunk (a truncated body).
    Close,
}

impl Step {
    /// An unnamed event (`data: …` only), as OpenAI streams send.
    pub fn data(data: impl Into<String>) -> Step {
        Step::Event {
            event: None,
            data: data.into(),
        }
    }

    /// A named event (`event: name` + `data: …`), as Anthropic streams send.
    pub fn named(event: &str, data: impl Into<String>) -> Step {
        Step::Event {
            event: Some(event.to_string()),
            data: data.into(),
        }
    }

    /// Whether this step puts bytes on the wire (counts as an event for [`stalled_after`]).
    fn is_event(&self) -> bool {
        matches!(self, Step::Event { .. } | Step::Raw(_))
    }
}

/// One request as the server received it.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    /// The request target as sent, query string included.
    pub path: String,
    /// In arrival order, names lowercased.
    pub headers: Vec<(String, String)>,
    /// The body, decoded from chunked framing if need be (lossy UTF-8).
    pub body: String,
    /// When the whole request had been read.
    pub at: Instant,
}

impl Recorded {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The body parsed as JSON.
    ///
    /// # Panics
    /// If the body is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|error| {
            panic!(
                "the body of {} {} is not JSON ({error}): {:?}",
                self.method, self.path, self.body
            )
        })
    }
}

// ---------------------------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------------------------

/// A scripted LLM API server on `127.0.0.1`, stopped when dropped.
pub struct LlmServer {
    address: SocketAddr,
    shared: Arc<Shared>,
    /// Dropping it tells every server thread to stop: their receivers see a disconnect.
    stop: Option<Sender<()>>,
    acceptor: Option<JoinHandle<()>>,
}

struct Shared {
    state: Mutex<State>,
    /// Notified whenever a request is recorded or a connection opens or closes.
    changed: Condvar,
    /// Disconnected once the server is dropped; nothing is ever sent on it.
    stopped: Receiver<()>,
    /// A clone of every accepted socket with the thread serving it. Only the acceptor pushes
    /// here; Drop shuts the sockets down (waking blocked reads) and joins the threads.
    connections: Mutex<Vec<(TcpStream, JoinHandle<()>)>>,
}

struct State {
    replies: VecDeque<Reply>,
    recorded: Vec<Recorded>,
    accepted: usize,
    open: usize,
}

impl LlmServer {
    /// Binds `127.0.0.1:0` and starts accepting connections.
    ///
    /// # Panics
    /// If the socket cannot be bound or the acceptor thread cannot be spawned.
    pub fn start() -> LlmServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the llm test server");
        let address = listener
            .local_addr()
            .expect("the llm test server's address");
        let (stop, stopped) = bounded::<()>(0);
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                replies: VecDeque::new(),
                recorded: Vec::new(),
                accepted: 0,
                open: 0,
            }),
            changed: Condvar::new(),
            stopped,
            connections: Mutex::new(Vec::new()),
        });
        let acceptor = std::thread::Builder::new()
            .name("llm-server-accept".into())
            .spawn({
                let shared = Arc::clone(&shared);
                move || accept_connections(listener, &shared)
            })
            .expect("spawn the llm test server's acceptor");
        LlmServer {
            address,
            shared,
            stop: Some(stop),
            acceptor: Some(acceptor),
        }
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The address the server listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Queues `reply` for a future request.
    pub fn push(&self, reply: Reply) {
        self.shared.state().replies.push_back(reply);
    }

    /// Queues `replies` in order.
    pub fn push_all(&self, replies: impl IntoIterator<Item = Reply>) {
        self.shared.state().replies.extend(replies);
    }

    /// How many queued replies no request has taken yet.
    pub fn pending_replies(&self) -> usize {
        self.shared.state().replies.len()
    }

    /// Every request received so far, in order of arrival.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.state().recorded.clone()
    }

    /// Blocks until `count` requests were received or `limit` passes, then returns every
    /// request received so far (fewer than `count` means the limit passed).
    pub fn wait_requests(&self, count: usize, limit: Duration) -> Vec<Recorded> {
        let state = self
            .shared
            .wait_while(limit, |state| state.recorded.len() < count);
        state.recorded.clone()
    }

    /// How many TCP connections were accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.state().accepted
    }

    /// How many accepted connections are still open (neither side has closed them).
    pub fn open_connections(&self) -> usize {
        self.shared.state().open
    }

    /// Blocks until exactly `count` connections are open or `limit` passes; returns whether
    /// the count was reached.
    pub fn wait_open_connections(&self, count: usize, limit: Duration) -> bool {
        self.shared
            .wait_while(limit, |state| state.open != count)
            .open
            == count
    }
}

impl Drop for LlmServer {
    fn drop(&mut self) {
        drop(self.stop.take());
        // The acceptor is blocked in accept(): a connection wakes it, and it sees the stop.
        let woken = TcpStream::connect_timeout(&self.address, Duration::from_secs(1)).is_ok();
        let mut panicked = false;
        if let Some(acceptor) = self.acceptor.take() {
            // If the wake-up failed, leave the acceptor detached rather than risk a hang.
            if woken || acceptor.is_finished() {
                panicked |= acceptor.join().is_err();
            }
        }
        // The acceptor has stopped, so no connection is registered after this take.
        let connections = std::mem::take(&mut *lock(&self.shared.connections));
        for (socket, _) in &connections {
            let _ = socket.shutdown(Shutdown::Both);
        }
        for (_, thread) in connections {
            panicked |= thread.join().is_err();
        }
        if panicked && !std::thread::panicking() {
            panic!("an llm test server thread panicked (its message is above)");
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking test thread must not turn every later call into a second panic.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    fn wait_while(
        &self,
        limit: Duration,
        condition: impl FnMut(&mut State) -> bool,
    ) -> MutexGuard<'_, State> {
        let (state, _) = self
            .changed
            .wait_timeout_while(self.state(), limit, condition)
            .unwrap_or_else(PoisonError::into_inner);
        state
    }

    fn is_stopping(&self) -> bool {
        matches!(self.stopped.try_recv(), Err(TryRecvError::Disconnected))
    }

    /// Sleeps `duration`; returns `true` early if the server is being dropped.
    fn pause(&self, duration: Duration) -> bool {
        match self.stopped.recv_timeout(duration) {
            Err(RecvTimeoutError::Disconnected) => true,
            Err(RecvTimeoutError::Timeout) | Ok(()) => false,
        }
    }

    /// Records `request` and takes the reply queued for it, in one step so that the n-th
    /// request recorded is the one that got the n-th reply.
    fn take_reply(&self, request: Recorded) -> Option<Reply> {
        let reply = {
            let mut state = self.state();
            state.recorded.push(request.clone());
            match state.replies.front() {
                // A handler stays queued; it is called outside the lock.
                Some(Reply::Handler(handler)) => Some(Reply::Handler(handler.clone())),
                _ => state.replies.pop_front(),
            }
        };
        self.changed.notify_all();
        match reply {
            Some(Reply::Handler(handler)) => Some(handler(&request)),
            other => other,
        }
    }
}

fn accept_connections(listener: TcpListener, shared: &Arc<Shared>) {
    for incoming in listener.incoming() {
        if shared.is_stopping() {
            return;
        }
        // Transient accept errors (a client that gave up) are not the server's business.
        let Ok(stream) = incoming else { continue };
        let Ok(registered) = stream.try_clone() else {
            continue;
        };
        // Small writes (one SSE event each) must leave at once, not wait for an ACK.
        let _ = stream.set_nodelay(true);
        {
            let mut state = shared.state();
            state.accepted += 1;
            state.open += 1;
        }
        shared.changed.notify_all();
        let serving = std::thread::Builder::new()
            .name("llm-server-conn".into())
            .spawn({
                let shared = Arc::clone(shared);
                move || serve_connection(stream, &shared)
            });
        match serving {
            Ok(thread) => {
                let mut connections = lock(&shared.connections);
                connections.retain(|(_, thread)| !thread.is_finished());
                connections.push((registered, thread));
            }
            Err(_) => {
                let _ = registered.shutdown(Shutdown::Both);
                shared.state().open -= 1;
                shared.changed.notify_all();
            }
        }
    }
}

/// Counts a connection as closed when its thread ends, panic or not.
struct OpenConnection<'a>(&'a Shared);

impl Drop for OpenConnection<'_> {
    fn drop(&mut self) {
        self.0.state().open -= 1;
        self.0.changed.notify_all();
    }
}

/// What to do with the connection after a reply.
enum After {
    KeepAlive,
    Close,
}

fn serve_connection(stream: TcpStream, shared: &Shared) {
    let _open = OpenConnection(shared);
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    loop {
        let request = match read_request(&mut reader, &mut writer) {
            Ok(Some(request)) => request,
            // The client closed the connection between requests.
            Ok(None) => {
                let _ = writer.shutdown(Shutdown::Both);
                return;
            }
            Err(error) => {
                if error.kind() == io::ErrorKind::InvalidData {
                    let body = error_body(&format!("llm test server: bad request: {error}"));
                    let _ = write_json(&mut writer, 400, &[], &body, true);
                }
                let _ = writer.shutdown(Shutdown::Both);
                return;
            }
        };
        let client_closes = request
            .header("connection")
            .is_some_and(|value| value.eq_ignore_ascii_case("close"));
        let label = format!("{} {}", request.method, request.path);
        let after = match shared.take_reply(request) {
            Some(reply) => serve_reply(reply, shared, &mut reader, &mut writer, client_closes),
            None => {
                let body = error_body(&format!("llm test server: no reply queued for {label}"));
                write_json(&mut writer, 500, &[], &body, client_closes).map(|()| After::KeepAlive)
            }
        };
        match after {
            Ok(After::KeepAlive) if !client_closes => continue,
            // A write error means the client went away; either way this connection is over.
            _ => {
                let _ = writer.shutdown(Shutdown::Both);
                return;
            }
        }
    }
}

fn error_body(message: &str) -> String {
    json!({"error": {"message": message, "type": "server_error", "param": null, "code": null}})
        .to_string()
}

// ---------------------------------------------------------------------------------------------
// Reading requests
// ---------------------------------------------------------------------------------------------

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// Reads one line (up to and including `\n`) as lossy UTF-8; an empty string means EOF.
fn read_line(reader: &mut impl BufRead) -> io::Result<String> {
    let mut bytes = Vec::new();
    reader.read_until(b'\n', &mut bytes)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Reads the next request; `None` if the client closed the connection before sending one.
fn read_request(
    reader: &mut BufReader<TcpStream>,
    writer: &mut TcpStream,
) -> io::Result<Option<Recorded>> {
    // RFC 9112 §2.2 lets a server ignore blank lines before a request line.
    let request_line = loop {
        let line = read_line(reader)?;
        if line.is_empty() {
            return Ok(None);
        }
        if !line.trim().is_empty() {
            break line;
        }
    };
    let mut parts = request_line.split_whitespace();
    let (Some(method), Some(path), Some(_version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid(format!("malformed request line {request_line:?}")));
    };
    let mut headers = Vec::new();
    loop {
        let line = read_line(reader)?;
        if line.is_empty() {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            break;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(invalid(format!("malformed header line {line:?}")));
        };
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    let header = |name: &str| {
        headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    };
    if header("expect").is_some_and(|value| value.eq_ignore_ascii_case("100-continue")) {
        writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
    }
    let chunked = header("transfer-encoding").is_some_and(|value| {
        value
            .rsplit(',')
            .next()
            .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"))
    });
    let body = if chunked {
        read_chunked_body(reader)?
    } else if let Some(length) = header("content-length") {
        let length: usize = length
            .parse()
            .map_err(|_| invalid(format!("bad content-length {length:?}")))?;
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        body
    } else {
        Vec::new()
    };
    Ok(Some(Recorded {
        method: method.to_string(),
        path: path.to_string(),
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        at: Instant::now(),
    }))
}

fn read_chunked_body(reader: &mut BufReader<TcpStream>) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line = read_line(reader)?;
        if line.is_empty() {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let size = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size, 16)
            .map_err(|_| invalid(format!("bad chunk size line {line:?}")))?;
        if size == 0 {
            // Trailers, up to the blank line.
            loop {
                let trailer = read_line(reader)?;
                if trailer.trim().is_empty() {
                    return Ok(body);
                }
            }
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
        let end = read_line(reader)?;
        if !end.trim().is_empty() {
            return Err(invalid(format!("chunk not followed by CRLF: {end:?}")));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Writing replies
// ---------------------------------------------------------------------------------------------

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Payload Too Large",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        529 => "Overloaded",
        _ => "Unknown",
    }
}

fn has_header(headers: &[(String, String)], name: &str) -> bool {
    headers
        .iter()
        .any(|(key, _)| key.eq_ignore_ascii_case(name))
}

/// The status line and headers, with `defaults` added unless `headers` sets them.
fn head(
    status: u16,
    defaults: &[(&str, String)],
    headers: &[(String, String)],
    close: bool,
) -> String {
    let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    for (name, value) in defaults {
        if !has_header(headers, name) {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if close && !has_header(headers, "connection") {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    head
}

fn write_json(
    writer: &mut TcpStream,
    status: u16,
    headers: &[(String, String)],
    body: &str,
    close: bool,
) -> io::Result<()> {
    let defaults = [
        ("Content-Type", "application/json".to_string()),
        ("Content-Length", body.len().to_string()),
    ];
    let mut response = head(status, &defaults, headers, close).into_bytes();
    response.extend_from_slice(body.as_bytes());
    writer.write_all(&response)?;
    writer.flush()
}

fn write_chunk(writer: &mut TcpStream, bytes: &[u8]) -> io::Result<()> {
    if bytes.is_empty() {
        return Ok(());
    }
    let mut chunk = format!("{:x}\r\n", bytes.len()).into_bytes();
    chunk.extend_from_slice(bytes);
    chunk.extend_from_slice(b"\r\n");
    writer.write_all(&chunk)?;
    writer.flush()
}

fn sse_event(event: Option<&str>, data: &str) -> String {
    let mut text = String::new();
    if let Some(event) = event {
        text.push_str(&format!("event: {event}\n"));
    }
    for line in data.split('\n') {
        text.push_str(&format!("data: {line}\n"));
    }
    text.push('\n');
    text
}

/// Reads and discards until the client closes (or the server's Drop shuts the socket down).
fn drain(reader: &mut BufReader<TcpStream>) {
    let mut buffer = [0; 1024];
    loop {
        match reader.read(&mut buffer) {
            Ok(0) => return,
            Ok(_) => {}
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

fn serve_reply(
    reply: Reply,
    shared: &Shared,
    reader: &mut BufReader<TcpStream>,
    writer: &mut TcpStream,
    close: bool,
) -> io::Result<After> {
    match reply {
        Reply::Json {
            status,
            headers,
            body,
        } => {
            let close = close || connection_close(&headers);
            write_json(writer, status, &headers, &body, close)?;
            Ok(if close {
                After::Close
            } else {
                After::KeepAlive
            })
        }
        Reply::Stream {
            status,
            headers,
            steps,
        } => {
            let close = close || connection_close(&headers);
            let defaults = [
                ("Content-Type", "text/event-stream".to_string()),
                ("Cache-Control", "no-cache".to_string()),
                ("Transfer-Encoding", "chunked".to_string()),
            ];
            writer.write_all(head(status, &defaults, &headers, close).as_bytes())?;
            writer.flush()?;
            for step in steps {
                match step {
                    Step::Event { event, data } => {
                        write_chunk(writer, sse_event(event.as_deref(), &data).as_bytes())?;
                    }
                    Step::Raw(bytes) => write_chunk(writer, bytes.as_bytes())?,
                    Step::Pause(duration) => {
                        if shared.pause(duration) {
                            return Ok(After::Close);
                        }
                    }
                    Step::Stall => {
                        drain(reader);
                        return Ok(After::Close);
                    }
                    Step::Close => return Ok(After::Close),
                }
            }
            writer.write_all(b"0\r\n\r\n")?;
            writer.flush()?;
            Ok(if close {
                After::Close
            } else {
                After::KeepAlive
            })
        }
        Reply::Reset => Ok(After::Close),
        Reply::Hang => {
            drain(reader);
            Ok(After::Close)
        }
        Reply::Delayed { delay, reply } => {
            if shared.pause(delay) {
                return Ok(After::Close);
            }
            serve_reply(*reply, shared, reader, writer, close)
        }
        // Resolved in take_reply; a handler that returns a handler gets a 500.
        Reply::Handler(_) => {
            let body = error_body("llm test server: a handler returned a handler");
            write_json(writer, 500, &[], &body, close).map(|()| After::Close)
        }
    }
}

fn connection_close(headers: &[(String, String)]) -> bool {
    headers.iter().any(|(name, value)| {
        name.eq_ignore_ascii_case("connection") && value.eq_ignore_ascii_case("close")
    })
}

// ---------------------------------------------------------------------------------------------
// Generic builders and transformers
// ---------------------------------------------------------------------------------------------

/// A `Content-Length` reply with `body` serialised.
pub fn json_reply(status: u16, body: &Value) -> Reply {
    Reply::Json {
        status,
        headers: Vec::new(),
        body: body.to_string(),
    }
}

/// A 200 `text/event-stream` reply made of `steps`.
pub fn sse_reply(steps: Vec<Step>) -> Reply {
    Reply::Stream {
        status: 200,
        headers: Vec::new(),
        steps,
    }
}

/// `reply` with response header `name` set to `value` (`retry-after`, `retry-after-ms`,
/// `x-should-retry`…), replacing any header of that name; setting `content-type` replaces the
/// default one.
///
/// # Panics
/// If `reply` sends no response ([`Reply::Reset`], [`Reply::Hang`]).
pub fn with_header(reply: Reply, name: &str, value: &str) -> Reply {
    let set = |headers: &mut Vec<(String, String)>| {
        headers.retain(|(key, _)| !key.eq_ignore_ascii_case(name));
        headers.push((name.to_string(), value.to_string()));
    };
    match reply {
        Reply::Json {
            status,
            mut headers,
            body,
        } => {
            set(&mut headers);
            Reply::Json {
                status,
                headers,
                body,
            }
        }
        Reply::Stream {
            status,
            mut headers,
            steps,
        } => {
            set(&mut headers);
            Reply::Stream {
                status,
                headers,
                steps,
            }
        }
        Reply::Delayed { delay, reply } => Reply::Delayed {
            delay,
            reply: Box::new(with_header(*reply, name, value)),
        },
        Reply::Reset | Reply::Hang | Reply::Handler(_) => {
            panic!("with_header: {reply:?} sends no headers of its own")
        }
    }
}

/// `reply` served after `delay` (cut short if the server is dropped first).
pub fn delayed(reply: Reply, delay: Duration) -> Reply {
    Reply::Delayed {
        delay,
        reply: Box::new(reply),
    }
}

fn map_steps(reply: Reply, what: &str, change: impl FnOnce(Vec<Step>) -> Vec<Step>) -> Reply {
    match reply {
        Reply::Stream {
            status,
            headers,
            steps,
        } => Reply::Stream {
            status,
            headers,
            steps: change(steps),
        },
        Reply::Delayed { delay, reply } => Reply::Delayed {
            delay,
            reply: Box::new(map_steps(*reply, what, change)),
        },
        other => panic!("{what}: {other:?} is not a stream"),
    }
}

/// The `data` payloads a step carries (one for an event; each `data:` line of a raw chunk).
fn step_payloads(step: &Step) -> Vec<String> {
    match step {
        Step::Event { data, .. } => vec![data.clone()],
        Step::Raw(text) => text
            .lines()
            .filter_map(|line| line.strip_prefix("data:"))
            .map(|data| data.trim_start().to_string())
            .collect(),
        _ => Vec::new(),
    }
}

/// Whether a step tells the client the reply is complete: an OpenAI `finish_reason` or
/// `[DONE]`, an Anthropic `message_delta` or `message_stop`.
fn ends_reply(step: &Step) -> bool {
    step_payloads(step).iter().any(|data| {
        if data.starts_with("[DONE]") {
            return true;
        }
        let Ok(value) = serde_json::from_str::<Value>(data) else {
            return false;
        };
        let finished = value["choices"]
            .as_array()
            .is_some_and(|choices| choices.iter().any(|c| !c["finish_reason"].is_null()));
        finished
            || matches!(
                value["type"].as_str(),
                Some("message_delta" | "message_stop")
            )
    })
}

/// The stream cut just before the first step that would end it (a `finish_reason`, `[DONE]`,
/// `message_delta`, `message_stop`): the client gets the content, then the connection closes
/// without the terminating chunk.
///
/// # Panics
/// If `reply` is not a stream.
pub fn truncated(reply: Reply) -> Reply {
    map_steps(reply, "truncated", |steps| {
        let mut kept: Vec<Step> = steps.into_iter().take_while(|s| !ends_reply(s)).collect();
        kept.push(Step::Close);
        kept
    })
}

/// The stream cut after its first `events` events (pauses kept), then closed without the
/// terminating chunk.
///
/// # Panics
/// If `reply` is not a stream.
pub fn truncated_after(reply: Reply, events: usize) -> Reply {
    map_steps(reply, "truncated_after", |steps| {
        let mut kept = first_events(steps, events);
        kept.push(Step::Close);
        kept
    })
}

/// The stream stalled after its first `events` events (pauses kept): the connection stays
/// open and silent until the client gives up or the server is dropped. With `events` at
/// least the number of events, it stalls before the terminating chunk.
///
/// # Panics
/// If `reply` is not a stream.
pub fn stalled_after(reply: Reply, events: usize) -> Reply {
    map_steps(reply, "stalled_after", |steps| {
        let mut kept = first_events(steps, events);
        kept.push(Step::Stall);
        kept
    })
}

fn first_events(steps: Vec<Step>, events: usize) -> Vec<Step> {
    let mut seen = 0;
    steps
        .into_iter()
        .take_while(|step| {
            if step.is_event() {
                seen += 1;
            }
            seen <= events
        })
        .collect()
}

/// The stream with a [`Step::Pause`] of `gap` before every event but the first (simulated
/// generation time between tokens).
///
/// # Panics
/// If `reply` is not a stream.
pub fn paced(reply: Reply, gap: Duration) -> Reply {
    map_steps(reply, "paced", |steps| {
        let mut paced = Vec::new();
        let mut first = true;
        for step in steps {
            if step.is_event() && !std::mem::take(&mut first) {
                paced.push(Step::Pause(gap));
            }
            paced.push(step);
        }
        paced
    })
}

// ---------------------------------------------------------------------------------------------
// Realistic identifiers
// ---------------------------------------------------------------------------------------------

/// Token counts; `input`/`output` are OpenAI's `prompt_tokens`/`completion_tokens`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Usage {
    pub input: u64,
    pub output: u64,
}

/// Shorthand for a [`Usage`].
pub const fn usage(input: u64, output: u64) -> Usage {
    Usage { input, output }
}

/// The usage an OpenAI stream built with `with_usage: true` reports (the verified example's).
pub const STREAM_USAGE: Usage = usage(3, 9);

pub const OPENAI_MODEL: &str = "gpt-4o-mini";
pub const ANTHROPIC_MODEL: &str = "claude-sonnet-4-20250514";
const CREATED: u64 = 1_795_260_566;
const FINGERPRINT: &str = "fp_560af6e559";

static SERIAL: AtomicU64 = AtomicU64::new(1);

/// `length` letters and digits that differ from one call to the next (deterministic per run).
fn token(length: usize) -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut x = SERIAL
        .fetch_add(1, Ordering::Relaxed)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (0..length)
        .map(|_| {
            // splitmix64
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            ALPHABET[((z ^ (z >> 31)) % 62) as usize] as char
        })
        .collect()
}

/// An OpenAI completion id, `chatcmpl-…`.
pub fn completion_id() -> String {
    format!("chatcmpl-{}", token(29))
}

/// An OpenAI `x-request-id`, `req_…`.
pub fn openai_request_id() -> String {
    format!("req_{}", token(32).to_ascii_lowercase())
}

/// An Anthropic message id, `msg_01…`.
pub fn message_id() -> String {
    format!("msg_01{}", token(22))
}

/// An Anthropic request id (header `request-id` and body `request_id`), `req_011…`.
pub fn anthropic_request_id() -> String {
    format!("req_011{}", token(21))
}

// ---------------------------------------------------------------------------------------------
// OpenAI Chat Completions (PROTOCOLS.md §1)
// ---------------------------------------------------------------------------------------------

fn openai_usage(usage: Usage) -> Value {
    json!({
        "prompt_tokens": usage.input,
        "completion_tokens": usage.output,
        "total_tokens": usage.input + usage.output,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0, "audio_tokens": 0,
            "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0
        }
    })
}

/// A `chat.completion` body with one choice holding `message`.
pub fn openai_completion(message: Value, finish_reason: &str, usage: Usage) -> Value {
    json!({
        "id": completion_id(),
        "object": "chat.completion",
        "created": CREATED,
        "model": OPENAI_MODEL,
        "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish_reason}],
        "usage": openai_usage(usage),
        "service_tier": "default",
        "system_fingerprint": FINGERPRINT
    })
}

/// An OpenAI reply: `body` with the `x-request-id` and `openai-processing-ms` headers.
pub fn openai_json(status: u16, body: &Value) -> Reply {
    let reply = with_header(
        json_reply(status, body),
        "x-request-id",
        &openai_request_id(),
    );
    with_header(reply, "openai-processing-ms", "412")
}

fn assistant_message(content: Option<&str>, tool_calls: Option<Value>) -> Value {
    let mut message =
        json!({"role": "assistant", "content": content, "refusal": null, "annotations": []});
    if let Some(tool_calls) = tool_calls {
        message["tool_calls"] = tool_calls;
    }
    message
}

fn tool_call_entry(id: Value, name: &str, arguments: Value) -> Value {
    let mut call = json!({"type": "function", "function": {"name": name, "arguments": arguments}});
    if !id.is_null() {
        call["id"] = id;
    }
    call
}

/// A final text answer: `finish_reason: "stop"`.
pub fn openai_text(text: &str, usage: Usage) -> Reply {
    let body = openai_completion(assistant_message(Some(text), None), "stop", usage);
    openai_json(200, &body)
}

/// A text answer cut by the token limit: `finish_reason: "length"`.
pub fn openai_length(text: &str, usage: Usage) -> Reply {
    let body = openai_completion(assistant_message(Some(text), None), "length", usage);
    openai_json(200, &body)
}

/// Tool calls `(id, name, arguments as a JSON string)`, `content: null`,
/// `finish_reason: "tool_calls"`.
pub fn openai_tool_calls(calls: &[(&str, &str, &str)], usage: Usage) -> Reply {
    openai_tool_calls_finishing(calls, "tool_calls", usage)
}

fn openai_tool_calls_finishing(
    calls: &[(&str, &str, &str)],
    finish_reason: &str,
    usage: Usage,
) -> Reply {
    let calls: Vec<Value> = calls
        .iter()
        .map(|(id, name, arguments)| tool_call_entry(json!(id), name, json!(arguments)))
        .collect();
    let message = assistant_message(None, Some(Value::Array(calls)));
    openai_json(200, &openai_completion(message, finish_reason, usage))
}

/// Builds the chunks of one OpenAI stream (same id throughout).
struct OpenAiChunks {
    id: String,
    with_usage: bool,
    steps: Vec<Step>,
}

impl OpenAiChunks {
    fn new(with_usage: bool) -> OpenAiChunks {
        OpenAiChunks {
            id: completion_id(),
            with_usage,
            steps: Vec::new(),
        }
    }

    fn chunk(&self, choices: Value) -> Value {
        let mut chunk = json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": OPENAI_MODEL,
            "service_tier": "default",
            "system_fingerprint": FINGERPRINT,
            "choices": choices
        });
        // With include_usage, every chunk but the last carries `usage: null`.
        if self.with_usage {
            chunk["usage"] = Value::Null;
        }
        chunk
    }

    fn delta_chunk(&self, delta: Value, finish_reason: Option<&str>) -> Value {
        self.chunk(json!([{
            "index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason
        }]))
    }

    fn push(&mut self, chunk: Value) -> &mut Self {
        self.steps.push(Step::data(chunk.to_string()));
        self
    }

    fn delta(&mut self, delta: Value) -> &mut Self {
        let chunk = self.delta_chunk(delta, None);
        self.push(chunk)
    }

    fn content(&mut self, text: &str) -> &mut Self {
        let mut chunk = self.delta_chunk(json!({"content": text}), None);
        // OpenAI pads chunks by default (`include_obfuscation`); clients must ignore it.
        chunk["obfuscation"] = json!(token(4));
        self.push(chunk)
    }

    fn tool_call(&mut self, entry: Value) -> &mut Self {
        self.delta(json!({"tool_calls": [entry]}))
    }

    /// The finish chunk, the usage chunk if asked for, then `[DONE]`.
    fn finish(&mut self, finish_reason: &str) -> Vec<Step> {
        let chunk = self.delta_chunk(json!({}), Some(finish_reason));
        self.push(chunk);
        if self.with_usage {
            let mut chunk = self.chunk(json!([]));
            chunk["usage"] = openai_usage(STREAM_USAGE);
            self.push(chunk);
        }
        self.steps.push(Step::data("[DONE]"));
        std::mem::take(&mut self.steps)
    }
}

fn openai_stream_reply(steps: Vec<Step>) -> Reply {
    with_header(sse_reply(steps), "x-request-id", &openai_request_id())
}

/// A streamed text answer: a role chunk, one chunk per piece of `chunks`, a finish chunk
/// (`stop`), the usage chunk (empty `choices`, [`STREAM_USAGE`]) if `with_usage`, `[DONE]`.
pub fn openai_stream_text(chunks: &[&str], with_usage: bool) -> Reply {
    let mut stream = OpenAiChunks::new(with_usage);
    stream.delta(json!({"role": "assistant", "content": "", "refusal": null}));
    for text in chunks {
        stream.content(text);
    }
    openai_stream_reply(stream.finish("stop"))
}

/// Streamed tool calls `(id, name, argument fragments)`: call `i` has `index: i`, opens with
/// its id, type, name and `arguments: ""`, then one chunk per fragment; `tool_calls` finish.
pub fn openai_stream_tool_calls(calls: &[(&str, &str, &[&str])], with_usage: bool) -> Reply {
    openai_stream_tool_calls_finishing(calls, "tool_calls", with_usage)
}

fn openai_stream_tool_calls_finishing(
    calls: &[(&str, &str, &[&str])],
    finish_reason: &str,
    with_usage: bool,
) -> Reply {
    let mut stream = OpenAiChunks::new(with_usage);
    stream.delta(json!({"role": "assistant", "content": null}));
    for (index, (id, name, fragments)) in calls.iter().enumerate() {
        stream.tool_call(json!({
            "index": index, "id": id, "type": "function",
            "function": {"name": name, "arguments": ""}
        }));
        for fragment in *fragments {
            stream.tool_call(json!({"index": index, "function": {"arguments": fragment}}));
        }
    }
    openai_stream_reply(stream.finish(finish_reason))
}

/// An OpenAI `ErrorResponse` (`{"error":{message,type,param:null,code}}`) with an
/// `x-request-id` header. Add `retry-after` / `retry-after-ms` with [`with_header`].
pub fn openai_error(status: u16, error_type: &str, code: Option<&str>, message: &str) -> Reply {
    let body =
        json!({"error": {"message": message, "type": error_type, "param": null, "code": code}});
    openai_json(status, &body)
}

/// A retryable 429 (`rate_limit_exceeded`) with the `x-ratelimit-*` headers and no
/// `retry-after` (add one with [`with_header`]).
pub fn openai_rate_limit() -> Reply {
    let reply = openai_error(
        429,
        "requests",
        Some("rate_limit_exceeded"),
        "Rate limit reached for gpt-4o-mini in organization org-test on requests per min (RPM): \
         Limit 3, Used 3, Requested 1. Please try again in 20s.",
    );
    [
        ("x-ratelimit-limit-requests", "3"),
        ("x-ratelimit-limit-tokens", "150000"),
        ("x-ratelimit-remaining-requests", "0"),
        ("x-ratelimit-remaining-tokens", "149984"),
        ("x-ratelimit-reset-requests", "20s"),
        ("x-ratelimit-reset-tokens", "6m0s"),
    ]
    .into_iter()
    .fold(reply, |reply, (name, value)| {
        with_header(reply, name, value)
    })
}

/// The non-retryable quota 429: `type` and `code` both `insufficient_quota`.
pub fn openai_quota_exceeded() -> Reply {
    openai_error(
        429,
        "insufficient_quota",
        Some("insufficient_quota"),
        "You exceeded your current quota, please check your plan and billing details. For more \
         information on this error, read the docs: \
         https://platform.openai.com/docs/guides/error-codes/api-errors.",
    )
}

/// A vLLM error: no `error` wrapper, `{"object":"error","message","type","param","code"}`
/// with the HTTP status as a number in `code`.
pub fn vllm_error(status: u16, error_type: &str, message: &str) -> Reply {
    let body = json!({
        "object": "error", "message": message, "type": error_type, "param": null, "code": status
    });
    json_reply(status, &body)
}

/// An OpenRouter error body (`error.code` is a number) with HTTP `status`.
pub fn openrouter_error(status: u16, code: u16, message: &str) -> Reply {
    json_reply(
        status,
        &json!({"error": {"code": code, "message": message}}),
    )
}

/// An OpenRouter error that arrives with HTTP 200, in the body.
pub fn openrouter_error_200(code: u16, message: &str) -> Reply {
    openrouter_error(200, code, message)
}

/// An OpenRouter stream (HTTP 200) that starts a text answer, then sends
/// `data: {"error":{"code":…,"message":…}}` and ends without a finish or `[DONE]`.
pub fn openrouter_stream_error(chunks: &[&str], code: u16, message: &str) -> Reply {
    let mut stream = OpenAiChunks::new(false);
    stream
        .steps
        .push(Step::Raw(": OPENROUTER PROCESSING\n\n".into()));
    stream.delta(json!({"role": "assistant", "content": ""}));
    for text in chunks {
        stream.content(text);
    }
    stream.push(json!({"error": {"code": code, "message": message}}));
    sse_reply(stream.steps)
}

// --- One builder per quirk of "OpenAI-compatible" servers (PROTOCOLS.md §1.6) ---------------

/// `function.arguments` as a JSON object instead of a string (llama.cpp's regression).
pub fn openai_quirk_arguments_object(id: &str, name: &str, arguments: Value) -> Reply {
    let calls = json!([tool_call_entry(json!(id), name, arguments)]);
    let message = assistant_message(None, Some(calls));
    openai_json(
        200,
        &openai_completion(message, "tool_calls", usage(20, 12)),
    )
}

fn openai_quirk_ids(calls: Vec<(Value, &str, &str)>) -> Reply {
    let calls: Vec<Value> = calls
        .into_iter()
        .map(|(id, name, arguments)| tool_call_entry(id, name, json!(arguments)))
        .collect();
    let message = assistant_message(None, Some(Value::Array(calls)));
    json_reply(
        200,
        &openai_completion(message, "tool_calls", usage(20, 12)),
    )
}

/// Tool calls `(name, arguments)` with no `id` key at all (Gemini's compatible endpoint).
pub fn openai_quirk_missing_ids(calls: &[(&str, &str)]) -> Reply {
    openai_quirk_ids(calls.iter().map(|(n, a)| (Value::Null, *n, *a)).collect())
}

/// Tool calls `(name, arguments)` with `"id": ""` (LM Studio, StepFun, older llama.cpp).
pub fn openai_quirk_empty_ids(calls: &[(&str, &str)]) -> Reply {
    openai_quirk_ids(calls.iter().map(|(n, a)| (json!(""), *n, *a)).collect())
}

/// Tool calls `(id, name, arguments)` whose ids are JSON integers (Poolside).
pub fn openai_quirk_integer_ids(calls: &[(i64, &str, &str)]) -> Reply {
    openai_quirk_ids(calls.iter().map(|(i, n, a)| (json!(i), *n, *a)).collect())
}

/// A streamed call `(name, fragments)` per entry, none ever carrying an `id` (Gemini).
/// Call `i` has `index: i`.
pub fn openai_stream_quirk_missing_ids(calls: &[(&str, &[&str])]) -> Reply {
    let mut stream = OpenAiChunks::new(false);
    stream.delta(json!({"role": "assistant", "content": null}));
    for (index, (name, fragments)) in calls.iter().enumerate() {
        stream.tool_call(json!({
            "index": index, "type": "function", "function": {"name": name, "arguments": ""}
        }));
        for fragment in *fragments {
            stream.tool_call(json!({"index": index, "function": {"arguments": fragment}}));
        }
    }
    openai_stream_reply(stream.finish("tool_calls"))
}

/// Parallel calls `(id, name, fragments)` all streamed at `index: 0`, told apart only by the
/// `id` (and name) on each call's first chunk; later fragments carry neither (Ollama-compatible
/// endpoints). With one fragment per call this is Ollama's one-chunk-per-call shape.
pub fn openai_stream_quirk_shared_index(calls: &[(&str, &str, &[&str])]) -> Reply {
    let mut stream = OpenAiChunks::new(false);
    stream.delta(json!({"role": "assistant", "content": null}));
    for (id, name, fragments) in calls {
        let (first, rest) = fragments.split_first().unwrap_or((&"", &[]));
        stream.tool_call(json!({
            "index": 0, "id": id, "type": "function", "function": {"name": name, "arguments": first}
        }));
        for fragment in rest {
            stream.tool_call(json!({"index": 0, "function": {"arguments": fragment}}));
        }
    }
    openai_stream_reply(stream.finish("tool_calls"))
}

/// One call whose every chunk carries a fresh id (LM Studio, Kimi): chunk `k` has id
/// `call_fresh_{k}`; the name comes only in chunk 0 (with `arguments: ""`), the fragments
/// follow one per chunk, all at `index: 0`. A new id without a name is not a new call here,
/// unlike [`openai_stream_quirk_shared_index`], where each new call brings its name.
pub fn openai_stream_quirk_fresh_id_per_chunk(name: &str, fragments: &[&str]) -> Reply {
    let mut stream = OpenAiChunks::new(false);
    stream.delta(json!({"role": "assistant", "content": null}));
    stream.tool_call(json!({
        "index": 0, "id": "call_fresh_0", "type": "function",
        "function": {"name": name, "arguments": ""}
    }));
    for (k, fragment) in fragments.iter().enumerate() {
        stream.tool_call(json!({
            "index": 0, "id": format!("call_fresh_{}", k + 1), "type": "function",
            "function": {"arguments": fragment}
        }));
    }
    openai_stream_reply(stream.finish("tool_calls"))
}

/// One call whose every chunk resends its id and full function name next to the argument
/// fragment (MiniMax via NVIDIA NIM): appending names would give `read_fileread_file`.
pub fn openai_stream_quirk_name_every_chunk(id: &str, name: &str, fragments: &[&str]) -> Reply {
    let mut stream = OpenAiChunks::new(false);
    stream.delta(json!({"role": "assistant", "content": null}));
    for fragment in fragments {
        stream.tool_call(json!({
            "index": 0, "id": id, "type": "function",
            "function": {"name": name, "arguments": fragment}
        }));
    }
    openai_stream_reply(stream.finish("tool_calls"))
}

/// One call streamed without `index` on any tool-call entry (read it as 0).
pub fn openai_stream_quirk_no_index(id: &str, name: &str, fragments: &[&str]) -> Reply {
    let mut stream = OpenAiChunks::new(false);
    stream.delta(json!({"role": "assistant", "content": null}));
    stream.tool_call(json!({
        "id": id, "type": "function", "function": {"name": name, "arguments": ""}
    }));
    for fragment in fragments {
        stream.tool_call(json!({"function": {"arguments": fragment}}));
    }
    openai_stream_reply(stream.finish("tool_calls"))
}

/// Tool calls `(id, name, arguments)` with `finish_reason: "stop"` (gpt-4o, old Ollama, vLLM
/// with a required tool choice…): the calls, not the finish reason, decide.
pub fn openai_quirk_stop_with_tool_calls(calls: &[(&str, &str, &str)]) -> Reply {
    openai_tool_calls_finishing(calls, "stop", usage(20, 12))
}

/// [`openai_stream_tool_calls`] finishing with `"stop"` instead of `"tool_calls"`.
pub fn openai_stream_quirk_stop_with_tool_calls(calls: &[(&str, &str, &[&str])]) -> Reply {
    openai_stream_tool_calls_finishing(calls, "stop", false)
}

/// [`openai_stream_text`] with `: OPENROUTER PROCESSING` comment lines before the first event
/// and between every two.
pub fn openai_stream_quirk_comments(chunks: &[&str]) -> Reply {
    let comment = Step::Raw(": OPENROUTER PROCESSING\n\n".into());
    map_steps(openai_stream_text(chunks, false), "comments", |steps| {
        let mut with_comments = vec![comment.clone()];
        for step in steps {
            with_comments.push(step);
            with_comments.push(comment.clone());
        }
        with_comments.pop();
        with_comments
    })
}

/// [`openai_stream_text`] written `data:{…}` with no space after the colon, `[DONE]` included.
pub fn openai_stream_quirk_data_without_space(chunks: &[&str]) -> Reply {
    map_steps(openai_stream_text(chunks, false), "no space", |steps| {
        steps
            .into_iter()
            .map(|step| match step {
                Step::Event { event: None, data } => Step::Raw(format!("data:{data}\n\n")),
                other => other,
            })
            .collect()
    })
}

/// [`openai_stream_text`] whose JSON events are each split over two `data:` lines (the SSE
/// rule joins them with `\n`, which JSON reads as whitespace).
pub fn openai_stream_quirk_multiline_data(chunks: &[&str]) -> Reply {
    map_steps(openai_stream_text(chunks, false), "multiline", |steps| {
        steps
            .into_iter()
            .map(|step| match step {
                Step::Event { event: None, data } if data.starts_with('{') => {
                    Step::Raw(format!("data: {{\ndata: {}\n\n", &data[1..]))
                }
                other => other,
            })
            .collect()
    })
}

/// A tool call written as plain text in `content` with `finish_reason: "stop"`: what servers
/// started without their tool-calling flags return (vLLM, llama.cpp without `--jinja`).
/// It is an answer, not a tool call.
pub fn openai_quirk_tool_call_as_text(name: &str, arguments: Value) -> Reply {
    let text = json!({"name": name, "arguments": arguments}).to_string();
    openai_text(&text, usage(20, 12))
}

/// The 400 a server sends for a request field it does not know (`max_completion_tokens`,
/// `stream_options` on some compatible servers).
pub fn openai_quirk_unknown_parameter(parameter: &str) -> Reply {
    openai_error(
        400,
        "invalid_request_error",
        None,
        &format!("Unrecognized request argument supplied: {parameter}"),
    )
}

// ---------------------------------------------------------------------------------------------
// Anthropic Messages (PROTOCOLS.md §2)
// ---------------------------------------------------------------------------------------------

fn anthropic_usage(input: u64, output: u64) -> Value {
    json!({
        "input_tokens": input,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": output,
        "service_tier": "standard"
    })
}

/// A `message` body with `content` blocks.
pub fn anthropic_message(content: Vec<Value>, stop_reason: &str, usage: Usage) -> Value {
    json!({
        "id": message_id(),
        "type": "message",
        "role": "assistant",
        "model": ANTHROPIC_MODEL,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": null,
        "usage": anthropic_usage(usage.input, usage.output)
    })
}

/// An Anthropic reply: `body` with a `request-id` header.
pub fn anthropic_json(status: u16, body: &Value) -> Reply {
    with_header(
        json_reply(status, body),
        "request-id",
        &anthropic_request_id(),
    )
}

/// A final text answer: `stop_reason: "end_turn"`.
pub fn anthropic_text(text: &str, usage: Usage) -> Reply {
    let content = vec![json!({"type": "text", "text": text})];
    anthropic_json(200, &anthropic_message(content, "end_turn", usage))
}

/// A text answer cut by `max_tokens`: `stop_reason: "max_tokens"`.
pub fn anthropic_max_tokens(text: &str, usage: Usage) -> Reply {
    let content = vec![json!({"type": "text", "text": text})];
    anthropic_json(200, &anthropic_message(content, "max_tokens", usage))
}

/// A text block (left out when `text` is empty) then `tool_use` blocks `(id, name, input)`;
/// `stop_reason: "tool_use"`.
pub fn anthropic_tool_use(text: &str, tools: &[(&str, &str, Value)], usage: Usage) -> Reply {
    let mut content = Vec::new();
    if !text.is_empty() {
        content.push(json!({"type": "text", "text": text}));
    }
    for (id, name, input) in tools {
        content.push(json!({"type": "tool_use", "id": id, "name": name, "input": input}));
    }
    anthropic_json(200, &anthropic_message(content, "tool_use", usage))
}

/// An SSE event named after its `type`, as Anthropic sends them.
fn anthropic_event(value: Value) -> Step {
    let name = value["type"].as_str().expect("an event type").to_string();
    Step::named(&name, value.to_string())
}

fn anthropic_stream_reply(steps: Vec<Step>) -> Reply {
    with_header(sse_reply(steps), "request-id", &anthropic_request_id())
}

/// The events of a stream up to its content: `message_start` with the input usage.
fn anthropic_stream_start(usage: Usage) -> Vec<Step> {
    let mut message = anthropic_message(Vec::new(), "", usage);
    message["stop_reason"] = Value::Null;
    message["usage"] = anthropic_usage(usage.input, 1);
    vec![anthropic_event(
        json!({"type": "message_start", "message": message}),
    )]
}

fn anthropic_text_block(steps: &mut Vec<Step>, index: usize, chunks: &[&str]) {
    steps.push(anthropic_event(json!({
        "type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}
    })));
    if index == 0 {
        steps.push(Step::named("ping", r#"{"type": "ping"}"#));
    }
    for text in chunks {
        steps.push(anthropic_event(json!({
            "type": "content_block_delta", "index": index,
            "delta": {"type": "text_delta", "text": text}
        })));
    }
    steps.push(anthropic_event(
        json!({"type": "content_block_stop", "index": index}),
    ));
}

/// `message_delta` (cumulative `output_tokens`) and `message_stop`.
fn anthropic_stream_end(steps: &mut Vec<Step>, stop_reason: &str, usage: Usage) {
    steps.push(anthropic_event(json!({
        "type": "message_delta",
        "delta": {"stop_reason": stop_reason, "stop_sequence": null},
        "usage": {"output_tokens": usage.output}
    })));
    steps.push(anthropic_event(json!({"type": "message_stop"})));
}

/// A streamed text answer: `message_start`, one text block (a `ping` after its start, one
/// `text_delta` per piece of `chunks`), `message_delta` (`end_turn`), `message_stop`.
pub fn anthropic_stream_text(chunks: &[&str], usage: Usage) -> Reply {
    let mut steps = anthropic_stream_start(usage);
    anthropic_text_block(&mut steps, 0, chunks);
    anthropic_stream_end(&mut steps, "end_turn", usage);
    anthropic_stream_reply(steps)
}

/// A streamed tool use shaped like the captured stream of PROTOCOLS.md §2.3: a text block if
/// `text` is not empty, then per tool `(id, name, fragments)` a `tool_use` block opened with
/// `"input": {}`; a tool with fragments gets an `input_json_delta` of `""` first and one per
/// fragment, a tool with none gets no delta at all (its input is `{}`). `ping` follows the
/// first block's start; `message_delta` says `tool_use`.
pub fn anthropic_stream_tool_use(
    text: &str,
    tools: &[(&str, &str, &[&str])],
    usage: Usage,
) -> Reply {
    let mut steps = anthropic_stream_start(usage);
    let mut index = 0;
    if !text.is_empty() {
        anthropic_text_block(&mut steps, 0, &[text]);
        index = 1;
    }
    for (id, name, fragments) in tools {
        steps.push(anthropic_event(json!({
            "type": "content_block_start", "index": index,
            "content_block": {
                "type": "tool_use", "id": id, "name": name, "caller": {"type": "direct"}, "input": {}
            }
        })));
        if index == 0 {
            steps.push(Step::named("ping", r#"{"type": "ping"}"#));
        }
        if !fragments.is_empty() {
            for fragment in std::iter::once(&"").chain(fragments.iter()) {
                steps.push(anthropic_event(json!({
                    "type": "content_block_delta", "index": index,
                    "delta": {"type": "input_json_delta", "partial_json": fragment}
                })));
            }
        }
        steps.push(anthropic_event(
            json!({"type": "content_block_stop", "index": index}),
        ));
        index += 1;
    }
    anthropic_stream_end(&mut steps, "tool_use", usage);
    anthropic_stream_reply(steps)
}

/// The tool-use stream captured in the SDK's fixture (PROTOCOLS.md §2.3), byte for byte: text
/// "I'll check the current weather in Paris for you.", then `get_weather` with input
/// `{"location": "Paris"}` (id `toolu_01NRLabsLyVHZPKxbKvkfSMn`), usage 377 in / 65 out.
pub fn anthropic_captured_tool_use_stream() -> Reply {
    const EVENTS: &[(&str, &str)] = &[
        (
            "message_start",
            r#"{"type":"message_start","message":{"id":"msg_019Q1hrJbZG26Fb9BQhrkHEr","type":"message","role":"assistant","model":"claude-sonnet-4-20250514","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":377,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1,"service_tier":"standard"}}}"#,
        ),
        (
            "content_block_start",
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
        ),
        ("ping", r#"{"type": "ping"}"#),
        (
            "content_block_delta",
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"I'll check the current weather in Paris for you."}}"#,
        ),
        (
            "content_block_stop",
            r#"{"type":"content_block_stop","index":0}"#,
        ),
        (
            "content_block_start",
            r#"{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_01NRLabsLyVHZPKxbKvkfSMn","name":"get_weather","caller":{"type":"direct"},"input":{}}}"#,
        ),
        (
            "content_block_delta",
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":""}}"#,
        ),
        (
            "content_block_delta",
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"locati"}}"#,
        ),
        (
            "content_block_delta",
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"on\": \"P"}}"#,
        ),
        (
            "content_block_delta",
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"ar"}}"#,
        ),
        (
            "content_block_delta",
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"is\"}"}}"#,
        ),
        (
            "content_block_stop",
            r#"{"type":"content_block_stop","index":1}"#,
        ),
        (
            "message_delta",
            r#"{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":65}}"#,
        ),
        ("message_stop", r#"{"type":"message_stop"}"#),
    ];
    let steps = EVENTS
        .iter()
        .map(|(event, data)| Step::named(event, *data))
        .collect();
    anthropic_stream_reply(steps)
}

/// An Anthropic error: `{"type":"error","error":{type,message},"request_id"}` with the same
/// id in the `request-id` header.
pub fn anthropic_error(status: u16, error_type: &str, message: &str) -> Reply {
    anthropic_error_body(status, json!({"type": error_type, "message": message}))
}

fn anthropic_error_body(status: u16, error: Value) -> Reply {
    let request_id = anthropic_request_id();
    let body = json!({"type": "error", "error": error, "request_id": request_id});
    with_header(json_reply(status, &body), "request-id", &request_id)
}

/// 529 `overloaded_error` (retryable, with a longer back-off).
pub fn anthropic_overloaded() -> Reply {
    anthropic_error(529, "overloaded_error", "Overloaded")
}

/// An overload reported as 429 with `overloaded_error` (decide on the type, not the status).
pub fn anthropic_overloaded_429() -> Reply {
    anthropic_error(429, "overloaded_error", "Overloaded")
}

/// A retryable 429 `rate_limit_error` with `retry-after: {retry_after}` (seconds) and the
/// `anthropic-ratelimit-requests-*` headers (reset as an RFC 3339 time).
pub fn anthropic_rate_limited(retry_after: &str) -> Reply {
    let reply = anthropic_error(
        429,
        "rate_limit_error",
        "Number of request tokens has exceeded your per-minute rate limit \
         (https://docs.claude.com/en/api/rate-limits); see the response headers for current \
         usage. Please reduce the prompt length or the maximum tokens requested, or try again \
         later.",
    );
    [
        ("retry-after", retry_after),
        ("anthropic-ratelimit-requests-limit", "50"),
        ("anthropic-ratelimit-requests-remaining", "0"),
        ("anthropic-ratelimit-requests-reset", "2025-08-21T12:40:59Z"),
    ]
    .into_iter()
    .fold(reply, |reply, (name, value)| {
        with_header(reply, name, value)
    })
}

/// The non-retryable 429: `rate_limit_error` with `error.details.error_code =
/// "enforced_spend_limit_reached"` and no `retry-after`.
pub fn anthropic_spend_limit() -> Reply {
    anthropic_error_body(
        429,
        json!({
            "type": "rate_limit_error",
            "message": "You have reached your specified workspace API usage limits. You will \
                        regain access on 2026-08-01 at 00:00 UTC.",
            "details": {"error_code": "enforced_spend_limit_reached"}
        }),
    )
}

/// A text stream (HTTP 200) that starts, sends `chunks`, then an `event: error` with
/// `overloaded_error` (the docs' exact bytes) instead of finishing; the body then ends.
pub fn anthropic_stream_overloaded(chunks: &[&str]) -> Reply {
    let usage = usage(25, 1);
    let mut steps = anthropic_stream_start(usage);
    steps.push(anthropic_event(json!({
        "type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}
    })));
    for text in chunks {
        steps.push(anthropic_event(json!({
            "type": "content_block_delta", "index": 0,
            "delta": {"type": "text_delta", "text": text}
        })));
    }
    steps.push(Step::named(
        "error",
        r#"{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}"#,
    ));
    anthropic_stream_reply(steps)
}
