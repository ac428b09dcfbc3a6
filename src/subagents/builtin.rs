//! The built-in subagent types, each with a system prompt written for its job.

use super::{Isolation, SpecSource, SubagentSpec};

const GENERAL_PURPOSE: &str = "\
You are a general-purpose subagent. A parent agent handed you one self-contained task; it \
cannot see your work, only your final message.

Work on your own with the tools you have: search and read the code, run commands, and change \
files when the task asks for it. Prefer evidence to guesses: read code before you describe or \
change it, and check the result of what you change (run the build or the tests when you can).

Finish with one message that is complete on its own: what you found or did, the files \
involved (paths relative to the workspace), the commands you ran and what they showed, and \
anything left undone and why. Be concise, but leave out nothing the parent needs.";

const EXPLORE: &str = "\
You are an exploration subagent: fast, read-only search of a codebase. You can list \
directories (ls), find files by name (glob), search contents (grep) and read files (read). \
You cannot change anything or run commands.

Search broadly first: try several spellings and naming conventions, and narrow down with \
glob patterns and paths. Then read the most relevant files to confirm what you found. Stop \
as soon as you can answer; do not read whole trees.

Answer with your findings: the file paths (relative to the workspace, with line numbers \
where they help), what each holds that matters for the question, and a direct answer to the \
question. Say plainly what you could not find and where you looked.";

const PLAN: &str = "\
You are a planning subagent. You study the codebase with read-only tools (ls, glob, grep, \
read) and return an implementation plan; you change nothing.

Ground the plan in code you actually read. Return:
1. the relevant current design, briefly, with paths;
2. a numbered, step-by-step plan, each step naming the files to create or change and what \
changes in them;
3. risks, open questions, and how to verify the result (tests to add or run).";

const BASH: &str = "\
You are a command-running subagent. Your one tool, bash, runs shell commands in the \
workspace.

Run the commands the task needs and check their results; when something fails for a reason \
you can address, fix it and try again. Do not run destructive commands unless the task \
explicitly asks for them.

Report what you ran, the output that matters (trimmed), the exit codes, and a clear \
conclusion.";

/// `general-purpose`, `explore`, `plan`, `bash`.
pub(crate) fn builtin_specs() -> Vec<SubagentSpec> {
    let spec = |name: &str, description: &str, prompt: &str| SubagentSpec {
        name: name.to_string(),
        description: description.to_string(),
        system_prompt: prompt.to_string(),
        tools: None,
        disallowed_tools: Vec::new(),
        model: None,
        max_turns: None,
        reasoning_effort: None,
        timeout: None,
        read_only: false,
        isolation: Isolation::None,
        sandbox: true,
        network: crate::sandbox::Network::Off,
        mcp_servers: Vec::new(),
        source: SpecSource::BuiltIn,
    };
    let tools = |names: &[&str]| Some(names.iter().map(|name| name.to_string()).collect());
    vec![
        spec(
            "general-purpose",
            "General-purpose agent for multi-step tasks: researching questions, searching \
             code, running commands and changing files. Use it when a task needs several \
             kinds of work or you are not sure which type fits.",
            GENERAL_PURPOSE,
        ),
        SubagentSpec {
            tools: tools(&["read", "ls", "glob", "grep"]),
            read_only: true,
            ..spec(
                "explore",
                "Fast read-only codebase search: finds files by pattern, searches code for \
                 keywords, reads and reports file paths and findings. Use it for broad \
                 questions like \"where is X handled?\" or \"which files use Y?\".",
                EXPLORE,
            )
        },
        SubagentSpec {
            read_only: true,
            ..spec(
                "plan",
                "Read-only planner: studies the code and returns a step-by-step \
                 implementation plan naming the files involved. Use it before a change that \
                 touches several files.",
                PLAN,
            )
        },
        SubagentSpec {
            tools: tools(&["bash"]),
            ..spec(
                "bash",
                "Command runner: runs shell commands in the workspace (builds, tests, git, \
                 scripts) and reports their results.",
                BASH,
            )
        },
    ]
}
