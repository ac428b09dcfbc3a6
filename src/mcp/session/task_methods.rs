//! `tasks/*`: the tasks extension's methods on 2026-07-28, the experimental ones of
//! 2025-11-25 before it.

use serde_json::{Map, Value, json};

use super::Session;
use crate::mcp::RESULT_PATIENCE;
use crate::mcp::tasks::Form;
use crate::mcp::wire::{self, INTERNAL_ERROR, INVALID_PARAMS, METHOD_NOT_FOUND, error, result};

impl Session {
    /// `tasks/*`: the extension's methods on 2026-07-28, the experimental ones before.
    pub(super) fn task_method(
        &mut self,
        id: Value,
        method: &str,
        params: &Map<String, Value>,
        modern: bool,
    ) {
        let store = &self.shared.tasks;
        let served = if modern {
            matches!(method, "tasks/get" | "tasks/cancel" | "tasks/update")
        } else {
            self.experimental_tasks()
                && matches!(
                    method,
                    "tasks/get" | "tasks/cancel" | "tasks/result" | "tasks/list"
                )
        };
        if !served {
            self.send(&error(
                &id,
                METHOD_NOT_FOUND,
                &format!(
                    "Method not found: {method} (tasks are served to 2026-07-28 requests \
                     declaring the {} extension, and to 2025-11-25 sessions)",
                    wire::TASKS_EXTENSION
                ),
            ));
            return;
        }
        if method == "tasks/list" {
            let list = json!({"tasks": store.list(Form::Experimental)});
            self.send(&result(&id, list, false));
            return;
        }
        let Some(task) = params.get("taskId").and_then(Value::as_str) else {
            self.send(&error(
                &id,
                INVALID_PARAMS,
                "Invalid params: `taskId` must be the id of a task",
            ));
            return;
        };
        let unknown = || {
            error(
                &id,
                INVALID_PARAMS,
                &format!(
                    "Invalid params: no task '{}': it never existed, or finished more than \
                     {} s after it was created and was forgotten",
                    task.chars().take(64).collect::<String>(),
                    self.shared.server.task_ttl.as_secs()
                ),
            )
        };
        match method {
            "tasks/get" => match store.get(task) {
                Some(view) => self.send(&result(&id, view, modern)),
                None => self.send(&unknown()),
            },
            "tasks/cancel" => match store.cancel(task) {
                Some(_) if modern => self.send(&result(&id, json!({}), true)),
                Some(view) => self.send(&result(&id, view, false)),
                None => self.send(&unknown()),
            },
            // No task of this server asks for input: responses are acknowledged and ignored.
            "tasks/update" => match store.get(task) {
                Some(_) => self.send(&result(&id, json!({}), true)),
                None => self.send(&unknown()),
            },
            _ => {
                // tasks/result blocks until the task ends: on a worker, not the dispatcher.
                if store.get(task).is_none() {
                    self.send(&unknown());
                    return;
                }
                let shared = self.shared.clone();
                let task = task.to_string();
                self.reap_workers();
                let started = std::thread::Builder::new()
                    .name("subtask-mcp-result".into())
                    .spawn(move || {
                        let waited = shared
                            .tasks
                            .wait_result(&task, RESULT_PATIENCE, &shared.stop);
                        let response = match waited {
                            Some(Ok(mut answer)) => {
                                answer["_meta"] =
                                    json!({wire::META_RELATED_TASK: {"taskId": task}});
                                result(&id, answer, false)
                            }
                            Some(Err(problem)) => {
                                json!({"jsonrpc": "2.0", "id": id, "error": problem})
                            }
                            None => error(
                                &id,
                                INVALID_PARAMS,
                                "Invalid params: the task was forgotten",
                            ),
                        };
                        shared.writer.send(&response);
                    });
                match started {
                    Ok(worker) => self.workers.push(worker),
                    Err(problem) => self.send(&error(
                        &Value::Null,
                        INTERNAL_ERROR,
                        &format!("Internal error: cannot start a thread: {problem}"),
                    )),
                }
            }
        }
    }
}
