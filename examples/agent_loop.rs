//! A plain synchronous agent loop that offers the `task` tool next to a tool of its own:
//! the pattern to copy into an existing agent. Uses the model in the environment, or a
//! scripted one when there is none. Run it with `cargo run --example agent_loop`.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::json;
use subtask::llm::{
    ChatModel, ChatRequest, ContentBlock, Message, ModelConfig, Role, ScriptedModel, ScriptedTurn,
    ToolResult, ToolSpec,
};
use subtask::subagents::{Subagents, Transcripts};
use subtask::task_tool::TaskTool;
use subtask::tools::{Workspace, builtin_tools};
use subtask::{CancelToken, Runtime};

fn main() -> Result<(), subtask::Error> {
    let model: Arc<dyn ChatModel> = match ModelConfig::from_env() {
        Ok(config) => config.build()?,
        Err(_) => Arc::new(ScriptedModel::new([
            ScriptedTurn::tool_call(
                "task",
                json!({"description": "Find the README title",
                "prompt": "What is the first heading of README.md?", "subagent_type": "explore"}),
            ),
            ScriptedTurn::text("The first heading of README.md is `# subtask`."), // the subagent
            ScriptedTurn::tool_call("clock", json!({})),
            ScriptedTurn::text("Done: I found the README title and checked the time."),
        ])),
    };
    let subagents = Subagents::new(model.clone(), builtin_tools()).transcripts(Transcripts::Off);
    let task = TaskTool::new(Runtime::new()?, subagents, Workspace::current_dir()?);
    let tools = [
        ToolSpec {
            name: "task".into(),
            description: task.description().into(),
            parameters: task.parameters(),
        },
        ToolSpec {
            name: "clock".into(),
            description: "The current Unix time in seconds.".into(),
            parameters: json!({"type": "object", "properties": {}}),
        },
    ];
    let mut messages = vec![Message::user(
        "Find the title of README.md, then tell me the time.",
    )];
    loop {
        let request = ChatRequest::new("You are a helpful agent.", &messages).tools(&tools);
        let reply = model.chat(&request, &CancelToken::new(), &mut |_| {})?;
        let calls: Vec<_> = reply.message.tool_uses().cloned().collect();
        messages.push(reply.message.clone());
        if calls.is_empty() {
            println!("{}", reply.message.text());
            return Ok(());
        }
        let results = calls.iter().map(|call| {
            // `task` blocks until its subagents are done and returns their answers.
            let (content, is_error) = match call.name.as_str() {
                "task" => {
                    let output = task.call_json(&call.input.to_value());
                    (output.to_text(), output.is_error)
                }
                "clock" => {
                    let now = SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .unwrap_or_default();
                    (now.as_secs().to_string(), false)
                }
                other => (format!("there is no tool {other}"), true),
            };
            println!(
                "[{}] {}",
                call.name,
                content.lines().next().unwrap_or_default()
            );
            ContentBlock::ToolResult(ToolResult {
                tool_use_id: call.id.clone(),
                content,
                is_error,
            })
        });
        messages.push(Message {
            role: Role::User,
            content: results.collect(),
        });
    }
}
