//! Subagent types and how a subagent is spawned: the catalogue of [`SubagentSpec`]s
//! (built-in and from Markdown), the [`Hooks`] around each run, and [`Subagents`], which
//! turns a type and a prompt into an agent run with the right model, tools, limits,
//! transcript and hooks.

mod builtin;
mod hooks;
mod markdown;
mod registry;
mod spawn;
mod spec;
mod worktree;

pub use hooks::{Hooks, SubagentStart, SubagentStop};
pub use registry::{
    LoadProblem, NamedMcpServer, SubagentRegistry, TRUST_PROJECT_ENV, trust_project_from_env,
    user_agent_dirs,
};
pub use spawn::{
    ModelResolver, SubagentHandle, SubagentOutcome, SubagentRequest, SubagentRun, Subagents,
    Transcripts,
};
pub use spec::{Isolation, McpServerRef, SpecSource, SubagentSpec};
pub use worktree::KeptWorktree;

/// Where a workspace's own subagent types live (`.claude/agents` is read too).
pub const AGENTS_DIR: &str = ".subtask/agents";
/// The name of the tool that spawns subagents; withheld from subagents unless nesting is
/// allowed.
pub const TASK_TOOL: &str = "task";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{Error, ErrorKind};
    use crate::runtime::Runtime;
    use crate::tools::{Tool, ToolContext};
    use crate::tools::{ToolRegistry, Workspace};
    use serde_json::{Value, json};
    use std::sync::Arc;
    use std::time::Duration;

    struct Dummy(&'static str, bool);

    impl Tool for Dummy {
        fn name(&self) -> &str {
            self.0
        }
        fn description(&self) -> &str {
            "a test tool"
        }
        fn parameters(&self) -> Value {
            json!({"type": "object"})
        }
        fn read_only(&self) -> bool {
            self.1
        }
        fn call(&self, _: &Value, _: &ToolContext<'_>) -> Result<String, Error> {
            Ok(String::new())
        }
    }

    fn available() -> ToolRegistry {
        let mut tools = ToolRegistry::new();
        for (name, read_only) in [
            ("read", true),
            ("grep", true),
            ("write", false),
            ("bash", false),
            ("task", true),
        ] {
            tools.register(Arc::new(Dummy(name, read_only))).unwrap();
        }
        tools
    }

    #[test]
    fn tools_are_enforced_at_spawn() {
        let types = SubagentRegistry::builtin();
        let names = |spec: &str, read_only: bool, nesting: bool| {
            types
                .get(spec)
                .unwrap()
                .tool_registry(&available(), read_only, nesting)
                .unwrap()
                .names()
                .join(",")
        };
        assert_eq!(
            names("general-purpose", false, false),
            "read,grep,write,bash"
        );
        assert_eq!(
            names("general-purpose", false, true),
            "read,grep,write,bash,task"
        );
        assert_eq!(names("general-purpose", true, false), "read,grep");
        assert_eq!(names("plan", false, false), "read,grep");
        assert_eq!(names("bash", false, false), "bash");
        let error = types
            .get("explore")
            .unwrap()
            .tool_registry(&available(), false, false)
            .unwrap_err();
        assert!(error.message().contains("ls, glob"), "{error}");
    }

    #[test]
    fn spawned_runs_are_runtime_tasks_that_report_their_progress() {
        use crate::llm::{ScriptedModel, ScriptedTurn};
        use crate::runtime::Event;
        let (events, seen) = crossbeam_channel::unbounded();
        let runtime = Runtime::builder()
            .observer(move |event: &Event| {
                let _ = events.send(event.clone());
            })
            .build()
            .unwrap();
        let model = Arc::new(ScriptedModel::new([
            ScriptedTurn::tool_call("read", json!({"path": "Cargo.toml"})),
            ScriptedTurn::text("a plan"),
        ]));
        let subagents = Subagents::new(model, available()).transcripts(Transcripts::Off);
        let workspace = Workspace::current_dir().unwrap();
        let handle = subagents
            .spawn(
                &runtime,
                &workspace,
                SubagentRequest::new("plan", "plan it"),
            )
            .unwrap();
        assert!(handle.run_id().starts_with("plan-"));
        let outcome = handle.wait();
        assert!(outcome.error.is_none());
        assert_eq!(outcome.result.unwrap().text, "a plan");
        runtime.shutdown(Duration::from_secs(5)).unwrap();
        let names: Vec<&str> = seen.try_iter().map(|event| event.kind.name()).collect();
        assert_eq!(
            names,
            [
                "queued",
                "started",
                "turn",
                "tool",
                "tool done",
                "turn",
                "finished"
            ],
        );
        let error = subagents
            .spawn(&runtime, &workspace, SubagentRequest::new("nope", "x"))
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidInput);
    }

    #[test]
    fn custom_types_replace_builtins_but_not_each_other() {
        let mut types = SubagentRegistry::builtin();
        types
            .register(SubagentSpec::new("explore", "mine", "prompt"))
            .unwrap();
        assert_eq!(types.get("explore").unwrap().description, "mine");
        let error = types
            .register(SubagentSpec::new("explore", "again", "p"))
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Config);
        assert_eq!(types.names().len(), 4);
    }
}
