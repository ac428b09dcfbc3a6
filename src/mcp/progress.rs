//! The way out to the client (one writer thread, one lock), and what a call reports while
//! it runs: progress notifications from its runs' events, a keep-alive when nothing
//! happened for a while, and a task's status message.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;
use serde_json::{Value, json};

use super::tasks::TaskStore;
use crate::Progress;
use crate::runtime::{Event, EventKind, TaskId};

/// The way to the output. Every message passes through one lock, in the order it is
/// written, to a writer thread that does the I/O: a slow client never holds up a worker, the
/// reader, or the runtime's scheduler threads (which run the progress observers).
pub(crate) struct Writer {
    /// `None` once the session has ended: a late event of a run that ignored cancellation
    /// writes nothing.
    lines: Mutex<Option<Sender<String>>>,
}

impl Writer {
    pub fn new(lines: Sender<String>) -> Writer {
        Writer {
            lines: Mutex::new(Some(lines)),
        }
    }

    pub fn send(&self, message: &Value) {
        // serde_json escapes newlines inside strings: one message is one line.
        let line = message.to_string();
        if let Some(lines) = &*self.lines.lock() {
            let _ = lines.send(line);
        }
    }

    /// Writes `call`'s response unless it was cancelled; nothing is written for it after.
    pub fn respond(&self, call: &Call, response: &Value) {
        let line = response.to_string();
        let lines = self.lines.lock();
        if !call.closed.swap(true, Ordering::Relaxed)
            && let Some(lines) = &*lines
        {
            let _ = lines.send(line);
        }
    }

    /// Writes nothing more for `call`.
    pub fn close(&self, call: &Call) {
        let _lines = self.lines.lock();
        call.closed.store(true, Ordering::Relaxed);
    }

    /// Writes a progress notification for `call` while it has not answered.
    fn progress(&self, call: &Call, token: &Value, message: &str) {
        let lines = self.lines.lock();
        let Some(lines) = &*lines else {
            return;
        };
        if call.closed.load(Ordering::Relaxed) {
            return;
        }
        let progress = call.progress.fetch_add(1, Ordering::Relaxed) + 1;
        *call.last_sent.lock() = Instant::now();
        let notification = json!({
            "jsonrpc": "2.0",
            "method": "notifications/progress",
            "params": {"progressToken": token, "progress": progress, "message": message},
        });
        let _ = lines.send(notification.to_string());
    }

    /// Lets the writer thread end once it has written what was sent so far.
    pub fn shut(&self) {
        self.lines.lock().take();
    }
}

/// The writer thread: each message on a line of its own, flushed at once.
pub(crate) fn write_lines(mut output: impl Write, lines: &Receiver<String>) {
    let mut failed = false;
    for mut line in lines {
        line.push('\n');
        let written = output
            .write_all(line.as_bytes())
            .and_then(|()| output.flush());
        // Logged once: a client that closed its end would otherwise log every message.
        if let Err(problem) = written
            && !std::mem::replace(&mut failed, true)
        {
            log::error!("MCP: cannot write to the client: {problem}");
        }
    }
}

/// A `tools/call` in progress: what the output and its reports need. Shared with the call's
/// observer, so it holds no runtime handle.
pub(crate) struct Call {
    pub id: Value,
    pub progress_token: Option<Value>,
    /// The MCP task the call runs as, whose status message follows its progress.
    pub task: Option<(Arc<TaskStore>, String)>,
    /// W3C trace context of the request, for the runs' log lines.
    pub traceparent: Option<String>,
    /// The level of `notifications/message` the request asked for (2026-07-28), ranked.
    pub log_level: Option<usize>,
    /// Set, under the writer's lock, once the response is sent or the call is cancelled:
    /// nothing more is sent for the call after that.
    pub closed: AtomicBool,
    /// The last `progress` value sent; advanced under the writer's lock so that values
    /// increase in the order they are written.
    progress: AtomicU64,
    /// When the last notification went out (or the call started): the keep-alive's clock.
    last_sent: Mutex<Instant>,
    /// What each run of the call has done, for messages.
    runs: Mutex<HashMap<TaskId, RunProgress>>,
    started: Instant,
}

/// What a progress message says of one run.
struct RunProgress {
    label: String,
    since: Instant,
    tools: u32,
    finished: bool,
}

impl Call {
    pub fn new(id: Value, progress_token: Option<Value>) -> Call {
        Call {
            id,
            progress_token,
            task: None,
            traceparent: None,
            log_level: None,
            closed: AtomicBool::new(false),
            progress: AtomicU64::new(0),
            last_sent: Mutex::new(Instant::now()),
            runs: Mutex::new(HashMap::new()),
            started: Instant::now(),
        }
    }

    /// Whether anything reports on this call (a progress token or a task).
    pub fn is_observed(&self) -> bool {
        self.progress_token.is_some() || self.task.is_some()
    }

    /// Reports one of the call's events: a notification (with a token), the task's status
    /// message (as a task), a log line with the trace context.
    pub fn report(&self, writer: &Writer, event: &Event) {
        if let Some(trace) = &self.traceparent
            && matches!(
                event.kind,
                EventKind::Started { .. } | EventKind::Finished { .. }
            )
        {
            log::info!(
                "MCP: {} {} (traceparent {trace})",
                event.task,
                event.kind.name()
            );
        }
        let Some(message) = self.describe(event) else {
            return;
        };
        self.say(writer, &message);
    }

    fn say(&self, writer: &Writer, message: &str) {
        if let Some(token) = &self.progress_token {
            writer.progress(self, token, message);
        }
        if let Some((store, id)) = &self.task {
            store.progress(id, message);
        }
    }

    /// A keep-alive: when nothing was sent for `interval`, says what every run is doing.
    pub fn keep_alive(&self, writer: &Writer, interval: Duration) {
        if self.progress_token.is_none() || self.last_sent.lock().elapsed() < interval {
            return;
        }
        let now = Instant::now();
        let runs = self.runs.lock();
        let working: Vec<String> = runs
            .values()
            .filter(|run| !run.finished)
            .map(|run| {
                format!(
                    "{} ({}, {} s)",
                    run.label,
                    tools(run.tools),
                    now.saturating_duration_since(run.since).as_secs()
                )
            })
            .collect();
        drop(runs);
        let message = if working.is_empty() {
            format!(
                "waiting for the runs to start ({} s)",
                self.started.elapsed().as_secs()
            )
        } else {
            format!("still working: {}", working.join("; "))
        };
        self.say(writer, &message);
    }

    /// `explore: grep 'TODO' (3 tools, 12 s)`; `None` for events not worth a notification
    /// (queued, turns, streaming, the runtime's own heartbeats: the keep-alive covers those).
    fn describe(&self, event: &Event) -> Option<String> {
        let mut runs = self.runs.lock();
        let run = runs.entry(event.task.clone()).or_insert(RunProgress {
            label: event.label.to_string(),
            since: event.at,
            tools: 0,
            finished: false,
        });
        let what = match &event.kind {
            EventKind::Started { .. } => {
                run.since = event.at;
                return Some(format!("{}: started (run {})", event.label, event.task));
            }
            EventKind::Progress(_) => match event.kind.progress::<Progress>() {
                Some(Progress::ToolStarted { tool, summary }) => {
                    run.tools += 1;
                    format!("{tool} {summary}")
                }
                Some(Progress::ToolFinished {
                    tool,
                    summary,
                    is_error,
                    ..
                }) => format!(
                    "{tool} {summary} {}",
                    if *is_error { "failed" } else { "done" }
                ),
                _ => return None,
            },
            EventKind::Finished { status, .. } => {
                run.finished = true;
                status.to_string()
            }
            _ => return None,
        };
        let seconds = event.at.saturating_duration_since(run.since).as_secs();
        let what = what.split_whitespace().collect::<Vec<_>>().join(" ");
        Some(format!(
            "{}: {what} ({}, {seconds} s)",
            event.label,
            tools(run.tools)
        ))
    }
}

fn tools(count: u32) -> String {
    match count {
        1 => "1 tool".to_string(),
        count => format!("{count} tools"),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crossbeam_channel::unbounded;

    use super::*;
    use crate::runtime::TaskStatus;

    fn event(task: &TaskId, kind: EventKind) -> Event {
        Event {
            task: task.clone(),
            label: "explore".into(),
            at: Instant::now(),
            kind,
            trace: None,
        }
    }

    /// A call with progress token `"t"`, a writer, and what the writer sends.
    fn new_call() -> (Call, Writer, Receiver<String>) {
        let (lines, sent) = unbounded();
        (
            Call::new(json!(1), Some(json!("t"))),
            Writer::new(lines),
            sent,
        )
    }

    fn messages(sent: &Receiver<String>) -> Vec<Value> {
        sent.try_iter()
            .map(|line| serde_json::from_str(&line).unwrap())
            .collect()
    }

    #[test]
    fn no_progress_is_sent_after_the_response_or_a_cancellation() {
        let task = TaskId::generate("explore", 1, 0);
        let started = event(
            &task,
            EventKind::Started {
                queued_for: Duration::ZERO,
            },
        );
        let finished = event(
            &task,
            EventKind::Finished {
                status: TaskStatus::Completed,
                queued_for: Duration::ZERO,
                ran_for: Some(Duration::ZERO),
                error: None,
            },
        );
        let (call, writer, sent) = new_call();
        call.report(&writer, &started);
        writer.respond(&call, &json!({"id": 1}));
        call.report(&writer, &finished); // a late event, delivered after the response
        call.keep_alive(&writer, Duration::ZERO);
        let sent = messages(&sent);
        assert_eq!(sent.len(), 2, "{sent:?}");
        assert_eq!(
            sent[0]["params"]["message"],
            format!("explore: started (run {task})")
        );
        assert_eq!(sent[1], json!({"id": 1}));

        let (call, writer, sent) = new_call();
        writer.close(&call);
        call.report(&writer, &started);
        writer.respond(&call, &json!({"id": 1}));
        assert!(messages(&sent).is_empty());
    }

    #[test]
    fn progress_messages_count_tools_and_seconds_and_skip_heartbeats() {
        let task = TaskId::generate("explore", 1, 0);
        let (call, writer, sent) = new_call();
        let tool = |done: bool| {
            let (tool, summary) = ("grep".to_string(), "'TODO'".to_string());
            EventKind::Progress(std::sync::Arc::new(if done {
                Progress::ToolFinished {
                    tool,
                    summary,
                    duration: Duration::ZERO,
                    is_error: true,
                }
            } else {
                Progress::ToolStarted { tool, summary }
            }))
        };
        call.report(&writer, &event(&task, tool(false)));
        call.report(&writer, &event(&task, tool(true)));
        call.report(
            &writer,
            &event(
                &task,
                EventKind::Progress(std::sync::Arc::new(Progress::TurnStarted { turn: 2 })),
            ),
        );
        call.report(&writer, &event(&task, tool(false)));
        call.report(
            &writer,
            &event(
                &task,
                EventKind::Heartbeat {
                    status: TaskStatus::Running,
                    elapsed: Duration::ZERO,
                },
            ),
        );
        call.keep_alive(&writer, Duration::from_secs(3600)); // too soon: nothing
        call.keep_alive(&writer, Duration::ZERO);
        let sent = messages(&sent);
        let texts: Vec<&str> = sent
            .iter()
            .map(|m| m["params"]["message"].as_str().unwrap())
            .collect();
        assert_eq!(
            texts,
            [
                "explore: grep 'TODO' (1 tool, 0 s)",
                "explore: grep 'TODO' failed (1 tool, 0 s)",
                "explore: grep 'TODO' (2 tools, 0 s)",
                "still working: explore (2 tools, 0 s)",
            ]
        );
        let values: Vec<u64> = sent
            .iter()
            .map(|m| m["params"]["progress"].as_u64().unwrap())
            .collect();
        assert_eq!(values, [1, 2, 3, 4]);
        assert!(sent.iter().all(|m| m["params"]["progressToken"] == "t"));
    }
}
