//! MCP tasks: a `tools/call` answered at once with a task handle, its result fetched later
//! by polling (`tasks/get`), and `tasks/cancel` to stop its runs. Served in two forms: the
//! `io.modelcontextprotocol/tasks` extension of 2026-07-28 and the experimental `tasks` of
//! 2025-11-25 (`params.task`, `tasks/result`, `tasks/list`).
//!
//! The store is bounded: at most `max_live` tasks work at once (one more gets a retryable
//! error), a finished task is forgotten `ttl` after its creation, and at most
//! [`MAX_FINISHED`] finished tasks are kept (the oldest go first).

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use parking_lot::{Condvar, Mutex};
use serde_json::{Value, json};

use crate::runtime::CancelToken;

/// Finished tasks kept at most, whatever their TTL.
const MAX_FINISHED: usize = 256;
/// How often a client should poll, in milliseconds.
const POLL_INTERVAL_MS: u64 = 1000;

/// The task forms on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Form {
    /// The 2026-07-28 extension: `resultType: "task"`, `ttlMs`, `pollIntervalMs`.
    Extension,
    /// 2025-11-25's experimental tasks: `{task: {…}}`, `ttl`, `pollInterval`.
    Experimental,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Working,
    Completed,
    Failed,
    Cancelled,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Working => "working",
            Status::Completed => "completed",
            Status::Failed => "failed",
            Status::Cancelled => "cancelled",
        }
    }
}

struct Entry {
    form: Form,
    /// Moves from `Working` to one terminal status, once: the first terminal write wins (a
    /// run finishing after `tasks/cancel` does not turn a cancelled task into a completed one).
    status: Status,
    message: Option<String>,
    created: SystemTime,
    created_at: Instant,
    updated: SystemTime,
    /// For `Completed`, the `CallToolResult`; for `Failed`, the JSON-RPC error object.
    outcome: Option<Value>,
    /// Cancels the task's runs.
    token: CancelToken,
}

/// The tasks of one server.
pub(crate) struct TaskStore {
    /// Tasks by id. Written by the dispatcher (create, cancel) and by call workers (progress,
    /// finish); no lock is held across I/O or a callback.
    tasks: Mutex<HashMap<String, Entry>>,
    /// Notified at every terminal write, for a blocking `tasks/result`.
    finished: Condvar,
    ttl: Duration,
    max_live: usize,
}

impl TaskStore {
    pub fn new(ttl: Duration, max_live: usize) -> TaskStore {
        TaskStore {
            tasks: Mutex::new(HashMap::new()),
            finished: Condvar::new(),
            ttl,
            max_live,
        }
    }

    /// A new working task, cancelled by `token`, and its handle as the `tools/call` result;
    /// `Err` with the message of a retryable error when `max_live` tasks are working.
    pub fn create(&self, form: Form, token: CancelToken) -> Result<(String, Value), String> {
        let id = new_id()?;
        let now = SystemTime::now();
        let mut tasks = self.tasks.lock();
        self.purge(&mut tasks);
        let live = tasks
            .values()
            .filter(|entry| entry.status == Status::Working)
            .count();
        if live >= self.max_live {
            return Err(format!(
                "{live} tasks are already working, the most this server runs at once; retry \
                 when one has finished"
            ));
        }
        let entry = Entry {
            form,
            status: Status::Working,
            message: Some("starting".into()),
            created: now,
            created_at: Instant::now(),
            updated: now,
            outcome: None,
            token,
        };
        let handle = self.view(&id, &entry, false);
        tasks.insert(id.clone(), entry);
        let result = match form {
            Form::Extension => {
                let mut handle = handle;
                handle["resultType"] = json!("task");
                handle
            }
            Form::Experimental => json!({"task": handle}),
        };
        Ok((id, result))
    }

    /// Drops finished tasks past their TTL, and the oldest beyond [`MAX_FINISHED`].
    fn purge(&self, tasks: &mut HashMap<String, Entry>) {
        tasks.retain(|_, entry| {
            entry.status == Status::Working || entry.created_at.elapsed() < self.ttl
        });
        let mut finished: Vec<(Instant, String)> = tasks
            .iter()
            .filter(|(_, entry)| entry.status != Status::Working)
            .map(|(id, entry)| (entry.created_at, id.clone()))
            .collect();
        if finished.len() > MAX_FINISHED {
            finished.sort_unstable();
            for (_, id) in &finished[..finished.len() - MAX_FINISHED] {
                tasks.remove(id);
            }
        }
    }

    /// Sets a working task's status message (its latest progress).
    pub fn progress(&self, id: &str, message: &str) {
        if let Some(entry) = self.tasks.lock().get_mut(id)
            && entry.status == Status::Working
        {
            entry.message = Some(message.to_string());
            entry.updated = SystemTime::now();
        }
    }

    /// Records how the call ended: `Ok(CallToolResult)` or `Err(JSON-RPC error object)`.
    /// Ignored when the task already ended (cancelled).
    pub fn finish(&self, id: &str, outcome: Result<Value, Value>) {
        let mut tasks = self.tasks.lock();
        if let Some(entry) = tasks.get_mut(id)
            && entry.status == Status::Working
        {
            let (status, message, outcome) = match outcome {
                Ok(result) => {
                    let message = if result["isError"] == json!(true) {
                        "finished with an error result"
                    } else {
                        "finished"
                    };
                    (Status::Completed, message, result)
                }
                Err(error) => (Status::Failed, "failed", error),
            };
            entry.status = status;
            entry.message = Some(message.into());
            entry.outcome = Some(outcome);
            entry.updated = SystemTime::now();
        }
        drop(tasks);
        self.finished.notify_all();
    }

    /// The task as `tasks/get` answers (with its result or error once ended).
    pub fn get(&self, id: &str) -> Option<Value> {
        let mut tasks = self.tasks.lock();
        self.purge(&mut tasks);
        tasks.get(id).map(|entry| self.view(id, entry, true))
    }

    /// Cancels the task's runs and marks it cancelled (unless it had ended); the task as it
    /// now is.
    pub fn cancel(&self, id: &str) -> Option<Value> {
        let token = {
            let mut tasks = self.tasks.lock();
            let entry = tasks.get_mut(id)?;
            if entry.status == Status::Working {
                entry.status = Status::Cancelled;
                entry.message = Some("cancelled by the client".into());
                entry.updated = SystemTime::now();
            }
            entry.token.clone()
        };
        // Outside the lock: cancel actions are callbacks.
        token.cancel();
        self.finished.notify_all();
        self.tasks
            .lock()
            .get(id)
            .map(|entry| self.view(id, entry, false))
    }

    /// Every task of `form`, newest first (experimental `tasks/list`).
    pub fn list(&self, form: Form) -> Vec<Value> {
        let mut tasks = self.tasks.lock();
        self.purge(&mut tasks);
        let mut listed: Vec<(&String, &Entry)> = tasks
            .iter()
            .filter(|(_, entry)| entry.form == form)
            .collect();
        listed.sort_by_key(|(_, entry)| std::cmp::Reverse(entry.created_at));
        listed
            .into_iter()
            .map(|(id, entry)| self.view(id, entry, false))
            .collect()
    }

    /// Blocks until the task has ended (or `patience` has passed, or `stop` is tripped),
    /// then answers as experimental `tasks/result` does: `Ok(result)`, `Err(error object)`;
    /// `None` for an unknown task.
    pub fn wait_result(
        &self,
        id: &str,
        patience: Duration,
        stop: &CancelToken,
    ) -> Option<Result<Value, Value>> {
        let deadline = Instant::now() + patience;
        let mut tasks = self.tasks.lock();
        loop {
            let entry = tasks.get(id)?;
            match (entry.status, &entry.outcome) {
                (Status::Completed, Some(result)) => return Some(Ok(result.clone())),
                (Status::Failed, Some(error)) => return Some(Err(error.clone())),
                (Status::Cancelled, _) => {
                    return Some(Err(json!({"code": super::wire::INTERNAL_ERROR,
                        "message": "the task was cancelled before it finished"})));
                }
                _ => {}
            }
            if stop.is_cancelled() {
                return Some(Err(json!({"code": super::wire::INTERNAL_ERROR,
                    "message": "the server is shutting down"})));
            }
            // Woken at every terminal write; the short slice notices `stop`.
            let slice = (Instant::now() + Duration::from_millis(200)).min(deadline);
            if self.finished.wait_until(&mut tasks, slice).timed_out() && Instant::now() >= deadline
            {
                return Some(Err(json!({"code": super::wire::INTERNAL_ERROR,
                    "message": "the task did not finish in time; poll tasks/get"})));
            }
        }
    }

    /// The cancel tokens of every working task (to stop them at the end of input).
    pub fn working_tokens(&self) -> Vec<CancelToken> {
        self.tasks
            .lock()
            .values()
            .filter(|entry| entry.status == Status::Working)
            .map(|entry| entry.token.clone())
            .collect()
    }

    fn view(&self, id: &str, entry: &Entry, detailed: bool) -> Value {
        let ttl = u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX);
        let mut task = json!({
            "taskId": id,
            "status": entry.status.as_str(),
            "createdAt": timestamp(entry.created),
            "lastUpdatedAt": timestamp(entry.updated),
        });
        match entry.form {
            Form::Extension => {
                task["ttlMs"] = json!(ttl);
                task["pollIntervalMs"] = json!(POLL_INTERVAL_MS);
            }
            Form::Experimental => {
                task["ttl"] = json!(ttl);
                task["pollInterval"] = json!(POLL_INTERVAL_MS);
            }
        }
        if let Some(message) = &entry.message {
            task["statusMessage"] = json!(message);
        }
        if detailed && entry.form == Form::Extension {
            match (entry.status, &entry.outcome) {
                (Status::Completed, Some(result)) => task["result"] = result.clone(),
                (Status::Failed, Some(error)) => task["error"] = error.clone(),
                _ => {}
            }
        }
        task
    }
}

/// 128 random bits in hex: a task id is the only handle on a task's result, so it must not
/// be guessable.
fn new_id() -> Result<String, String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)
        .map_err(|problem| format!("no randomness for a task id: {problem}"))?;
    Ok(bytes.iter().map(|byte| format!("{byte:02x}")).collect())
}

/// RFC 3339 (ISO 8601) in UTC.
fn timestamp(time: SystemTime) -> String {
    jiff::Timestamp::try_from(time)
        .map(|time| {
            time.round(jiff::Unit::Millisecond)
                .unwrap_or(time)
                .to_string()
        })
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_terminal_write_wins_and_live_tasks_are_capped() {
        let store = TaskStore::new(Duration::from_secs(60), 2);
        let token = CancelToken::new();
        let (a, handle) = store.create(Form::Extension, token.clone()).unwrap();
        assert_eq!(handle["resultType"], "task");
        assert_eq!(handle["status"], "working");
        assert_eq!(a.len(), 32);
        let (b, _) = store
            .create(Form::Experimental, CancelToken::new())
            .unwrap();
        assert!(store.create(Form::Extension, CancelToken::new()).is_err());
        assert_eq!(store.cancel(&a).unwrap()["status"], "cancelled");
        assert!(token.is_cancelled());
        store.finish(&a, Ok(json!({"content": []})));
        assert_eq!(store.get(&a).unwrap()["status"], "cancelled");
        assert!(store.get(&a).unwrap().get("result").is_none());
        // One slot is free again.
        store.create(Form::Extension, CancelToken::new()).unwrap();
        store.finish(&b, Ok(json!({"content": [], "isError": false})));
        let done = store.wait_result(&b, Duration::from_secs(5), &CancelToken::new());
        assert_eq!(done, Some(Ok(json!({"content": [], "isError": false}))));
        assert_eq!(store.list(Form::Experimental).len(), 1);
        assert!(store.get("unknown").is_none());
    }

    #[test]
    fn finished_tasks_are_forgotten_after_their_ttl() {
        let store = TaskStore::new(Duration::ZERO, 4);
        let (id, _) = store.create(Form::Extension, CancelToken::new()).unwrap();
        assert!(
            store.get(&id).is_some(),
            "a working task is kept past its TTL"
        );
        store.finish(&id, Err(json!({"code": -32603, "message": "boom"})));
        assert!(store.get(&id).is_none());
    }
}
