//! The HTTP layer both providers share, against the scripted server: retries and their
//! waits (`retry-after`, `retry-after-ms`, HTTP dates, the cap, `x-should-retry`),
//! connection failures, deadlines, cancellation, stalls, connection reuse, secrets, and
//! configuration from the environment.

mod support;

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::bounded;
use subtask::llm::{ChatModel, ChatRequest, ChatResponse, HttpOptions, Message, ModelConfig};
use subtask::{CancelToken, Error, ErrorKind, ProviderDetails, TimeoutKind};
use support::llm_server::*;
use support::{PATIENCE, ms, watchdog};

const OPENAI_KEY: &str = "sk-test-secret";
const ANTHROPIC_KEY: &str = "sk-ant-test-secret";

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq)]
enum Api {
    OpenAi,
    Anthropic,
}

const BOTH: [Api; 2] = [Api::OpenAi, Api::Anthropic];

fn http(max_retries: u32, stall_timeout: Duration) -> HttpOptions {
    let mut http = HttpOptions::default();
    http.max_retries = max_retries;
    http.stall_timeout = stall_timeout;
    http.connect_timeout = Duration::from_secs(2);
    http
}

/// Default retries, a stall timeout short enough that a broken test fails in seconds.
fn quick() -> HttpOptions {
    http(2, Duration::from_secs(5))
}

fn config(api: Api, base_url: &str) -> ModelConfig {
    match api {
        Api::OpenAi => ModelConfig::parse("openai:gpt-4.1-mini")
            .unwrap()
            .api_key(OPENAI_KEY)
            .base_url(format!("{base_url}/v1")),
        Api::Anthropic => ModelConfig::parse("anthropic:claude-sonnet-4-5")
            .unwrap()
            .api_key(ANTHROPIC_KEY)
            .base_url(base_url),
    }
}

fn model(api: Api, server: &LlmServer, http: HttpOptions, stream: bool) -> Arc<dyn ChatModel> {
    config(api, &server.base_url())
        .http(http)
        .stream(stream)
        .build()
        .unwrap()
}

fn key(api: Api) -> &'static str {
    match api {
        Api::OpenAi => OPENAI_KEY,
        Api::Anthropic => ANTHROPIC_KEY,
    }
}

/// A successful answer "Hello" in the provider's format.
fn hello(api: Api, stream: bool) -> Reply {
    match (api, stream) {
        (Api::OpenAi, false) => openai_text("Hello", usage(10, 2)),
        (Api::OpenAi, true) => openai_stream_text(&["Hel", "lo"], true),
        (Api::Anthropic, false) => anthropic_text("Hello", usage(10, 2)),
        (Api::Anthropic, true) => anthropic_stream_text(&["Hel", "lo"], usage(10, 2)),
    }
}

/// A retryable 429 in the provider's format (Anthropic's says `retry-after: 1`; tests
/// replace it).
fn rate_limited(api: Api) -> Reply {
    match api {
        Api::OpenAi => openai_rate_limit(),
        Api::Anthropic => anthropic_rate_limited("1"),
    }
}

/// A 500 in the provider's format.
fn server_error(api: Api) -> Reply {
    match api {
        Api::OpenAi => openai_error(500, "server_error", None, "The server had an error"),
        Api::Anthropic => anthropic_error(500, "api_error", "Internal server error"),
    }
}

fn request_messages() -> [Message; 1] {
    [Message::user("Say hello")]
}

fn call(model: &dyn ChatModel, token: &CancelToken) -> Result<ChatResponse, Error> {
    let messages = request_messages();
    model.chat(
        &ChatRequest::new("Be terse.", &messages),
        token,
        &mut |_| {},
    )
}

fn ok(model: &dyn ChatModel) -> ChatResponse {
    call(model, &CancelToken::new()).expect("a successful answer")
}

fn err(model: &dyn ChatModel, token: &CancelToken) -> Error {
    match call(model, token) {
        Ok(response) => panic!("expected an error, got {response:?}"),
        Err(error) => error,
    }
}

fn details(error: &Error) -> &ProviderDetails {
    error
        .provider_details()
        .unwrap_or_else(|| panic!("no provider details: {error:?}"))
}

fn gap(requests: &[Recorded], between: usize) -> Duration {
    requests[between + 1].at - requests[between].at
}

// ---------------------------------------------------------------------------------------------
// Retries and their waits
// ---------------------------------------------------------------------------------------------

#[test]
fn a_429_with_retry_after_seconds_is_retried_after_that_wait() {
    watchdog(|| {
        for api in BOTH {
            let server = LlmServer::start();
            server.push(with_header(rate_limited(api), "retry-after", "0.05"));
            server.push(hello(api, false));
            let response = ok(model(api, &server, quick(), false).as_ref());
            assert_eq!(response.message.text(), "Hello");
            let requests = server.requests();
            assert_eq!(requests.len(), 2, "{api:?}");
            assert!(
                gap(&requests, 0) >= ms(48),
                "{api:?}: retried after {:?}",
                gap(&requests, 0)
            );
            assert_eq!(
                server.connections(),
                1,
                "{api:?}: the error's connection is reused"
            );
        }
    });
}

#[test]
fn retry_after_ms_is_honoured_before_retry_after() {
    watchdog(|| {
        for api in BOTH {
            let server = LlmServer::start();
            let reply = with_header(rate_limited(api), "retry-after-ms", "80");
            // retry-after-ms wins over retry-after; an hour here would fail the test.
            server.push(with_header(reply, "retry-after", "3600"));
            server.push(hello(api, true));
            let response = ok(model(api, &server, quick(), true).as_ref());
            assert_eq!(response.message.text(), "Hello");
            let requests = server.requests();
            assert_eq!(requests.len(), 2, "{api:?}");
            assert!(
                gap(&requests, 0) >= ms(78),
                "{api:?}: {:?}",
                gap(&requests, 0)
            );
        }
    });
}

#[test]
fn a_retry_after_http_date_is_read_as_a_wait() {
    watchdog(|| {
        // A date 30 s ahead: with 3 s left the wait does not fit, so no retry is made. Were
        // the date ignored, the 0.5 s backoff would fit and a second request would come.
        let server = LlmServer::start();
        let date = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(30));
        server.push(with_header(rate_limited(Api::OpenAi), "retry-after", &date));
        server.push(hello(Api::OpenAi, false));
        let model = model(Api::OpenAi, &server, quick(), false);
        let started = Instant::now();
        let error = err(
            model.as_ref(),
            &CancelToken::with_timeout(Duration::from_secs(3)),
        );
        assert_eq!(error.kind(), ErrorKind::Provider, "{error:?}");
        assert_eq!(details(&error).status, Some(429));
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(server.requests().len(), 1);
    });
}

#[test]
fn a_retry_after_http_date_past_the_cap_gets_the_usual_backoff() {
    watchdog(|| {
        let server = LlmServer::start();
        let date = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(300));
        server.push(with_header(
            rate_limited(Api::Anthropic),
            "retry-after",
            &date,
        ));
        server.push(hello(Api::Anthropic, false));
        let started = Instant::now();
        let response = ok(model(Api::Anthropic, &server, quick(), false).as_ref());
        assert_eq!(response.message.text(), "Hello");
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(server.requests().len(), 2);
    });
}

#[test]
fn server_errors_are_retried_until_success() {
    watchdog(|| {
        for api in BOTH {
            let server = LlmServer::start();
            // Short waits keep the test fast; the statuses alone make them retryable.
            server.push(with_header(server_error(api), "retry-after-ms", "5"));
            server.push(with_header(
                match api {
                    Api::OpenAi => openai_error(503, "server_error", None, "Unavailable"),
                    Api::Anthropic => anthropic_error(503, "api_error", "Unavailable"),
                },
                "retry-after-ms",
                "5",
            ));
            server.push(hello(api, true));
            let response = ok(model(api, &server, http(2, Duration::from_secs(5)), true).as_ref());
            assert_eq!(response.message.text(), "Hello");
            assert_eq!(server.requests().len(), 3, "{api:?}");
        }
    });
}

#[test]
fn retries_stop_after_max_retries_and_say_how_many_attempts() {
    watchdog(|| {
        for api in BOTH {
            let server = LlmServer::start();
            for _ in 0..3 {
                server.push(with_header(server_error(api), "retry-after-ms", "5"));
            }
            server.push(hello(api, false));
            let error = err(
                model(api, &server, http(2, Duration::from_secs(5)), false).as_ref(),
                &CancelToken::new(),
            );
            assert_eq!(error.kind(), ErrorKind::Provider, "{api:?}");
            assert!(error.is_retryable(), "a 500 may succeed later: {error:?}");
            assert_eq!(details(&error).status, Some(500));
            assert_eq!(details(&error).attempts, 3);
            assert!(error.to_string().contains("3 attempts"), "{error}");
            assert_eq!(server.requests().len(), 3, "{api:?}");
            assert_eq!(server.pending_replies(), 1);
        }
    });
}

#[test]
fn max_retries_zero_makes_one_attempt() {
    watchdog(|| {
        let server = LlmServer::start();
        server.push(with_header(
            server_error(Api::OpenAi),
            "retry-after-ms",
            "5",
        ));
        server.push(hello(Api::OpenAi, false));
        let error = err(
            model(Api::OpenAi, &server, http(0, Duration::from_secs(5)), false).as_ref(),
            &CancelToken::new(),
        );
        assert_eq!(details(&error).attempts, 1);
        assert_eq!(server.requests().len(), 1);
    });
}

#[test]
fn a_retry_after_over_the_cap_falls_back_to_the_usual_backoff() {
    watchdog(|| {
        for api in BOTH {
            let server = LlmServer::start();
            server.push(with_header(rate_limited(api), "retry-after", "600"));
            server.push(hello(api, false));
            let started = Instant::now();
            let response = ok(model(api, &server, quick(), false).as_ref());
            assert_eq!(response.message.text(), "Hello");
            // The backoff (at most 0.5 s for a first retry), not the ten minutes asked.
            assert!(started.elapsed() < Duration::from_secs(2));
            assert_eq!(server.requests().len(), 2, "{api:?}");
        }
        // With no retries left, the message says what the server asked for.
        let server = LlmServer::start();
        server.push(with_header(rate_limited(Api::OpenAi), "retry-after", "600"));
        let error = err(
            model(Api::OpenAi, &server, http(0, Duration::from_secs(5)), false).as_ref(),
            &CancelToken::new(),
        );
        assert_eq!(details(&error).status, Some(429));
        assert!(error.to_string().contains("600 s"), "{error}");
    });
}

#[test]
fn x_should_retry_overrides_the_status() {
    watchdog(|| {
        for api in BOTH {
            let server = LlmServer::start();
            server.push(with_header(server_error(api), "x-should-retry", "false"));
            server.push(hello(api, false));
            let error = err(
                model(api, &server, quick(), false).as_ref(),
                &CancelToken::new(),
            );
            assert_eq!(details(&error).status, Some(500));
            assert!(!error.is_retryable(), "{error:?}");
            assert_eq!(server.requests().len(), 1, "{api:?}");

            // And `true` makes a status retried that would not be.
            let server = LlmServer::start();
            let conflict = match api {
                Api::OpenAi => openai_error(400, "invalid_request_error", None, "try again"),
                Api::Anthropic => anthropic_error(400, "invalid_request_error", "try again"),
            };
            let conflict = with_header(conflict, "x-should-retry", "true");
            server.push(with_header(conflict, "retry-after-ms", "5"));
            server.push(hello(api, false));
            ok(model(api, &server, quick(), false).as_ref());
            assert_eq!(server.requests().len(), 2, "{api:?}");
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Connection failures
// ---------------------------------------------------------------------------------------------

#[test]
fn a_dropped_connection_is_retried_then_succeeds() {
    watchdog(|| {
        for (api, stream) in [(Api::OpenAi, true), (Api::Anthropic, false)] {
            let server = LlmServer::start();
            server.push(Reply::Reset);
            server.push(hello(api, stream));
            let response = ok(model(api, &server, quick(), stream).as_ref());
            assert_eq!(response.message.text(), "Hello");
            assert_eq!(server.requests().len(), 2, "{api:?}");
            assert_eq!(server.connections(), 2, "a new connection after the reset");
        }
    });
}

#[test]
fn a_refused_connection_is_a_provider_error_without_status_after_the_retries() {
    watchdog(|| {
        let port = {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let base = format!("http://127.0.0.1:{port}");
        for api in BOTH {
            let model = config(api, &base)
                .http(http(1, Duration::from_secs(5)))
                .build()
                .unwrap();
            let started = Instant::now();
            let error = err(model.as_ref(), &CancelToken::new());
            assert_eq!(error.kind(), ErrorKind::Provider, "{error:?}");
            assert!(error.is_retryable(), "{error:?}");
            let details = details(&error);
            assert_eq!(details.status, None);
            assert_eq!(details.attempts, 2, "one retry: {error}");
            // One backoff of 0.5 s less up to a quarter.
            assert!(started.elapsed() >= ms(370), "{:?}", started.elapsed());
            assert!(!error.to_string().contains(key(api)), "{error}");
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Deadlines
// ---------------------------------------------------------------------------------------------

#[test]
fn a_hanging_server_ends_at_the_tasks_deadline() {
    watchdog(|| {
        for api in BOTH {
            let server = LlmServer::start();
            server.push(Reply::Hang);
            server.push(hello(api, false));
            let model = model(api, &server, quick(), false);
            let started = Instant::now();
            let token = CancelToken::with_timeout(ms(200));
            let error = err(model.as_ref(), &token);
            let elapsed = started.elapsed();
            assert_eq!(error.kind(), ErrorKind::Timeout, "{api:?}: {error:?}");
            assert_eq!(error.timeout_kind(), Some(TimeoutKind::Execution));
            assert!(
                elapsed >= ms(200),
                "{api:?}: before the deadline: {elapsed:?}"
            );
            assert!(elapsed < Duration::from_secs(5), "{api:?}: {elapsed:?}");
            assert_eq!(
                server.requests().len(),
                1,
                "{api:?}: no retry past the deadline"
            );
            assert!(
                server.wait_open_connections(0, PATIENCE),
                "{api:?}: the request outlived its task"
            );
        }
    });
}

#[test]
fn a_stalled_stream_ends_at_the_tasks_deadline() {
    watchdog(|| {
        let server = LlmServer::start();
        server.push(stalled_after(openai_stream_text(&["Hel", "lo"], true), 2));
        let model = model(Api::OpenAi, &server, http(2, Duration::from_secs(30)), true);
        let started = Instant::now();
        let error = err(model.as_ref(), &CancelToken::with_timeout(ms(300)));
        let elapsed = started.elapsed();
        assert_eq!(error.kind(), ErrorKind::Timeout, "{error:?}");
        assert!(elapsed >= ms(300), "{elapsed:?}");
        assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
        assert!(server.wait_open_connections(0, PATIENCE));
    });
}

#[test]
fn a_retry_wait_longer_than_the_time_left_is_not_attempted() {
    watchdog(|| {
        for api in BOTH {
            let server = LlmServer::start();
            server.push(with_header(rate_limited(api), "retry-after", "2"));
            server.push(hello(api, false));
            let model = model(api, &server, quick(), false);
            let started = Instant::now();
            let error = err(model.as_ref(), &CancelToken::with_timeout(ms(300)));
            let elapsed = started.elapsed();
            assert!(elapsed < ms(1500), "{api:?}: waited {elapsed:?}");
            // The provider's refusal, which says more than a bare timeout would.
            assert_eq!(error.kind(), ErrorKind::Provider, "{api:?}: {error:?}");
            assert_eq!(details(&error).status, Some(429));
            assert!(error.is_retryable(), "{error:?}");
            assert_eq!(server.requests().len(), 1, "{api:?}");
        }
    });
}

#[test]
fn an_expired_token_sends_nothing() {
    watchdog(|| {
        let server = LlmServer::start();
        server.push(hello(Api::OpenAi, false));
        let model = model(Api::OpenAi, &server, quick(), false);
        let token = CancelToken::new();
        token.cancel();
        let error = err(model.as_ref(), &token);
        assert_eq!(error.kind(), ErrorKind::Cancelled);
        assert_eq!(server.requests().len(), 0);
    });
}

// ---------------------------------------------------------------------------------------------
// Cancellation
// ---------------------------------------------------------------------------------------------

/// Calls `model` while another thread cancels the token once the first delta arrived;
/// returns the error and the time from `cancel()` to the call's return.
fn cancel_after_first_delta(model: &dyn ChatModel) -> (Error, Duration) {
    let token = CancelToken::new();
    let (first_delta, got_first_delta) = bounded::<()>(1);
    std::thread::scope(|scope| {
        let canceller = scope.spawn({
            let token = token.clone();
            move || {
                got_first_delta
                    .recv_timeout(PATIENCE)
                    .expect("a first delta");
                let at = Instant::now();
                token.cancel();
                at
            }
        });
        let messages = request_messages();
        let result = model.chat(&ChatRequest::new("", &messages), &token, &mut |_| {
            let _ = first_delta.try_send(());
        });
        let returned = Instant::now();
        let cancelled_at = canceller.join().unwrap();
        let error = match result {
            Ok(response) => panic!("a cancelled call answered {response:?}"),
            Err(error) => error,
        };
        (error, returned.saturating_duration_since(cancelled_at))
    })
}

#[test]
fn cancelling_a_stalled_stream_returns_promptly() {
    watchdog(|| {
        for api in BOTH {
            let server = LlmServer::start();
            let reply = match api {
                Api::OpenAi => stalled_after(openai_stream_text(&["Hel", "lo"], true), 2),
                // message_start, block start, ping, the first text delta.
                Api::Anthropic => stalled_after(hello(api, true), 4),
            };
            server.push(reply);
            let model = model(api, &server, http(2, Duration::from_secs(30)), true);
            let started = Instant::now();
            let (error, latency) = cancel_after_first_delta(model.as_ref());
            eprintln!(
                "{api:?}: cancel during a stalled stream returned {latency:?} after cancel()"
            );
            assert_eq!(error.kind(), ErrorKind::Cancelled, "{api:?}: {error:?}");
            assert!(latency < Duration::from_secs(2), "{api:?}: {latency:?}");
            assert!(started.elapsed() < Duration::from_secs(5));
            assert_eq!(server.requests().len(), 1);
            assert!(
                server.wait_open_connections(0, PATIENCE),
                "{api:?}: the cancelled request's connection stays open"
            );
        }
    });
}

#[test]
fn cancelling_during_a_retry_wait_returns_promptly() {
    watchdog(|| {
        for api in BOTH {
            let server = LlmServer::start();
            server.push(with_header(rate_limited(api), "retry-after", "20"));
            server.push(hello(api, false));
            let model = model(api, &server, quick(), false);
            let token = CancelToken::new();
            let started = Instant::now();
            let (result, latency) = std::thread::scope(|scope| {
                let canceller = scope.spawn(|| {
                    let seen = server.wait_requests(1, PATIENCE);
                    assert_eq!(seen.len(), 1, "the first request never came");
                    let at = Instant::now();
                    token.cancel();
                    at
                });
                let result = call(model.as_ref(), &token);
                let returned = Instant::now();
                let cancelled_at = canceller.join().unwrap();
                (result, returned.saturating_duration_since(cancelled_at))
            });
            eprintln!(
                "{api:?}: cancel during a 20 s retry wait returned {latency:?} after cancel()"
            );
            let error = result.expect_err("a cancelled call answered");
            assert_eq!(error.kind(), ErrorKind::Cancelled, "{api:?}: {error:?}");
            assert!(latency < Duration::from_secs(2), "{api:?}: {latency:?}");
            assert!(started.elapsed() < Duration::from_secs(5));
            assert_eq!(server.requests().len(), 1, "{api:?}: retried after cancel");
        }
    });
}

#[test]
fn a_cancelled_call_does_not_spoil_the_next_one() {
    watchdog(|| {
        let server = LlmServer::start();
        server.push(stalled_after(openai_stream_text(&["Hel", "lo"], true), 2));
        server.push(hello(Api::OpenAi, true));
        let model = model(Api::OpenAi, &server, http(2, Duration::from_secs(30)), true);
        let (error, _) = cancel_after_first_delta(model.as_ref());
        assert_eq!(error.kind(), ErrorKind::Cancelled);
        let response = ok(model.as_ref());
        assert_eq!(response.message.text(), "Hello");
    });
}

// ---------------------------------------------------------------------------------------------
// Stalls
// ---------------------------------------------------------------------------------------------

/// A stream that stops sending after its first events, with a 200 ms stall timeout.
fn stall_mid_stream(api: Api) {
    let server = LlmServer::start();
    server.push(stalled_after(hello(api, true), 2));
    server.push(hello(api, true));
    let model = model(api, &server, http(2, ms(200)), true);
    let started = Instant::now();
    let error = err(model.as_ref(), &CancelToken::new());
    let elapsed = started.elapsed();
    assert_eq!(error.kind(), ErrorKind::Provider, "{api:?}: {error:?}");
    assert!(elapsed >= ms(200), "{api:?}: {elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "{api:?}: {elapsed:?}");
    assert_eq!(
        server.requests().len(),
        1,
        "{api:?}: a stall is not retried"
    );
    assert!(
        server.wait_open_connections(0, PATIENCE),
        "{api:?}: the stalled request's connection stays open"
    );
    let message = error.to_string();
    assert!(
        message.contains("stalled") && message.contains("stall timeout"),
        "{api:?}: the message does not say the response stalled: {message}"
    );
}

#[test]
fn an_openai_stream_that_stalls_fails_after_the_stall_timeout_saying_so() {
    watchdog(|| stall_mid_stream(Api::OpenAi));
}

#[test]
fn an_anthropic_stream_that_stalls_fails_after_the_stall_timeout_saying_so() {
    watchdog(|| stall_mid_stream(Api::Anthropic));
}

#[test]
fn a_server_silent_before_its_headers_fails_after_the_first_byte_timeout_without_retry() {
    watchdog(|| {
        let server = LlmServer::start();
        server.push(Reply::Hang);
        server.push(hello(Api::OpenAi, false));
        // The stall timeout does not apply before the first byte: the first-byte one does.
        let mut options = http(2, ms(50));
        options.first_byte_timeout = ms(200);
        let model = model(Api::OpenAi, &server, options, false);
        let started = Instant::now();
        let error = err(model.as_ref(), &CancelToken::new());
        assert_eq!(error.kind(), ErrorKind::Provider, "{error:?}");
        assert!(error.to_string().contains("first-byte timeout"), "{error}");
        assert_eq!(details(&error).status, None);
        assert!(started.elapsed() >= ms(200));
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(server.requests().len(), 1);
    });
}

#[test]
fn a_slow_but_steady_stream_is_not_a_stall() {
    watchdog(|| {
        let server = LlmServer::start();
        server.push(paced(hello(Api::Anthropic, true), ms(30)));
        // Eight events 30 ms apart: 210 ms in all, each gap well under the stall timeout.
        let model = model(Api::Anthropic, &server, http(0, ms(150)), true);
        let response = ok(model.as_ref());
        assert_eq!(response.message.text(), "Hello");
    });
}

// ---------------------------------------------------------------------------------------------
// Connection reuse
// ---------------------------------------------------------------------------------------------

#[test]
fn sequential_requests_reuse_one_connection() {
    watchdog(|| {
        for api in BOTH {
            for stream in [false, true] {
                let server = LlmServer::start();
                let model = model(api, &server, quick(), stream);
                for _ in 0..20 {
                    server.push(hello(api, stream));
                    assert_eq!(ok(model.as_ref()).message.text(), "Hello");
                }
                assert_eq!(server.requests().len(), 20);
                assert_eq!(
                    server.connections(),
                    1,
                    "{api:?}, stream {stream}: a connection per request"
                );
            }
        }
    });
}

#[test]
fn a_failed_stream_does_not_poison_the_pool() {
    watchdog(|| {
        let server = LlmServer::start();
        let model = model(Api::OpenAi, &server, quick(), true);
        server.push(openrouter_stream_error(&["Hi"], 502, "upstream"));
        err(model.as_ref(), &CancelToken::new());
        for _ in 0..3 {
            server.push(hello(Api::OpenAi, true));
            assert_eq!(ok(model.as_ref()).message.text(), "Hello");
        }
        assert_eq!(server.requests().len(), 4);
    });
}

// ---------------------------------------------------------------------------------------------
// Secrets
// ---------------------------------------------------------------------------------------------

fn assert_no_secret(error: &Error, secret: &str) {
    let display = format!("{error}");
    let debug = format!("{error:?}");
    assert!(
        !display.contains(secret),
        "the key leaks in Display: {display}"
    );
    assert!(!debug.contains(secret), "the key leaks in Debug: {debug}");
}

#[test]
fn an_echoed_key_never_reaches_an_error() {
    watchdog(|| {
        let server = LlmServer::start();
        let echo = format!("Incorrect API key provided: {OPENAI_KEY}");
        let openai = model(Api::OpenAi, &server, quick(), false);
        let openai_stream = model(Api::OpenAi, &server, quick(), true);

        server.push(openai_error(
            401,
            "invalid_request_error",
            Some("invalid_api_key"),
            &echo,
        ));
        let error = err(openai.as_ref(), &CancelToken::new());
        assert_eq!(details(&error).status, Some(401));
        assert!(
            error.to_string().contains("Incorrect API key provided"),
            "{error}"
        );
        assert_no_secret(&error, OPENAI_KEY);

        // Not JSON at all (a proxy's page).
        server.push(Reply::Json {
            status: 403,
            headers: vec![("content-type".into(), "text/html".into())],
            body: format!("<html><body>Forbidden for key {OPENAI_KEY}</body></html>"),
        });
        assert_no_secret(&err(openai.as_ref(), &CancelToken::new()), OPENAI_KEY);

        // Inside a 200 body and inside a 200 stream.
        server.push(openrouter_error_200(401, &echo));
        assert_no_secret(&err(openai.as_ref(), &CancelToken::new()), OPENAI_KEY);
        server.push(openrouter_stream_error(&["Hi"], 401, &echo));
        assert_no_secret(
            &err(openai_stream.as_ref(), &CancelToken::new()),
            OPENAI_KEY,
        );

        // A malformed event that quotes it.
        server.push(sse_reply(vec![Step::data(format!("{{oops {OPENAI_KEY}"))]));
        assert_no_secret(
            &err(openai_stream.as_ref(), &CancelToken::new()),
            OPENAI_KEY,
        );

        let claude = model(Api::Anthropic, &server, quick(), true);
        server.push(anthropic_error(
            401,
            "authentication_error",
            &format!("invalid x-api-key {ANTHROPIC_KEY}"),
        ));
        assert_no_secret(&err(claude.as_ref(), &CancelToken::new()), ANTHROPIC_KEY);
        server.push(sse_reply(vec![Step::named(
            "error",
            format!(
                r#"{{"type": "error", "error": {{"type": "authentication_error", "message": "bad key {ANTHROPIC_KEY}"}}}}"#
            ),
        )]));
        assert_no_secret(&err(claude.as_ref(), &CancelToken::new()), ANTHROPIC_KEY);
    });
}

/// Real keys are long (OpenAI project keys run to 164 characters). An error page that quotes
/// one near the point where the message is cut (300 characters) must not leave a piece of it
/// in the error.
fn long_page_quoting_the_key(api: Api) {
    let key = format!("sk-proj-{}", "Ab3dE6gH9jK2mN5pQ8sT".repeat(5));
    let server = LlmServer::start();
    let model = config(api, &server.base_url())
        .api_key(key.clone())
        .http(http(0, Duration::from_secs(5)))
        .stream(false)
        .build()
        .unwrap();
    let page = format!(
        "<html><head><title>401 Unauthorized</title></head><body>{}<p>Rejected key: {key}</p></body></html>",
        "x".repeat(150)
    );
    server.push(Reply::Json {
        status: 401,
        headers: vec![("content-type".into(), "text/html".into())],
        body: page,
    });
    let error = err(model.as_ref(), &CancelToken::new());
    assert_eq!(details(&error).status, Some(401));
    let shown = format!("{error} {error:?}");
    let piece = &key[..24];
    assert!(
        !shown.contains(piece),
        "{api:?}: a truncated copy of the key leaks: {error}"
    );
}

#[test]
fn a_long_openai_error_page_that_quotes_the_key_does_not_leak_part_of_it() {
    watchdog(|| long_page_quoting_the_key(Api::OpenAi));
}

#[test]
fn a_long_anthropic_error_page_that_quotes_the_key_does_not_leak_part_of_it() {
    watchdog(|| long_page_quoting_the_key(Api::Anthropic));
}

#[test]
fn debug_output_of_configs_never_shows_the_key() {
    for api in BOTH {
        let config = config(api, "http://127.0.0.1:9");
        let debug = format!("{config:?}");
        assert!(!debug.contains(key(api)), "{debug}");
        assert!(debug.contains("ApiKey(***)"), "{debug}");
        let built = config.build().unwrap();
        assert!(!built.name().contains(key(api)));
    }
}

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect();
    move |name| {
        vars.iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
    }
}

#[test]
fn the_environment_configures_a_working_openai_model() {
    watchdog(|| {
        let server = LlmServer::start();
        let base = server.base_url() + "/v1";
        let config = ModelConfig::from_lookup(lookup(&[
            ("SUBTASK_MODEL", "openai:gpt-4.1-mini"),
            ("OPENAI_API_KEY", OPENAI_KEY),
            ("OPENAI_BASE_URL", &base),
            ("ANTHROPIC_API_KEY", ANTHROPIC_KEY),
        ]))
        .unwrap();
        let model = config.http(quick()).build().unwrap();
        assert_eq!(model.name(), "openai:gpt-4.1-mini");
        server.push(hello(Api::OpenAi, true));
        assert_eq!(ok(model.as_ref()).message.text(), "Hello");
        let sent = server.requests();
        assert_eq!(sent[0].path, "/v1/chat/completions");
        assert_eq!(
            sent[0].header("authorization"),
            Some("Bearer sk-test-secret")
        );
    });
}

#[test]
fn the_environment_configures_a_working_anthropic_model_from_its_key_alone() {
    watchdog(|| {
        let server = LlmServer::start();
        let base = server.base_url();
        let config = ModelConfig::from_lookup(lookup(&[
            ("ANTHROPIC_API_KEY", ANTHROPIC_KEY),
            ("ANTHROPIC_BASE_URL", &base),
        ]))
        .unwrap();
        let model = config.http(quick()).build().unwrap();
        assert_eq!(model.name(), "anthropic:claude-sonnet-5");
        server.push(hello(Api::Anthropic, true));
        assert_eq!(ok(model.as_ref()).message.text(), "Hello");
        let sent = server.requests();
        assert_eq!(sent[0].path, "/v1/messages");
        assert_eq!(sent[0].header("x-api-key"), Some(ANTHROPIC_KEY));
    });
}

#[test]
fn missing_settings_are_config_errors_naming_the_variable() {
    let error = ModelConfig::from_lookup(lookup(&[])).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Config);
    assert!(error.to_string().contains("SUBTASK_MODEL"), "{error}");

    // The other provider's key does not count; a blank one is no key.
    for vars in [
        &[
            ("SUBTASK_MODEL", "openai:gpt-4.1-mini"),
            ("ANTHROPIC_API_KEY", ANTHROPIC_KEY),
        ][..],
        &[("SUBTASK_MODEL", "mini"), ("OPENAI_API_KEY", "  ")][..],
    ] {
        let config = ModelConfig::from_lookup(lookup(vars)).unwrap();
        let error = config.build().err().expect("no key, no model");
        assert_eq!(error.kind(), ErrorKind::Config);
        assert!(error.to_string().contains("OPENAI_API_KEY"), "{error}");
        assert!(!error.to_string().contains(ANTHROPIC_KEY), "{error}");
    }

    let config =
        ModelConfig::from_lookup(lookup(&[("SUBTASK_MODEL", "anthropic:claude-haiku-4-5")]))
            .unwrap();
    let error = config.build().err().unwrap();
    assert_eq!(error.kind(), ErrorKind::Config);
    assert!(error.to_string().contains("ANTHROPIC_API_KEY"), "{error}");

    let config =
        ModelConfig::from_lookup(lookup(&[("SUBTASK_MODEL", "openai-compat:qwen3")])).unwrap();
    let error = config.build().err().unwrap();
    assert_eq!(error.kind(), ErrorKind::Config);
    assert!(error.to_string().contains("OPENAI_BASE_URL"), "{error}");
}

#[test]
fn unknown_providers_and_models_are_config_errors() {
    for spec in ["gemini:pro", "sonet", "openai:", ""] {
        let error = ModelConfig::parse(spec).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Config, "{spec:?}");
    }
    let error = ModelConfig::parse("gemini:pro").unwrap_err();
    assert!(error.to_string().contains("gemini"), "{error}");
    let error = ModelConfig::from_lookup(lookup(&[
        ("SUBTASK_MODEL", "gemini:pro"),
        ("OPENAI_API_KEY", OPENAI_KEY),
    ]))
    .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Config);
    assert!(error.to_string().contains("gemini"), "{error}");
}

// ---------------------------------------------------------------------------------------------
// Concurrency
// ---------------------------------------------------------------------------------------------

#[test]
fn one_model_serves_several_threads_at_once() {
    watchdog(|| {
        for api in BOTH {
            let server = LlmServer::start();
            for _ in 0..8 {
                server.push(paced(hello(api, true), ms(5)));
            }
            let model = model(api, &server, quick(), true);
            std::thread::scope(|scope| {
                let callers: Vec<_> = (0..8)
                    .map(|_| scope.spawn(|| ok(model.as_ref()).message.text()))
                    .collect();
                for caller in callers {
                    assert_eq!(caller.join().unwrap(), "Hello", "{api:?}");
                }
            });
            assert_eq!(server.requests().len(), 8);
            assert!(
                server.connections() <= 8,
                "{api:?}: {}",
                server.connections()
            );
        }
    });
}

// ---------------------------------------------------------------------------------------------
// More statuses and waits
// ---------------------------------------------------------------------------------------------

#[test]
fn timeouts_and_conflicts_408_409_are_retried() {
    watchdog(|| {
        for api in BOTH {
            let server = LlmServer::start();
            for status in [408, 409] {
                let reply = match api {
                    Api::OpenAi => openai_error(status, "server_error", None, "try again"),
                    Api::Anthropic => anthropic_error(status, "api_error", "try again"),
                };
                server.push(with_header(reply, "retry-after-ms", "5"));
            }
            server.push(hello(api, false));
            ok(model(api, &server, quick(), false).as_ref());
            assert_eq!(server.requests().len(), 3, "{api:?}");
        }
    });
}

#[test]
fn a_large_error_page_is_quoted_not_called_empty() {
    watchdog(|| {
        // A proxy's HTML page over 64 KiB: its start is what the user needs to see.
        let server = LlmServer::start();
        server.push(Reply::Json {
            status: 502,
            headers: vec![("content-type".into(), "text/html".into())],
            body: format!(
                "<html><title>502 Bad Gateway</title>{}</html>",
                "<!-- padding -->".repeat(5000)
            ),
        });
        let model = model(Api::OpenAi, &server, http(0, Duration::from_secs(5)), false);
        let error = err(model.as_ref(), &CancelToken::new());
        assert_eq!(details(&error).status, Some(502));
        assert!(
            error.to_string().contains("502 Bad Gateway"),
            "the page is not quoted: {error}"
        );
        assert!(!error.to_string().contains("empty body"), "{error}");
    });
}

#[test]
fn cancelling_while_waiting_for_the_response_headers_returns_promptly() {
    watchdog(|| {
        for api in BOTH {
            let server = LlmServer::start();
            server.push(delayed(hello(api, false), Duration::from_secs(30)));
            let model = model(api, &server, http(2, Duration::from_secs(60)), false);
            let token = CancelToken::new();
            let (result, latency) = std::thread::scope(|scope| {
                let canceller = scope.spawn(|| {
                    assert_eq!(server.wait_requests(1, PATIENCE).len(), 1);
                    let at = Instant::now();
                    token.cancel();
                    at
                });
                let result = call(model.as_ref(), &token);
                let returned = Instant::now();
                let cancelled_at = canceller.join().unwrap();
                (result, returned.saturating_duration_since(cancelled_at))
            });
            eprintln!(
                "{api:?}: cancel while waiting for headers returned {latency:?} after cancel()"
            );
            let error = result.expect_err("a cancelled call answered");
            assert_eq!(error.kind(), ErrorKind::Cancelled, "{api:?}: {error:?}");
            assert!(latency < Duration::from_secs(2), "{api:?}: {latency:?}");
            assert_eq!(server.requests().len(), 1);
        }
    });
}
