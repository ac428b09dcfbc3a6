//! The scripted LLM server of `tests/support/llm_server.rs`, checked with a hand-written HTTP
//! client on a raw `TcpStream`: keep-alive, chunked SSE framing, every misbehaviour, the
//! recording of requests, and the well-formedness of every fixture builder.

mod support;

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use crossbeam_channel::bounded;
use serde_json::{Value, json};
use support::llm_server::*;
use support::{PATIENCE, ms, watchdog};

/// How long dropping a server may take before a test calls it a hang.
const DROP_LIMIT: Duration = Duration::from_secs(1);

// ---------------------------------------------------------------------------------------------
// A raw HTTP/1.1 client
// ---------------------------------------------------------------------------------------------

struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

struct Head {
    status: u16,
    headers: Vec<(String, String)>,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    fn is_chunked(&self) -> bool {
        self.header("transfer-encoding") == Some("chunked")
    }
}

#[derive(Debug, PartialEq)]
enum Chunk {
    Data(String),
    /// The zero chunk and the blank line after it.
    End,
    /// The connection closed before the zero chunk.
    Eof,
}

struct Response {
    head: Head,
    body: String,
    /// For a chunked body: each chunk's payload, in order.
    chunks: Vec<String>,
    /// For a chunked body: whether it ended with the zero chunk (not a closed connection).
    complete: bool,
}

impl Response {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|error| panic!("not JSON ({error}): {:?}", self.body))
    }
}

impl Client {
    fn connect(server: &LlmServer) -> Client {
        let stream = TcpStream::connect(server.address()).expect("connect to the server");
        // A server that stops answering fails the test instead of hanging it.
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        Client {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
        }
    }

    fn send_raw(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).expect("write the request");
    }

    fn send(&mut self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) {
        let mut request = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        self.send_raw(request.as_bytes());
    }

    fn post(&mut self, path: &str, body: &Value) {
        let headers = [("Content-Type", "application/json")];
        self.send("POST", path, &headers, &body.to_string());
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("read a line");
        line
    }

    fn head(&mut self) -> Head {
        let status_line = self.line();
        let mut parts = status_line.split_whitespace();
        assert_eq!(
            parts.next(),
            Some("HTTP/1.1"),
            "status line {status_line:?}"
        );
        let status = parts.next().and_then(|s| s.parse().ok()).expect("a status");
        let mut headers = Vec::new();
        loop {
            let line = self.line();
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').expect("a header line");
            headers.push((name.to_string(), value.trim().to_string()));
        }
        Head { status, headers }
    }

    fn chunk(&mut self) -> Chunk {
        let size_line = self.line();
        if size_line.is_empty() {
            return Chunk::Eof;
        }
        let size = usize::from_str_radix(size_line.trim_end(), 16).expect("a chunk size");
        if size == 0 {
            assert_eq!(self.line(), "\r\n", "the zero chunk ends with a blank line");
            return Chunk::End;
        }
        let mut data = vec![0; size];
        self.reader.read_exact(&mut data).expect("the chunk's data");
        assert_eq!(self.line(), "\r\n", "a chunk ends with CRLF");
        Chunk::Data(String::from_utf8(data).expect("UTF-8 chunk"))
    }

    fn response(&mut self) -> Response {
        let head = self.head();
        let mut chunks = Vec::new();
        let mut complete = true;
        let body = if head.is_chunked() {
            loop {
                match self.chunk() {
                    Chunk::Data(data) => chunks.push(data),
                    Chunk::End => break,
                    Chunk::Eof => {
                        complete = false;
                        break;
                    }
                }
            }
            chunks.concat()
        } else {
            let length: usize = head.header("content-length").unwrap().parse().unwrap();
            let mut body = vec![0; length];
            self.reader.read_exact(&mut body).unwrap();
            String::from_utf8(body).unwrap()
        };
        Response {
            head,
            body,
            chunks,
            complete,
        }
    }

    /// Reads until the server closes: the bytes, or the error that ended the read.
    fn rest(&mut self) -> io::Result<Vec<u8>> {
        let mut rest = Vec::new();
        self.reader.read_to_end(&mut rest).map(|_| rest)
    }
}

/// Drops `server` on another thread; whether that returned within [`DROP_LIMIT`].
fn drops_quickly(server: LlmServer) -> bool {
    let (dropped, done) = bounded(1);
    std::thread::spawn(move || {
        drop(server);
        let _ = dropped.send(());
    });
    done.recv_timeout(DROP_LIMIT).is_ok()
}

/// The events of an SSE body: `(event name, data)` with multi-line data joined by `\n`,
/// comments skipped and `data:` read with or without its space.
fn sse_events(text: &str) -> Vec<(Option<String>, String)> {
    let mut events = Vec::new();
    let mut name = None;
    let mut data: Vec<&str> = Vec::new();
    for line in text.split('\n') {
        if line.is_empty() {
            if !data.is_empty() {
                events.push((name.take(), data.join("\n")));
                data.clear();
            }
            name = None;
        } else if line.starts_with(':') {
            continue;
        } else if let Some(value) = line.strip_prefix("data:") {
            data.push(value.strip_prefix(' ').unwrap_or(value));
        } else if let Some(value) = line.strip_prefix("event:") {
            name = Some(value.trim_start().to_string());
        }
    }
    assert!(data.is_empty(), "an event without its blank line: {text:?}");
    events
}

fn event_names(events: &[(Option<String>, String)]) -> Vec<&str> {
    events
        .iter()
        .map(|(name, _)| name.as_deref().unwrap_or("-"))
        .collect()
}

fn request_body() -> Value {
    json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})
}

// ---------------------------------------------------------------------------------------------
// Connections and framing
// ---------------------------------------------------------------------------------------------

#[test]
fn two_requests_on_one_connection_get_the_two_queued_replies() {
    watchdog(|| {
        let server = LlmServer::start();
        assert!(server.base_url().starts_with("http://127.0.0.1:"));
        assert!(!server.base_url().ends_with('/'));
        server.push_all([
            openai_text("first", usage(5, 1)),
            openai_text("second", usage(6, 1)),
        ]);

        let mut client = Client::connect(&server);
        client.post("/v1/chat/completions", &request_body());
        let first = client.response();
        client.post("/v1/chat/completions", &request_body());
        let second = client.response();

        assert_eq!(first.head.status, 200);
        assert_eq!(first.head.header("content-type"), Some("application/json"));
        assert_eq!(first.json()["choices"][0]["message"]["content"], "first");
        assert_eq!(second.json()["choices"][0]["message"]["content"], "second");
        assert_eq!(first.json()["object"], "chat.completion");
        assert_ne!(first.json()["id"], second.json()["id"]);
        assert_eq!(server.connections(), 1);
        assert_eq!(server.open_connections(), 1);
        assert_eq!(server.pending_replies(), 0);

        drop(client);
        assert!(server.wait_open_connections(0, PATIENCE));
        assert_eq!(server.connections(), 1);
    });
}

#[test]
fn a_stream_is_chunked_one_event_per_chunk_and_ends_with_the_zero_chunk() {
    watchdog(|| {
        let server = LlmServer::start();
        server.push(openai_stream_text(&["Hel", "lo"], true));
        server.push(openai_text("after the stream", usage(1, 1)));
        let mut client = Client::connect(&server);

        client.post("/v1/chat/completions", &request_body());
        let stream = client.response();
        assert_eq!(stream.head.status, 200);
        assert!(stream.head.is_chunked());
        assert_eq!(
            stream.head.header("content-type"),
            Some("text/event-stream")
        );
        assert_eq!(stream.head.header("content-length"), None);
        assert!(stream.complete, "the stream ends with the zero chunk");
        // role, two contents, finish, usage, [DONE]
        assert_eq!(stream.chunks.len(), 6);
        for chunk in &stream.chunks {
            assert!(
                chunk.starts_with("data: ") && chunk.ends_with("}\n\n")
                    || chunk == "data: [DONE]\n\n",
                "{chunk:?}"
            );
        }
        let chunks: Vec<Value> = stream.chunks[..5]
            .iter()
            .map(|chunk| serde_json::from_str(&chunk["data: ".len()..]).unwrap())
            .collect();
        assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
        assert_eq!(chunks[1]["choices"][0]["delta"]["content"], "Hel");
        assert_eq!(chunks[2]["choices"][0]["delta"]["content"], "lo");
        assert_eq!(chunks[3]["choices"][0]["finish_reason"], "stop");
        assert_eq!(chunks[4]["choices"], json!([]));
        assert_eq!(chunks[4]["usage"]["total_tokens"], 12);
        assert!(chunks[..4].iter().all(|chunk| chunk["usage"].is_null()));
        assert!(chunks.iter().all(|chunk| chunk["id"] == chunks[0]["id"]));

        // The connection is reusable once the stream has ended.
        client.post("/v1/chat/completions", &request_body());
        let after = client.response();
        assert_eq!(
            after.json()["choices"][0]["message"]["content"],
            "after the stream"
        );
        assert_eq!(server.connections(), 1);
    });
}

#[test]
fn anthropic_streams_name_every_event_and_follow_the_captured_order() {
    watchdog(|| {
        let server = LlmServer::start();
        let read = r#"{"path": "README.md"}"#;
        server.push(anthropic_stream_tool_use(
            "Let me look.",
            &[
                ("toolu_01A", "read_file", &[&read[..9], &read[9..]]),
                ("toolu_01B", "list_files", &[]),
            ],
            usage(377, 65),
        ));
        server.push(anthropic_captured_tool_use_stream());
        let mut client = Client::connect(&server);

        client.post("/v1/messages", &json!({}));
        let built = client.response();
        assert!(
            built
                .head
                .header("request-id")
                .unwrap()
                .starts_with("req_011")
        );
        let events = sse_events(&built.body);
        assert_eq!(built.chunks.len(), events.len(), "one event per chunk");
        assert_eq!(
            event_names(&events),
            [
                "message_start",
                "content_block_start",
                "ping",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_stop",
                "message_delta",
                "message_stop",
            ]
        );
        let data: Vec<Value> = events
            .iter()
            .map(|(_, data)| serde_json::from_str(data).unwrap())
            .collect();
        assert_eq!(data[0]["message"]["usage"]["input_tokens"], 377);
        assert!(data[0]["message"]["stop_reason"].is_null());
        assert_eq!(
            data[6]["delta"]["partial_json"], "",
            "the first fragment is empty"
        );
        let input: String = data[6..9]
            .iter()
            .map(|event| event["delta"]["partial_json"].as_str().unwrap())
            .collect();
        assert_eq!(
            serde_json::from_str::<Value>(&input).unwrap(),
            json!({"path": "README.md"})
        );
        assert_eq!(data[10]["content_block"]["name"], "list_files");
        assert_eq!(data[12]["delta"]["stop_reason"], "tool_use");
        assert_eq!(data[12]["usage"]["output_tokens"], 65);

        client.post("/v1/messages", &json!({}));
        let captured = client.response();
        assert!(captured.complete);
        assert_eq!(captured.chunks.len(), 14);
        assert_eq!(
            captured.chunks[2],
            "event: ping\ndata: {\"type\": \"ping\"}\n\n"
        );
        assert!(captured.chunks[7].contains(r#""partial_json":"{\"locati""#));
    });
}

#[test]
fn replies_are_served_in_order_across_connections() {
    watchdog(|| {
        let server = LlmServer::start();
        server.push_all((1..=3).map(|n| openai_text(&format!("reply {n}"), usage(1, 1))));
        let mut first = Client::connect(&server);
        let mut second = Client::connect(&server);
        let text = |client: &mut Client| {
            client.post("/v1/chat/completions", &request_body());
            client.response().json()["choices"][0]["message"]["content"].clone()
        };
        assert_eq!(text(&mut first), "reply 1");
        assert_eq!(text(&mut second), "reply 2");
        assert_eq!(text(&mut first), "reply 3");
        assert_eq!(server.connections(), 2);
        assert_eq!(server.open_connections(), 2);
    });
}

#[test]
fn a_request_with_connection_close_gets_its_reply_then_the_end_of_the_connection() {
    watchdog(|| {
        let server = LlmServer::start();
        server.push(openai_text("bye", usage(1, 1)));
        let mut client = Client::connect(&server);
        client.send(
            "POST",
            "/v1/chat/completions",
            &[("Connection", "close")],
            "{}",
        );
        let response = client.response();
        assert_eq!(response.head.header("connection"), Some("close"));
        assert_eq!(client.rest().unwrap(), b"");
        assert!(server.wait_open_connections(0, PATIENCE));
    });
}

// ---------------------------------------------------------------------------------------------
// Recording
// ---------------------------------------------------------------------------------------------

#[test]
fn requests_are_recorded_with_lowercased_headers_and_decoded_bodies() {
    watchdog(|| {
        let server = LlmServer::start();
        server.push_all([
            openai_text("one", usage(1, 1)),
            anthropic_text("two", usage(1, 1)),
        ]);
        let mut client = Client::connect(&server);
        let body = request_body();
        let headers = [
            ("Authorization", "Bearer sk-test"),
            ("Content-Type", "application/json"),
            ("X-Custom", "  padded  "),
        ];
        client.send(
            "POST",
            "/v1/chat/completions?x=1",
            &headers,
            &body.to_string(),
        );
        client.response();
        // A chunked request body, split in two chunks with an extension and a trailer.
        client.send_raw(
            b"POST /v1/messages HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\
              Anthropic-Version: 2023-06-01\r\n\r\n\
              7;ext=1\r\n{\"a\": 1\r\n1\r\n}\r\n0\r\nTrailer: t\r\n\r\n",
        );
        client.response();

        let recorded = server.wait_requests(2, PATIENCE);
        assert_eq!(recorded.len(), 2);
        let first = &recorded[0];
        assert_eq!(first.method, "POST");
        assert_eq!(first.path, "/v1/chat/completions?x=1");
        assert_eq!(first.header("authorization"), Some("Bearer sk-test"));
        assert_eq!(first.header("AUTHORIZATION"), Some("Bearer sk-test"));
        assert_eq!(first.header("x-custom"), Some("padded"));
        assert_eq!(first.header("missing"), None);
        assert!(
            first
                .headers
                .iter()
                .all(|(name, _)| *name == name.to_ascii_lowercase())
        );
        assert_eq!(
            first.headers[0],
            ("host".to_string(), "127.0.0.1".to_string())
        );
        assert_eq!(first.json(), body);
        let second = &recorded[1];
        assert_eq!(second.path, "/v1/messages");
        assert_eq!(second.header("anthropic-version"), Some("2023-06-01"));
        assert_eq!(second.body, "{\"a\": 1}");
        assert_eq!(second.json(), json!({"a": 1}));
        assert!(first.at <= second.at);
        assert_eq!(server.requests().len(), 2);
    });
}

#[test]
fn wait_requests_returns_what_arrived_when_the_limit_passes() {
    watchdog(|| {
        let server = LlmServer::start();
        let started = Instant::now();
        assert!(server.wait_requests(1, ms(50)).is_empty());
        assert!(started.elapsed() >= ms(50));
        assert!(!server.wait_open_connections(1, ms(10)));
    });
}

#[test]
fn a_request_without_a_queued_reply_gets_a_500_that_says_so() {
    watchdog(|| {
        let server = LlmServer::start();
        let mut client = Client::connect(&server);
        client.post("/v1/chat/completions", &request_body());
        let response = client.response();
        assert_eq!(response.head.status, 500);
        assert_eq!(
            response.json(),
            json!({"error": {
                "message": "llm test server: no reply queued for POST /v1/chat/completions",
                "type": "server_error", "param": null, "code": null
            }})
        );
        // The connection stays usable.
        server.push(openai_text("now there is one", usage(1, 1)));
        client.post("/v1/chat/completions", &request_body());
        assert_eq!(client.response().head.status, 200);
        assert_eq!(server.requests().len(), 2);
    });
}

#[test]
fn a_malformed_request_gets_a_400_and_a_closed_connection() {
    watchdog(|| {
        let server = LlmServer::start();
        let mut client = Client::connect(&server);
        client.send_raw(b"POST /v1/messages HTTP/1.1\r\nno colon here\r\n\r\n");
        let response = client.response();
        assert_eq!(response.head.status, 400);
        assert!(response.body.contains("malformed header line"));
        assert_eq!(client.rest().unwrap(), b"");
        assert!(server.requests().is_empty());
    });
}

// ---------------------------------------------------------------------------------------------
// Misbehaviour
// ---------------------------------------------------------------------------------------------

#[test]
fn reset_closes_the_connection_without_a_response() {
    watchdog(|| {
        let server = LlmServer::start();
        server.push_all([Reply::Reset, openai_text("fine again", usage(1, 1))]);
        let mut client = Client::connect(&server);
        client.post("/v1/chat/completions", &request_body());
        // End of file (or a reset) where the status line should be.
        match client.rest() {
            Ok(bytes) => assert!(bytes.is_empty(), "no response bytes, got {bytes:?}"),
            Err(error) => assert_ne!(error.kind(), io::ErrorKind::WouldBlock),
        }
        assert_eq!(server.wait_requests(1, PATIENCE).len(), 1);
        assert!(server.wait_open_connections(0, PATIENCE));

        let mut again = Client::connect(&server);
        again.post("/v1/chat/completions", &request_body());
        assert_eq!(again.response().head.status, 200);
        assert_eq!(server.connections(), 2);
    });
}

#[test]
fn a_truncated_stream_closes_before_its_end_without_the_zero_chunk() {
    watchdog(|| {
        let server = LlmServer::start();
        server.push(truncated(openai_stream_text(&["Hel", "lo"], true)));
        server.push(truncated(anthropic_stream_text(
            &["Hel", "lo"],
            usage(9, 2),
        )));
        server.push(truncated_after(
            openai_stream_text(&["a", "b", "c"], false),
            2,
        ));

        let mut client = Client::connect(&server);
        client.post("/v1/chat/completions", &request_body());
        let openai = client.response();
        assert!(!openai.complete);
        assert_eq!(openai.chunks.len(), 3, "role and two contents");
        assert!(
            !openai.body.contains("[DONE]") && !openai.body.contains("\"finish_reason\":\"stop\"")
        );

        let mut client = Client::connect(&server);
        client.post("/v1/messages", &json!({}));
        let anthropic = client.response();
        assert!(!anthropic.complete);
        let names = event_names(&sse_events(&anthropic.body)).join(" ");
        assert!(names.ends_with("content_block_stop"), "{names}");

        let mut client = Client::connect(&server);
        client.post("/v1/chat/completions", &request_body());
        let cut = client.response();
        assert!(!cut.complete);
        assert_eq!(cut.chunks.len(), 2);
        assert!(server.wait_open_connections(0, PATIENCE));
    });
}

#[test]
fn hang_does_not_keep_drop_from_returning() {
    watchdog(|| {
        let server = LlmServer::start();
        server.push(Reply::Hang);
        let mut client = Client::connect(&server);
        client.post("/v1/chat/completions", &request_body());
        assert_eq!(server.wait_requests(1, PATIENCE).len(), 1);
        assert!(drops_quickly(server), "drop blocked on a hanging reply");
        assert_eq!(
            client.rest().unwrap(),
            b"",
            "the client sees the connection end"
        );
    });
}

#[test]
fn a_hanging_reply_ends_when_the_client_goes_away() {
    watchdog(|| {
        let server = LlmServer::start();
        server.push(Reply::Hang);
        let mut client = Client::connect(&server);
        client.post("/v1/chat/completions", &request_body());
        assert_eq!(server.wait_requests(1, PATIENCE).len(), 1);
        client.writer.shutdown(Shutdown::Both).unwrap();
        assert!(server.wait_open_connections(0, PATIENCE));
    });
}

#[test]
fn stall_does_not_keep_drop_from_returning() {
    watchdog(|| {
        let server = LlmServer::start();
        server.push(stalled_after(openai_stream_text(&["a", "b"], false), 2));
        let mut client = Client::connect(&server);
        client.post("/v1/chat/completions", &request_body());
        let head = client.head();
        assert!(head.is_chunked());
        assert!(matches!(client.chunk(), Chunk::Data(data) if data.contains("\"role\"")));
        assert!(matches!(client.chunk(), Chunk::Data(data) if data.contains("\"content\":\"a\"")));
        assert!(drops_quickly(server), "drop blocked on a stalled stream");
        assert_eq!(client.chunk(), Chunk::Eof, "no more events, no zero chunk");
    });
}

#[test]
fn a_stalled_stream_ends_when_the_client_goes_away() {
    watchdog(|| {
        let server = LlmServer::start();
        server.push(stalled_after(anthropic_stream_text(&["x"], usage(1, 1)), 1));
        let mut client = Client::connect(&server);
        client.post("/v1/messages", &json!({}));
        client.head();
        assert!(
            matches!(client.chunk(), Chunk::Data(data) if data.starts_with("event: message_start\n"))
        );
        drop(client);
        assert!(server.wait_open_connections(0, PATIENCE));
    });
}

#[test]
fn pauses_and_delays_are_cut_short_by_drop() {
    watchdog(|| {
        let server = LlmServer::start();
        server.push(sse_reply(vec![
            Step::data("first"),
            Step::Pause(Duration::from_secs(60)),
            Step::data("never"),
        ]));
        server.push(delayed(
            openai_text("late", usage(1, 1)),
            Duration::from_secs(60),
        ));
        let mut paused = Client::connect(&server);
        paused.post("/v1/chat/completions", &request_body());
        paused.head();
        assert_eq!(paused.chunk(), Chunk::Data("data: first\n\n".into()));
        let mut delayed = Client::connect(&server);
        delayed.post("/v1/chat/completions", &request_body());
        assert_eq!(server.wait_requests(2, PATIENCE).len(), 2);

        assert!(drops_quickly(server), "drop waited for a pause");
        assert_eq!(paused.chunk(), Chunk::Eof);
        assert_eq!(delayed.rest().unwrap(), b"");
    });
}

#[test]
fn drop_closes_idle_keep_alive_connections() {
    watchdog(|| {
        let server = LlmServer::start();
        server.push(openai_text("hi", usage(1, 1)));
        let mut client = Client::connect(&server);
        let _idle = Client::connect(&server);
        client.post("/v1/chat/completions", &request_body());
        client.response();
        assert!(drops_quickly(server), "drop waited for an idle connection");
        assert_eq!(client.rest().unwrap(), b"");
    });
}

#[test]
fn drop_of_an_unused_server_returns() {
    watchdog(|| {
        assert!(drops_quickly(LlmServer::start()));
    });
}

#[test]
fn paced_streams_space_their_events() {
    watchdog(|| {
        let server = LlmServer::start();
        let gap = ms(40);
        server.push(paced(openai_stream_text(&["a"], false), gap));
        server.push(delayed(openai_text("late", usage(1, 1)), gap));
        let mut client = Client::connect(&server);
        let asked = Instant::now();
        client.post("/v1/chat/completions", &request_body());
        client.head();
        let mut events = 0;
        while let Chunk::Data(_) = client.chunk() {
            events += 1;
        }
        assert_eq!(events, 4, "role, content, finish, [DONE]");
        // Three pauses separate the four events, all of them after the request was sent.
        assert!(asked.elapsed() >= gap * 3);

        let asked = Instant::now();
        client.post("/v1/chat/completions", &request_body());
        assert_eq!(client.response().head.status, 200);
        assert!(asked.elapsed() >= gap);
    });
}

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

#[test]
fn error_fixtures_carry_their_bodies_and_retry_headers() {
    watchdog(|| {
        let server = LlmServer::start();
        server.push_all([
            with_header(
                with_header(openai_rate_limit(), "retry-after-ms", "250.5"),
                "retry-after",
                "1",
            ),
            openai_quota_exceeded(),
            openai_error(503, "server_error", None, "The server is overloaded."),
            vllm_error(400, "BadRequestError", "max_tokens is too large"),
            anthropic_error(400, "invalid_request_error", "max_tokens: Field required"),
            anthropic_overloaded(),
            anthropic_rate_limited("7"),
            anthropic_spend_limit(),
            openrouter_error_200(402, "Insufficient credits"),
            openai_quirk_unknown_parameter("max_completion_tokens"),
            anthropic_overloaded_429(),
            with_header(openai_text("hi", usage(1, 1)), "X-Request-Id", "req_fixed"),
        ]);
        let mut client = Client::connect(&server);
        let mut next = || {
            client.post("/v1/chat/completions", &request_body());
            client.response()
        };

        let limited = next();
        assert_eq!(limited.head.status, 429);
        assert_eq!(limited.head.header("retry-after-ms"), Some("250.5"));
        assert_eq!(limited.head.header("retry-after"), Some("1"));
        assert_eq!(
            limited.head.header("x-ratelimit-reset-tokens"),
            Some("6m0s")
        );
        assert!(
            limited
                .head
                .header("x-request-id")
                .unwrap()
                .starts_with("req_")
        );
        assert_eq!(limited.json()["error"]["code"], "rate_limit_exceeded");
        assert!(limited.json()["error"]["param"].is_null());

        let quota = next();
        assert_eq!(quota.head.status, 429);
        assert_eq!(quota.json()["error"]["code"], "insufficient_quota");
        assert_eq!(quota.head.header("retry-after"), None);

        let unavailable = next();
        assert_eq!(unavailable.head.status, 503);
        assert!(unavailable.json()["error"]["code"].is_null());

        let vllm = next();
        assert_eq!(
            vllm.json(),
            json!({"object": "error", "message": "max_tokens is too large",
                   "type": "BadRequestError", "param": null, "code": 400})
        );

        let invalid = next();
        let body = invalid.json();
        assert_eq!(invalid.head.status, 400);
        assert_eq!(body["type"], "error");
        assert_eq!(body["error"]["type"], "invalid_request_error");
        assert_eq!(
            Some(body["request_id"].as_str().unwrap()),
            invalid.head.header("request-id")
        );

        let overloaded = next();
        assert_eq!(overloaded.head.status, 529);
        assert_eq!(overloaded.json()["error"]["type"], "overloaded_error");

        let rate_limited = next();
        assert_eq!(rate_limited.head.status, 429);
        assert_eq!(rate_limited.head.header("retry-after"), Some("7"));
        assert_eq!(rate_limited.json()["error"]["type"], "rate_limit_error");

        let spend = next();
        assert_eq!(spend.head.status, 429);
        assert_eq!(spend.head.header("retry-after"), None);
        assert_eq!(
            spend.json()["error"]["details"]["error_code"],
            "enforced_spend_limit_reached"
        );

        let openrouter = next();
        assert_eq!(openrouter.head.status, 200);
        assert_eq!(openrouter.json()["error"]["code"], 402);

        let unknown = next();
        assert_eq!(unknown.head.status, 400);
        assert_eq!(
            unknown.json()["error"]["message"],
            "Unrecognized request argument supplied: max_completion_tokens"
        );

        let overloaded_429 = next();
        assert_eq!(overloaded_429.head.status, 429);
        assert_eq!(overloaded_429.json()["error"]["type"], "overloaded_error");

        let replaced = next();
        let ids: Vec<&str> = replaced
            .head
            .headers
            .iter()
            .filter(|(name, _)| name.eq_ignore_ascii_case("x-request-id"))
            .map(|(_, value)| value.as_str())
            .collect();
        assert_eq!(
            ids,
            ["req_fixed"],
            "with_header replaces a header of the same name"
        );
    });
}

#[test]
fn mid_stream_errors_arrive_after_content_in_a_200_stream() {
    watchdog(|| {
        let server = LlmServer::start();
        server.push(openrouter_stream_error(
            &["Hel"],
            502,
            "Provider returned error",
        ));
        server.push(anthropic_stream_overloaded(&["Hel"]));
        let mut client = Client::connect(&server);

        client.post("/v1/chat/completions", &request_body());
        let openrouter = client.response();
        assert_eq!(openrouter.head.status, 200);
        assert!(openrouter.complete);
        assert_eq!(openrouter.chunks[0], ": OPENROUTER PROCESSING\n\n");
        let events = sse_events(&openrouter.body);
        let last: Value = serde_json::from_str(&events.last().unwrap().1).unwrap();
        assert_eq!(
            last,
            json!({"error": {"code": 502, "message": "Provider returned error"}})
        );
        assert!(!openrouter.body.contains("[DONE]"));

        client.post("/v1/messages", &json!({}));
        let anthropic = client.response();
        assert_eq!(anthropic.head.status, 200);
        assert_eq!(
            anthropic.chunks.last().unwrap(),
            "event: error\ndata: {\"type\": \"error\", \"error\": {\"type\": \"overloaded_error\", \"message\": \"Overloaded\"}}\n\n"
        );
    });
}

/// What a careful client makes of an OpenAI chat completion, streamed or not: the text and
/// the tool calls `(id, name, arguments)` (arguments kept as sent), plus the finish reason.
#[derive(Debug, Default, PartialEq)]
struct Assembled {
    text: String,
    calls: Vec<(Value, String, Value)>,
    finish_reason: Value,
}

fn assemble_openai(response: &Response) -> Assembled {
    let mut assembled = Assembled::default();
    if !response.head.is_chunked() {
        let choice = &response.json()["choices"][0];
        assembled.text = choice["message"]["content"].as_str().unwrap_or("").into();
        for call in choice["message"]["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let id = call.get("id").cloned().unwrap_or(Value::Null);
            let name = call["function"]["name"].as_str().unwrap().to_string();
            assembled
                .calls
                .push((id, name, call["function"]["arguments"].clone()));
        }
        assembled.finish_reason = choice["finish_reason"].clone();
        return assembled;
    }
    let events = sse_events(&response.body);
    assert_eq!(events.last().unwrap().1, "[DONE]");
    // Keyed on index, as the OpenAI spec has it; quirk streams are checked separately.
    let mut calls: Vec<(Value, String, String)> = Vec::new();
    for (_, data) in &events[..events.len() - 1] {
        let chunk: Value = serde_json::from_str(data).unwrap();
        assert_eq!(chunk["object"], "chat.completion.chunk");
        for choice in chunk["choices"].as_array().unwrap() {
            if let Some(text) = choice["delta"]["content"].as_str() {
                assembled.text.push_str(text);
            }
            if !choice["finish_reason"].is_null() {
                assembled.finish_reason = choice["finish_reason"].clone();
            }
            for call in choice["delta"]["tool_calls"]
                .as_array()
                .into_iter()
                .flatten()
            {
                let index = call["index"].as_u64().unwrap_or(0) as usize;
                if calls.len() <= index {
                    calls.resize(index + 1, (Value::Null, String::new(), String::new()));
                }
                let slot = &mut calls[index];
                if let Some(id) = call.get("id") {
                    slot.0 = id.clone();
                }
                if let Some(name) = call["function"]["name"].as_str() {
                    slot.1 = name.to_string();
                }
                if let Some(fragment) = call["function"]["arguments"].as_str() {
                    slot.2.push_str(fragment);
                }
            }
        }
    }
    assembled.calls = calls
        .into_iter()
        .map(|(id, name, arguments)| (id, name, json!(arguments)))
        .collect();
    assembled
}

#[test]
fn openai_fixtures_assemble_into_what_they_promise() {
    watchdog(|| {
        let server = LlmServer::start();
        let read = r#"{"path":"README.md"}"#;
        let list = r#"{"dir":"src"}"#;
        let fragments: &[&str] = &[&read[..8], &read[8..]];
        server.push_all([
            openai_text("Hello", usage(10, 2)),
            openai_length("Hel", usage(10, 1)),
            openai_tool_calls(
                &[("call_1", "read_file", read), ("call_2", "list", list)],
                usage(10, 20),
            ),
            openai_stream_text(&["Hel", "lo"], false),
            openai_stream_tool_calls(
                &[
                    ("call_1", "read_file", fragments),
                    ("call_2", "list", &[list]),
                ],
                true,
            ),
            openai_quirk_arguments_object("call_1", "read_file", json!({"path": "README.md"})),
            openai_quirk_missing_ids(&[("read_file", read), ("list", list)]),
            openai_quirk_empty_ids(&[("read_file", read)]),
            openai_quirk_integer_ids(&[(7, "read_file", read)]),
            openai_quirk_stop_with_tool_calls(&[("call_1", "read_file", read)]),
            openai_stream_quirk_stop_with_tool_calls(&[("call_1", "read_file", fragments)]),
            openai_stream_quirk_missing_ids(&[("read_file", fragments)]),
            openai_stream_quirk_comments(&["Hel", "lo"]),
            openai_stream_quirk_data_without_space(&["Hel", "lo"]),
            openai_stream_quirk_multiline_data(&["Hel", "lo"]),
            openai_quirk_tool_call_as_text("read_file", json!({"path": "README.md"})),
        ]);
        let mut client = Client::connect(&server);
        let mut next = || {
            client.post("/v1/chat/completions", &request_body());
            let response = client.response();
            assert_eq!(response.head.status, 200);
            assert!(response.complete);
            assemble_openai(&response)
        };
        let call = |id: Value, name: &str, arguments: Value| (id, name.to_string(), arguments);
        let text = |text: &str, finish: &str| Assembled {
            text: text.into(),
            calls: Vec::new(),
            finish_reason: json!(finish),
        };
        let calls = |calls: Vec<(Value, String, Value)>, finish: &str| Assembled {
            text: String::new(),
            calls,
            finish_reason: json!(finish),
        };

        assert_eq!(next(), text("Hello", "stop"));
        assert_eq!(next(), text("Hel", "length"));
        let two_calls = vec![
            call(json!("call_1"), "read_file", json!(read)),
            call(json!("call_2"), "list", json!(list)),
        ];
        assert_eq!(next(), calls(two_calls.clone(), "tool_calls"));
        assert_eq!(next(), text("Hello", "stop"));
        assert_eq!(next(), calls(two_calls, "tool_calls"));
        let object = next();
        assert_eq!(
            object.calls[0].2,
            json!({"path": "README.md"}),
            "an object, not a string"
        );
        let missing = next();
        assert_eq!(missing.calls.len(), 2);
        assert!(missing.calls.iter().all(|(id, _, _)| id.is_null()));
        assert_eq!(next().calls[0].0, json!(""));
        assert_eq!(next().calls[0].0, json!(7));
        let stop = calls(
            vec![call(json!("call_1"), "read_file", json!(read))],
            "stop",
        );
        assert_eq!(next(), stop);
        assert_eq!(next(), stop);
        let streamed_missing = next();
        assert_eq!(
            streamed_missing.calls,
            [call(Value::Null, "read_file", json!(read))]
        );
        assert_eq!(next(), text("Hello", "stop"), "comment lines");
        assert_eq!(next(), text("Hello", "stop"), "data: without a space");
        assert_eq!(next(), text("Hello", "stop"), "multi-line data");
        let as_text = next();
        assert!(as_text.calls.is_empty());
        let written: Value = serde_json::from_str(&as_text.text).unwrap();
        assert_eq!(written["name"], "read_file");
    });
}

/// The tool-call entries of a stream, in order, for the quirks the index-keyed reading of
/// [`assemble_openai`] cannot show.
fn tool_call_entries(response: &Response) -> Vec<Value> {
    sse_events(&response.body)
        .iter()
        .filter(|(_, data)| data != "[DONE]")
        .flat_map(|(_, data)| {
            let chunk: Value = serde_json::from_str(data).unwrap();
            chunk["choices"][0]["delta"]["tool_calls"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .collect()
}

#[test]
fn openai_stream_quirks_look_like_the_servers_they_imitate() {
    watchdog(|| {
        let server = LlmServer::start();
        let read = r#"{"path":"README.md"}"#;
        let fragments: &[&str] = &[&read[..8], &read[8..]];
        server.push_all([
            openai_stream_quirk_shared_index(&[
                ("call_a", "read_file", &[read]),
                ("call_b", "list", &[r#"{"dir":"#, r#""src"}"#]),
            ]),
            openai_stream_quirk_fresh_id_per_chunk("read_file", fragments),
            openai_stream_quirk_name_every_chunk("call_1", "read_file", fragments),
            openai_stream_quirk_no_index("call_1", "read_file", fragments),
        ]);
        let mut client = Client::connect(&server);
        let mut next = || {
            client.post("/v1/chat/completions", &request_body());
            let response = client.response();
            assert!(response.complete);
            tool_call_entries(&response)
        };

        let shared = next();
        assert!(shared.iter().all(|entry| entry["index"] == 0));
        let ids: Vec<&Value> = shared.iter().map(|entry| &entry["id"]).collect();
        assert_eq!(ids, [&json!("call_a"), &json!("call_b"), &Value::Null]);
        assert_eq!(shared[1]["function"]["name"], "list");
        assert_eq!(shared[2]["function"].get("name"), None);

        let fresh = next();
        let ids: Vec<&str> = fresh
            .iter()
            .map(|entry| entry["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["call_fresh_0", "call_fresh_1", "call_fresh_2"]);
        assert_eq!(fresh[0]["function"]["name"], "read_file");
        assert!(
            fresh[1..]
                .iter()
                .all(|entry| entry["function"].get("name").is_none())
        );
        let arguments: String = fresh
            .iter()
            .map(|entry| entry["function"]["arguments"].as_str().unwrap())
            .collect();
        assert_eq!(arguments, read);

        let named = next();
        assert_eq!(named.len(), 2);
        assert!(
            named
                .iter()
                .all(|entry| entry["function"]["name"] == "read_file")
        );
        assert!(named.iter().all(|entry| entry["id"] == "call_1"));

        let unindexed = next();
        assert_eq!(unindexed.len(), 3);
        assert!(unindexed.iter().all(|entry| entry.get("index").is_none()));
    });
}

#[test]
fn anthropic_fixtures_match_the_messages_format() {
    watchdog(|| {
        let server = LlmServer::start();
        server.push_all([
            anthropic_text("Hello", usage(12, 3)),
            anthropic_max_tokens("Hel", usage(12, 1)),
            anthropic_tool_use(
                "I'll read it.",
                &[("toolu_01A", "read_file", json!({"path": "README.md"}))],
                usage(377, 65),
            ),
            anthropic_tool_use("", &[("toolu_01B", "list", json!({}))], usage(5, 5)),
            anthropic_stream_text(&["Hel", "lo"], usage(12, 3)),
        ]);
        let mut client = Client::connect(&server);
        let mut next = || {
            client.post("/v1/messages", &json!({}));
            client.response()
        };

        let text = next();
        assert!(
            text.head
                .header("request-id")
                .unwrap()
                .starts_with("req_011")
        );
        let body = text.json();
        assert!(body["id"].as_str().unwrap().starts_with("msg_01"));
        assert_eq!(body["type"], "message");
        assert_eq!(body["role"], "assistant");
        assert_eq!(body["content"], json!([{"type": "text", "text": "Hello"}]));
        assert_eq!(body["stop_reason"], "end_turn");
        assert_eq!(body["usage"]["input_tokens"], 12);
        assert_eq!(body["usage"]["output_tokens"], 3);
        assert_eq!(next().json()["stop_reason"], "max_tokens");
        let tool_use = next().json();
        assert_eq!(tool_use["stop_reason"], "tool_use");
        assert_eq!(
            tool_use["content"][1]["input"],
            json!({"path": "README.md"})
        );
        assert_eq!(next().json()["content"].as_array().unwrap().len(), 1);

        let stream = next();
        let events = sse_events(&stream.body);
        assert_eq!(
            event_names(&events),
            [
                "message_start",
                "content_block_start",
                "ping",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop",
            ]
        );
        for (name, data) in &events {
            let data: Value = serde_json::from_str(data).unwrap();
            assert_eq!(Some(data["type"].as_str().unwrap()), name.as_deref());
        }
    });
}

#[test]
fn a_handler_answers_every_request_from_what_it_sent_and_stays_queued() {
    watchdog(|| {
        let server = LlmServer::start();
        server.push(Reply::Handler(std::sync::Arc::new(|request: &Recorded| {
            let model = request.json()["model"].as_str().unwrap_or("?").to_string();
            json_reply(200, &json!({"echo": model}))
        })));
        let mut client = Client::connect(&server);
        for model in ["a", "b"] {
            client.post("/v1/chat/completions", &json!({"model": model}));
            assert_eq!(client.response().json(), json!({"echo": model}));
        }
        assert_eq!(server.pending_replies(), 1, "the handler stays queued");
        assert_eq!(server.requests().len(), 2);
    });
}

#[test]
fn the_rules_bill_a_repeated_prefix_as_a_cache_read_only_up_to_a_breakpoint() {
    use std::collections::HashSet;
    use support::llm_rules::bill_anthropic;
    let system = "x".repeat(8000);
    let body = |marked: bool, last: &str| {
        let mut system_block = json!({"type": "text", "text": system});
        let mut end = json!({"type": "text", "text": last});
        if marked {
            system_block["cache_control"] = json!({"type": "ephemeral"});
            end["cache_control"] = json!({"type": "ephemeral"});
        }
        json!({"system": [system_block], "messages": [{"role": "user", "content": [end]}]})
    };
    let mut cache = HashSet::new();
    let first = bill_anthropic(&body(true, "one"), &mut cache);
    assert_eq!(first.cache_read, 0);
    assert!(first.cache_write > 2000, "{first:?}");
    // Same system prompt, a different end: the system prefix is read, the rest written.
    let second = bill_anthropic(&body(true, "two"), &mut cache);
    assert!(
        second.cache_read >= 2000 && second.cache_write < 100,
        "{second:?}"
    );
    // Without breakpoints nothing is cached, whatever was cached before.
    let unmarked = bill_anthropic(&body(false, "two"), &mut cache);
    assert_eq!(
        (unmarked.cache_read, unmarked.cache_write),
        (0, 0),
        "{unmarked:?}"
    );
    assert!(unmarked.input > 2000);
}
