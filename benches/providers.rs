//! Client-side cost of the LLM providers (`OpenAiCompatible`, `Anthropic`) against the
//! scripted local server of `tests/support/llm_server.rs` on 127.0.0.1: request round trips,
//! connection reuse, and how fast a cancelled request returns.
//!
//! `cargo bench --bench providers` prints a table with each figure next to its target;
//! `cargo bench --bench providers -- --json` prints one JSON object on stdout and nothing else
//! (progress goes to stderr). Other arguments (cargo adds `--bench`) are ignored.
//!
//! The round trips include the scripted server's own work (parsing the request, writing the
//! reply, one thread per connection): they bound the client's overhead from above.

#[path = "../tests/support/llm_server.rs"]
mod llm_server;

#[path = "common/mod.rs"]
mod common;

use std::sync::Arc;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::{Samples, Table};

use llm_server::{
    LlmServer, Reply, anthropic_stream_text, anthropic_text, openai_rate_limit, openai_stream_text,
    openai_text, stalled_after, usage, with_header,
};
use subtask::llm::{ChatModel, ChatRequest, Delta, HttpOptions, Message, ModelConfig};
use subtask::{CancelToken, ErrorKind};

const WARMUP: usize = 50;
const SAMPLES: usize = 500;
const CONNECTION_REQUESTS: usize = 100;
const CANCEL_SAMPLES: usize = 50;
/// The stream's pieces: ten content chunks (then usage and `[DONE]`, or `message_stop`).
const CHUNKS: &[&str] = &[
    "Hello",
    " there",
    ",",
    " this",
    " is",
    " a",
    " short",
    " streamed",
    " answer",
    ".",
];
const ANSWER: &str = "Hello there, this is a short streamed answer.";
/// The stall timeout of the cancel benchmarks: only the cancel may end those requests.
const STALL_TIMEOUT: Duration = Duration::from_secs(60);
/// Events a stalled stream sends first: the role chunk and two content chunks.
const EVENTS_BEFORE_STALL: usize = 3;
/// The `retry-after` of the backoff benchmark, in seconds.
const RETRY_AFTER_S: &str = "20";
/// How long after the server has read the request the canceller waits: enough for the
/// client to block on the response headers, or to read the 429 and start its backoff.
const SETTLE_HEADERS: Duration = Duration::from_millis(5);
const SETTLE_BACKOFF: Duration = Duration::from_millis(20);
/// The deadline of a cancel sample's token: a broken cancel costs this, never a hang. It
/// leaves more than the `retry-after` wait, so the client does plan its retry.
const SAMPLE_DEADLINE: Duration = Duration::from_secs(25);
/// How long the canceller waits for its signal (first delta, request seen) before
/// cancelling anyway and counting the sample as wrong.
const SIGNAL_LIMIT: Duration = Duration::from_secs(10);
/// A sample slower than this ends its section early, so a broken cancel cannot stall the
/// bench for minutes.
const ABORT_AFTER: Duration = Duration::from_secs(2);

const CANCEL_P99_TARGET_MS: f64 = 250.0;
const CONNECTIONS_TARGET: usize = 1;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Api {
    OpenAi,
    Anthropic,
}

fn main() {
    let json = std::env::args().skip(1).any(|arg| arg == "--json");
    let started = Instant::now();

    progress("OpenAI round trips");
    let openai = overhead(Api::OpenAi, false);
    progress("OpenAI streamed round trips");
    let openai_stream = overhead(Api::OpenAi, true);
    progress("Anthropic round trips");
    let anthropic = overhead(Api::Anthropic, false);
    progress("Anthropic streamed round trips");
    let anthropic_stream = overhead(Api::Anthropic, true);

    progress("connections for 100 requests");
    let connections = Connections {
        openai: connections_for(Api::OpenAi, false),
        openai_stream: connections_for(Api::OpenAi, true),
        anthropic: connections_for(Api::Anthropic, false),
        anthropic_stream: connections_for(Api::Anthropic, true),
    };

    progress("cancel of a stalled stream");
    let cancel_stream = cancel_stalled_stream();
    progress("cancel while waiting for headers");
    let cancel_headers = cancel_after_request(Scenario::Headers);
    progress("cancel during a retry backoff");
    let cancel_backoff = cancel_after_request(Scenario::Backoff);

    let report = Report {
        cores: thread::available_parallelism().map_or(0, |n| n.get()),
        openai,
        openai_stream,
        anthropic,
        anthropic_stream,
        connections,
        cancel_stream,
        cancel_headers,
        cancel_backoff,
        elapsed: started.elapsed(),
    };
    if json {
        println!("{}", report.json());
    } else {
        print!("{}", report.table());
    }
}

fn progress(section: &str) {
    eprintln!("providers bench: measuring {section}…");
}

fn http_options() -> HttpOptions {
    let mut options = HttpOptions::default();
    options.stall_timeout = STALL_TIMEOUT;
    options
}

/// A model of `api` talking to `server`.
fn model(api: Api, stream: bool, server: &LlmServer) -> Arc<dyn ChatModel> {
    let config = match api {
        Api::OpenAi => ModelConfig::parse("openai:gpt-4o-mini")
            .expect("a valid spec")
            .api_key("sk-bench-key")
            .base_url(format!("{}/v1", server.base_url())),
        Api::Anthropic => ModelConfig::parse("anthropic:claude-sonnet-4-20250514")
            .expect("a valid spec")
            .api_key("sk-ant-bench-key")
            .base_url(server.base_url()),
    };
    config
        .stream(stream)
        .http(http_options())
        .build()
        .expect("the model builds")
}

/// The reply to one successful request.
fn reply(api: Api, stream: bool) -> Reply {
    match (api, stream) {
        (Api::OpenAi, false) => openai_text(ANSWER, usage(12, 10)),
        (Api::OpenAi, true) => openai_stream_text(CHUNKS, true),
        (Api::Anthropic, false) => anthropic_text(ANSWER, usage(12, 10)),
        (Api::Anthropic, true) => anthropic_stream_text(CHUNKS, usage(12, 10)),
    }
}

fn messages() -> Vec<Message> {
    vec![Message::user("Say hello in one short sentence.")]
}

/// One successful call; panics (naming the call) on anything else.
fn call(model: &dyn ChatModel, request: &ChatRequest<'_>, what: &str) {
    let response = model
        .chat(request, &CancelToken::new(), &mut |_| {})
        .unwrap_or_else(|error| panic!("{what}: the request failed: {error}"));
    assert_eq!(response.message.text(), ANSWER, "{what}: wrong answer");
}

struct Overhead {
    samples: Samples,
    connections: usize,
}

/// Round trips of `model.chat` for a small answer, one model reused, after a warm-up.
fn overhead(api: Api, stream: bool) -> Overhead {
    let server = LlmServer::start();
    // Every reply is built and queued up front, so building them is not measured.
    server.push_all((0..WARMUP + SAMPLES).map(|_| reply(api, stream)));
    let model = model(api, stream, &server);
    let messages = messages();
    let request = ChatRequest::new("You are terse.", &messages);
    for _ in 0..WARMUP {
        call(model.as_ref(), &request, "warm-up");
    }
    let samples = (0..SAMPLES)
        .map(|_| {
            let started = Instant::now();
            call(model.as_ref(), &request, "round trip");
            started.elapsed()
        })
        .collect();
    let connections = server.connections();
    drop(model);
    drop(server);
    Overhead {
        samples: Samples::new(samples),
        connections,
    }
}

/// TCP connections a fresh model opens for 100 sequential requests to a fresh server.
fn connections_for(api: Api, stream: bool) -> usize {
    let server = LlmServer::start();
    server.push_all((0..CONNECTION_REQUESTS).map(|_| reply(api, stream)));
    let model = model(api, stream, &server);
    let messages = messages();
    let request = ChatRequest::new("You are terse.", &messages);
    for _ in 0..CONNECTION_REQUESTS {
        call(model.as_ref(), &request, "connection reuse");
    }
    let connections = server.connections();
    drop(model);
    drop(server);
    connections
}

/// Cancel-to-return times, and the samples that did not end as a prompt `Cancelled`.
struct CancelTimes {
    samples: Samples,
    /// Samples that returned anything but `ErrorKind::Cancelled`, or whose signal never came.
    wrong: usize,
    /// Whether a sample slower than `ABORT_AFTER` ended the section early.
    aborted: bool,
    connections: usize,
}

struct Sample {
    cancel_to_return: Duration,
    right: bool,
}

impl CancelTimes {
    fn collect(samples: Vec<Sample>, connections: usize) -> CancelTimes {
        let wrong = samples.iter().filter(|sample| !sample.right).count();
        let aborted = samples
            .last()
            .is_some_and(|sample| sample.cancel_to_return > ABORT_AFTER);
        CancelTimes {
            samples: Samples::new(samples.iter().map(|s| s.cancel_to_return).collect()),
            wrong,
            aborted,
            connections,
        }
    }
}

/// A stream that sends a few events then stalls; a second thread cancels as soon as the
/// first delta arrives. From the instant before `cancel()` to the instant `chat` returns.
fn cancel_stalled_stream() -> CancelTimes {
    let server = LlmServer::start();
    let model = model(Api::OpenAi, true, &server);
    let messages = messages();
    let request = ChatRequest::new("You are terse.", &messages);
    let mut samples = Vec::with_capacity(CANCEL_SAMPLES);
    for _ in 0..CANCEL_SAMPLES {
        server.push(stalled_after(
            openai_stream_text(CHUNKS, true),
            EVENTS_BEFORE_STALL,
        ));
        let token = CancelToken::with_timeout(SAMPLE_DEADLINE);
        let (first_delta, delta_seen) = mpsc::sync_channel::<()>(1);
        let canceller_token = token.clone();
        let sample = thread::scope(|scope| {
            let canceller = scope.spawn(move || {
                let signalled = delta_seen.recv_timeout(SIGNAL_LIMIT).is_ok();
                let cancelled_at = Instant::now();
                canceller_token.cancel();
                (signalled, cancelled_at)
            });
            let mut sink = Some(first_delta);
            let mut on_delta = move |_: Delta<'_>| {
                if let Some(sink) = sink.take() {
                    let _ = sink.send(());
                }
            };
            let outcome = model.chat(&request, &token, &mut on_delta);
            let returned_at = Instant::now();
            // Drops the sender: a canceller still waiting for a delta stops waiting.
            drop(on_delta);
            let (signalled, cancelled_at) = canceller.join().expect("the canceller finishes");
            Sample {
                cancel_to_return: returned_at.saturating_duration_since(cancelled_at),
                right: signalled
                    && matches!(&outcome, Err(error) if error.kind() == ErrorKind::Cancelled),
            }
        });
        let slow = sample.cancel_to_return > ABORT_AFTER;
        samples.push(sample);
        if slow {
            eprintln!("providers bench: a cancel took over {ABORT_AFTER:?}; section stopped");
            break;
        }
    }
    let connections = server.connections();
    drop(model);
    drop(server);
    CancelTimes::collect(samples, connections)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Scenario {
    /// The server reads the request and never answers.
    Headers,
    /// The server answers 429 with `retry-after: 20`; the client sleeps before its retry.
    Backoff,
}

/// A request cancelled once the server has read it (and `settle` more): while the client
/// waits for headers, or sleeps before a retry.
fn cancel_after_request(scenario: Scenario) -> CancelTimes {
    let server = LlmServer::start();
    let model = model(Api::OpenAi, false, &server);
    let messages = messages();
    let request = ChatRequest::new("You are terse.", &messages);
    let settle = match scenario {
        Scenario::Headers => SETTLE_HEADERS,
        Scenario::Backoff => SETTLE_BACKOFF,
    };
    let mut samples = Vec::with_capacity(CANCEL_SAMPLES);
    for _ in 0..CANCEL_SAMPLES {
        let seen = server.requests().len() + 1;
        server.push(match scenario {
            Scenario::Headers => Reply::Hang,
            Scenario::Backoff => with_header(openai_rate_limit(), "retry-after", RETRY_AFTER_S),
        });
        let token = CancelToken::with_timeout(SAMPLE_DEADLINE);
        let sample = thread::scope(|scope| {
            let canceller = scope.spawn(|| {
                let signalled = server.wait_requests(seen, SIGNAL_LIMIT).len() >= seen;
                thread::sleep(settle);
                let cancelled_at = Instant::now();
                token.cancel();
                (signalled, cancelled_at)
            });
            let outcome = model.chat(&request, &token, &mut |_| {});
            let returned_at = Instant::now();
            let (signalled, cancelled_at) = canceller.join().expect("the canceller finishes");
            Sample {
                cancel_to_return: returned_at.saturating_duration_since(cancelled_at),
                // Cancelled, and the retry never went out.
                right: signalled
                    && server.requests().len() == seen
                    && matches!(&outcome, Err(error) if error.kind() == ErrorKind::Cancelled),
            }
        });
        let slow = sample.cancel_to_return > ABORT_AFTER;
        samples.push(sample);
        if slow {
            eprintln!("providers bench: a cancel took over {ABORT_AFTER:?}; section stopped");
            break;
        }
    }
    let connections = server.connections();
    drop(model);
    drop(server);
    CancelTimes::collect(samples, connections)
}

struct Connections {
    openai: usize,
    openai_stream: usize,
    anthropic: usize,
    anthropic_stream: usize,
}

struct Report {
    cores: usize,
    openai: Overhead,
    openai_stream: Overhead,
    anthropic: Overhead,
    anthropic_stream: Overhead,
    connections: Connections,
    cancel_stream: CancelTimes,
    cancel_headers: CancelTimes,
    cancel_backoff: CancelTimes,
    elapsed: Duration,
}

impl Report {
    fn json(&self) -> String {
        let c = &self.connections;
        format!(
            concat!(
                "{{\"openai_overhead_us_p50\":{:.1},\"openai_overhead_us_p99\":{:.1},",
                "\"openai_stream_overhead_us_p50\":{:.1},\"openai_stream_overhead_us_p99\":{:.1},",
                "\"anthropic_overhead_us_p50\":{:.1},\"anthropic_overhead_us_p99\":{:.1},",
                "\"anthropic_stream_overhead_us_p50\":{:.1},",
                "\"anthropic_stream_overhead_us_p99\":{:.1},",
                "\"connections_for_100_requests\":{},",
                "\"connections_for_100_stream_requests\":{},",
                "\"anthropic_connections_for_100_requests\":{},",
                "\"anthropic_connections_for_100_stream_requests\":{},",
                "\"cancel_to_return_ms_p50\":{:.3},\"cancel_to_return_ms_p99\":{:.3},",
                "\"cancel_during_headers_ms_p50\":{:.3},\"cancel_during_headers_ms_p99\":{:.3},",
                "\"cancel_during_backoff_ms_p50\":{:.3},\"cancel_during_backoff_ms_p99\":{:.3},",
                "\"cancel_wrong_outcomes\":{},\"overhead_samples\":{},\"cancel_samples\":{},",
                "\"cores\":{}}}"
            ),
            self.openai.samples.micros(50),
            self.openai.samples.micros(99),
            self.openai_stream.samples.micros(50),
            self.openai_stream.samples.micros(99),
            self.anthropic.samples.micros(50),
            self.anthropic.samples.micros(99),
            self.anthropic_stream.samples.micros(50),
            self.anthropic_stream.samples.micros(99),
            c.openai,
            c.openai_stream,
            c.anthropic,
            c.anthropic_stream,
            self.cancel_stream.samples.millis(50),
            self.cancel_stream.samples.millis(99),
            self.cancel_headers.samples.millis(50),
            self.cancel_headers.samples.millis(99),
            self.cancel_backoff.samples.millis(50),
            self.cancel_backoff.samples.millis(99),
            self.cancel_stream.wrong + self.cancel_headers.wrong + self.cancel_backoff.wrong,
            self.openai.samples.len(),
            self.cancel_stream.samples.len(),
            self.cores,
        )
    }

    fn table(&self) -> String {
        let mut table = Table::new(36, 12, 10);
        for (name, overhead) in [
            ("openai round trip", &self.openai),
            ("openai stream round trip", &self.openai_stream),
            ("anthropic round trip", &self.anthropic),
            ("anthropic stream round trip", &self.anthropic_stream),
        ] {
            let n = format!(
                "{} (+{WARMUP} warm-up), {} connection(s)",
                overhead.samples.len(),
                overhead.connections
            );
            for percent in [50, 99] {
                table.row(
                    &format!("{name} p{percent}"),
                    format!("{:.1} µs", overhead.samples.micros(percent)),
                    None,
                    &n,
                );
            }
        }
        let c = &self.connections;
        for (name, count) in [
            ("connections, 100 openai requests", c.openai),
            ("connections, 100 openai streams", c.openai_stream),
            ("connections, 100 anthropic requests", c.anthropic),
            ("connections, 100 anthropic streams", c.anthropic_stream),
        ] {
            table.row(
                name,
                format!("{count}"),
                Some((
                    format!("= {CONNECTIONS_TARGET}"),
                    count == CONNECTIONS_TARGET,
                )),
                &format!("{CONNECTION_REQUESTS} sequential, fresh server and model"),
            );
        }
        for (name, times) in [
            ("cancel stalled stream", &self.cancel_stream),
            ("cancel waiting for headers", &self.cancel_headers),
            ("cancel during 429 backoff", &self.cancel_backoff),
        ] {
            let mut n = format!(
                "{}, {} wrong outcome(s), {} connection(s)",
                times.samples.len(),
                times.wrong,
                times.connections
            );
            if times.aborted {
                n.push_str(", STOPPED EARLY");
            }
            let p50 = times.samples.millis(50);
            table.row(&format!("{name} p50"), format!("{p50:.3} ms"), None, &n);
            let p99 = times.samples.millis(99);
            table.row(
                &format!("{name} p99"),
                format!("{p99:.3} ms"),
                Some((
                    format!("≤ {CANCEL_P99_TARGET_MS} ms"),
                    p99 <= CANCEL_P99_TARGET_MS && times.wrong == 0 && !times.aborted,
                )),
                &n,
            );
        }
        let out = table.finish();
        format!(
            "subtask providers benchmark (scripted HTTP server on 127.0.0.1)\n\
             reproduce: cargo bench --bench providers   (JSON: cargo bench --bench providers -- --json)\n\
             cores: {} (available_parallelism); whole run {:.1} s\n\
             round trips: total time of model.chat(), one model reused; the local server's own \
             cost is included\n  (request parsing, reply writing, a thread per connection); \
             streams send 10 content chunks + usage/[DONE] (OpenAI)\n  or message_delta/\
             message_stop (Anthropic)\n\
             cancels (OpenAI wire format): from the instant before token.cancel() on another \
             thread to chat() returning\n  stalled stream: cancelled at the first delta, stall \
             timeout {} s\n  headers: Hang reply, cancelled {} ms after the server read the \
             request\n  backoff: 429 + retry-after {RETRY_AFTER_S} s, cancelled {} ms after the \
             server read the request\n  p99 of {} samples is their maximum\n\n{out}",
            self.cores,
            self.elapsed.as_secs_f64(),
            STALL_TIMEOUT.as_secs(),
            SETTLE_HEADERS.as_millis(),
            SETTLE_BACKOFF.as_millis(),
            CANCEL_SAMPLES,
        )
    }
}
