//! Tools a subagent can call: the [`Tool`] trait, the [`ToolRegistry`] a subagent is given,
//! and the context every call gets (its [`Workspace`], its task's [`CancelToken`], and the
//! process groups its commands started).
//!
//! The file tools (read, write, edit, ls, glob, grep) open every path beneath the
//! workspace root through [`Workspace`]: `openat2(RESOLVE_BENEATH)` against a descriptor of
//! the root (component by component with `O_NOFOLLOW` where the kernel lacks it), regular
//! files only, bounded reads, atomic writes, protected paths refused.

mod bash;
mod beneath;
mod capture;
mod edit;
mod fs;
mod grep;
mod list;
mod protected;
mod read;
mod schema;
mod workspace;

use std::fmt;
use std::sync::Arc;

use parking_lot::Mutex;
use serde_json::Value;

pub use bash::BashTool;
pub(crate) use capture::cap_text;
pub use edit::{EditTool, WriteTool};
pub use grep::GrepTool;
pub use list::{GlobTool, LsTool};
pub use read::ReadTool;
pub use schema::validate;
pub use workspace::Workspace;

use crate::error::Error;
use crate::llm::ToolSpec;
use crate::runtime::{CancelGuard, CancelToken};
use crate::sandbox::Sandbox;

/// The sandbox of a context that was given none: confined, network off.
static DEFAULT_SANDBOX: Sandbox = Sandbox::new();

/// A tool: a name, a description and a JSON Schema the model reads, and one call.
///
/// `call` runs on an execution thread (several calls of one turn may run at once). An
/// `Err` of kind [`ErrorKind::Tool`](crate::ErrorKind::Tool) (or any kind, unless the task
/// was cancelled) goes back to the model as an error result, so it can fix its call.
/// A tool must return promptly once `context.token()` is cancelled.
pub trait Tool: Send + Sync {
    /// The name the model calls it by (`a-zA-Z0-9_-`).
    fn name(&self) -> &str;

    /// What it does and when to use it, for the model.
    fn description(&self) -> &str;

    /// A JSON Schema of type `object` for its arguments.
    fn parameters(&self) -> Value;

    /// Whether it only reads: no writes, no commands. Read-only subagents get only these.
    fn read_only(&self) -> bool {
        false
    }

    /// Runs the tool with arguments that passed [`validate`] against its schema.
    ///
    /// # Errors
    ///
    /// Whatever the model should be told went wrong.
    fn call(&self, input: &Value, context: &ToolContext<'_>) -> Result<String, Error>;
}

/// What a tool call may use.
#[derive(Debug, Clone, Copy)]
pub struct ToolContext<'a> {
    workspace: &'a Workspace,
    token: &'a CancelToken,
    processes: &'a ProcessGroups,
    /// The nesting depth of the subagent making the call; `None` for the host's own agent.
    subagent_depth: Option<u32>,
    /// How the call's commands are confined.
    sandbox: &'a Sandbox,
}

impl<'a> ToolContext<'a> {
    /// A context for calls in `workspace` under `token`, tracking processes in `processes`,
    /// with the default [`Sandbox`] (confined, network off).
    pub fn new(
        workspace: &'a Workspace,
        token: &'a CancelToken,
        processes: &'a ProcessGroups,
    ) -> ToolContext<'a> {
        ToolContext {
            workspace,
            token,
            processes,
            subagent_depth: None,
            sandbox: &DEFAULT_SANDBOX,
        }
    }

    /// Marks the call as made by a subagent run at nesting `depth` (0 for a run the host
    /// started, 1 for a run that run started…; see
    /// [`SubagentRun::depth`](crate::subagents::SubagentRun::depth)). `None`, the default,
    /// is the host's own agent. The `task` tool counts nesting from it.
    pub fn with_subagent_depth(mut self, depth: Option<u32>) -> ToolContext<'a> {
        self.subagent_depth = depth;
        self
    }

    /// The nesting depth of the subagent making the call; `None` for the host's own agent.
    pub fn subagent_depth(&self) -> Option<u32> {
        self.subagent_depth
    }

    /// Runs commands in `sandbox` instead of the default.
    pub fn with_sandbox(mut self, sandbox: &'a Sandbox) -> ToolContext<'a> {
        self.sandbox = sandbox;
        self
    }

    /// How commands (the `bash` tool) are confined.
    pub fn sandbox(&self) -> &'a Sandbox {
        self.sandbox
    }

    /// The directory the call is confined to.
    pub fn workspace(&self) -> &'a Workspace {
        self.workspace
    }

    /// The task's cancellation signal (with its deadline).
    pub fn token(&self) -> &'a CancelToken {
        self.token
    }

    /// Where a tool that starts processes registers their process groups.
    pub fn processes(&self) -> &'a ProcessGroups {
        self.processes
    }
}

/// The process groups a task's commands started. Every one is killed (`SIGKILL` to the
/// whole group) when the task's token is tripped and when this value is dropped at the end
/// of the run, so no child — background ones included — outlives its task.
pub struct ProcessGroups {
    groups: Arc<Mutex<Vec<u32>>>,
    _on_cancel: CancelGuard,
}

impl ProcessGroups {
    /// Tracks groups for the task `token` belongs to.
    pub fn new(token: &CancelToken) -> ProcessGroups {
        let groups = Arc::new(Mutex::new(Vec::new()));
        let on_cancel = {
            let groups = groups.clone();
            token.on_cancel(move || kill_all(&groups))
        };
        ProcessGroups {
            groups,
            _on_cancel: on_cancel,
        }
    }

    /// Tracks the group led by process `pgid` (spawned with `process_group(0)`).
    pub fn track(&self, pgid: u32) {
        self.groups.lock().push(pgid);
    }

    /// Kills one group now (a command that timed out) and stops tracking it.
    pub fn kill(&self, pgid: u32) {
        self.groups.lock().retain(|group| *group != pgid);
        kill_group(pgid);
    }

    /// Stops tracking `pgid` if no process of its group is left, so its number is never
    /// signalled after the system reuses it; a group with background children stays.
    pub fn forget_if_finished(&self, pgid: u32) {
        let Some(pid) = i32::try_from(pgid)
            .ok()
            .and_then(rustix::process::Pid::from_raw)
        else {
            return;
        };
        if rustix::process::test_kill_process_group(pid) == Err(rustix::io::Errno::SRCH) {
            self.groups.lock().retain(|group| *group != pgid);
        }
    }

    /// How many groups are tracked.
    pub fn len(&self) -> usize {
        self.groups.lock().len()
    }

    /// Whether none is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for ProcessGroups {
    fn drop(&mut self) {
        kill_all(&self.groups);
    }
}

impl fmt::Debug for ProcessGroups {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessGroups")
            .field("groups", &*self.groups.lock())
            .finish()
    }
}

fn kill_all(groups: &Mutex<Vec<u32>>) {
    let groups = std::mem::take(&mut *groups.lock());
    for pgid in groups {
        kill_group(pgid);
    }
}

fn kill_group(pgid: u32) {
    let Some(pid) = i32::try_from(pgid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return;
    };
    // ESRCH (already gone) is the usual, harmless outcome.
    let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
}

/// The built-in tools: bash, read, write, edit, ls, glob, grep (in that order), each with
/// its default limits.
pub fn builtin_tools() -> ToolRegistry {
    let tools: [Arc<dyn Tool>; 7] = [
        Arc::new(BashTool::new()),
        Arc::new(ReadTool::new()),
        Arc::new(WriteTool::new()),
        Arc::new(EditTool::new()),
        Arc::new(LsTool::new()),
        Arc::new(GlobTool::new()),
        Arc::new(GrepTool::new()),
    ];
    ToolRegistry {
        tools: tools.into(),
    }
}

/// The tools a subagent may call, by name, in a stable order.
#[derive(Clone, Default)]
pub struct ToolRegistry {
    tools: Vec<Arc<dyn Tool>>,
}

impl ToolRegistry {
    /// No tools.
    pub fn new() -> ToolRegistry {
        ToolRegistry::default()
    }

    /// Adds a tool.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) if a tool of that name is already
    /// there or the name is not `a-zA-Z0-9_-` (at most 64 characters).
    pub fn register(&mut self, tool: Arc<dyn Tool>) -> Result<(), Error> {
        let name = tool.name();
        let valid = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !valid {
            return Err(Error::config(format!(
                "the tool name '{name}' is not valid: use 1-64 letters, digits, '_' or '-'"
            )));
        }
        if self.get(name).is_some() {
            return Err(Error::config(format!(
                "a tool named '{name}' is already registered; give the new one another name"
            )));
        }
        self.tools.push(tool);
        Ok(())
    }

    /// The tool called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn Tool>> {
        self.tools.iter().find(|tool| tool.name() == name)
    }

    /// The tools' names, in order.
    pub fn names(&self) -> Vec<&str> {
        self.tools.iter().map(|tool| tool.name()).collect()
    }

    /// The tools as the model sees them.
    pub fn specs(&self) -> Vec<ToolSpec> {
        self.tools
            .iter()
            .map(|tool| ToolSpec {
                name: tool.name().to_string(),
                description: tool.description().to_string(),
                parameters: tool.parameters(),
            })
            .collect()
    }

    /// The tools in order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn Tool>> {
        self.tools.iter()
    }

    /// Keeps the tools `keep` accepts.
    pub fn filter(&self, keep: impl Fn(&dyn Tool) -> bool) -> ToolRegistry {
        ToolRegistry {
            tools: self
                .tools
                .iter()
                .filter(|tool| keep(tool.as_ref()))
                .cloned()
                .collect(),
        }
    }

    /// How many tools there are.
    pub fn len(&self) -> usize {
        self.tools.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.tools.is_empty()
    }
}

impl fmt::Debug for ToolRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}
