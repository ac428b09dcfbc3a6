//! `subtask`: the `task` tool from the shell and as an MCP server.
//!
//! `run` hands a prompt (or a file of tasks) to subagents and prints the answer; `agents`
//! lists the subagent types; `schema` prints the tool definition; `mcp` serves the tool
//! on stdin/stdout. Exit codes are in the top-level help (`EXIT_CODES`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use subtask::ErrorKind;

mod catalog;
mod interrupt;
mod progress;
mod run;
mod setup;

/// The top-level help's closing sections; the exit codes are part of the interface.
const AFTER_HELP: &str = "\
Environment:
  SUBTASK_MODEL       the model: provider:model (anthropic:claude-sonnet-5,
                      openai:gpt-5.4-mini, openai-compat:qwen3) or an alias (sonnet,
                      haiku, opus, mini, nano); settings may follow a '?':
                      openai-compat:qwen3?stream=false; --model overrides it
  SUBTASK_MODEL_SETTINGS  model settings, NAME=VALUE;NAME=VALUE (as --set)
  SUBTASK_MODELS_FILE a JSON file of aliases and prices over the built-in table
  ANTHROPIC_API_KEY   the key for anthropic: models
  OPENAI_API_KEY      the key for openai: models (optional for openai-compat:)
  OPENAI_BASE_URL     an OpenAI-compatible server, e.g. http://localhost:11434/v1
  ANTHROPIC_BASE_URL  another address for the Anthropic API
  RUST_LOG            log level on stderr: error, warn (the default), info, debug

Exit codes:
  0    done: every task completed
  1    a task failed, timed out or stopped at a limit
  2    usage or configuration error: a bad flag, no model, an invalid task
  130  interrupted (Ctrl-C, SIGTERM or SIGHUP): every running task was cancelled
       and its processes killed

Examples:
  subtask run --type explore \"Where are timeouts enforced?\"
  subtask run --tasks tasks.json --json
  subtask agents
  subtask schema --format anthropic";

/// Hand work to LLM subagents and get the answer back: one blocking call, from the shell
/// or an MCP client.
#[derive(Debug, Parser)]
#[command(name = "subtask", version, after_help = AFTER_HELP, arg_required_else_help = true)]
struct Cli {
    /// Work in DIR instead of the current directory (the subagents' workspace: its
    /// .subtask/agents/ types, its transcripts)
    #[arg(short = 'C', long = "cwd", value_name = "DIR", global = true)]
    cwd: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a task (or several at once with --tasks) and print the answer
    #[command(after_help = "\
The answer goes to stdout, followed by a footer line with the run id (pass it to --resume
to continue the conversation); progress goes to stderr. Exit codes: 0 done, 1 failed or
timed out, 2 usage or configuration error, 130 interrupted.

A tasks file holds an array of task objects, or {\"tasks\": [...]}, each with the fields of
the task tool (see `subtask schema`): prompt, and optionally description, subagent_type,
model, cwd, tools, read_only, context, files, output, timeout_seconds, resume. --type,
--read-only and --timeout fill in what a task leaves out; a missing description is the
prompt's first words. Up to 10 tasks run at once.")]
    Run(run::RunArgs),
    /// List the subagent types available here, with their descriptions and tools
    Agents(AgentsArgs),
    /// Print the task tool's definition (JSON) for an OpenAI, Anthropic or MCP client
    Schema(SchemaArgs),
    /// Serve the task tool over MCP on stdin/stdout (logs go to stderr)
    #[command(after_help = "\
An MCP client starts it as a stdio server, e.g. in its JSON configuration:

  {\"mcpServers\": {\"subtask\": {\"command\": \"subtask\",
                   \"args\": [\"mcp\", \"--cwd\", \"/path/to/project\"],
                   \"env\": {\"SUBTASK_MODEL\": \"haiku\", \"ANTHROPIC_API_KEY\": \"...\"}}}}

Where the subagents work: with --cwd, in DIR. Without it, in the client's roots when it
shares them (a task's cwd picks the root), else in the current directory, unless that is
/ or your home directory (where desktop hosts start servers): then every call is refused
with a message naming the --cwd line to add.

It serves until the client closes stdin; Ctrl-C (or SIGTERM) cancels every running call
and exits 130.")]
    Mcp(McpArgs),
}

#[derive(Debug, Args)]
struct AgentsArgs {
    /// Print the types as a JSON array
    #[arg(long)]
    json: bool,

    #[command(flatten)]
    agents: setup::AgentSources,
}

#[derive(Debug, Args)]
struct SchemaArgs {
    /// The format of the definition
    #[arg(long, value_enum, default_value_t = SchemaFormat::Openai)]
    format: SchemaFormat,

    #[command(flatten)]
    agents: setup::AgentSources,
}

/// The tool formats `schema` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum SchemaFormat {
    /// An entry of OpenAI's `tools` array (Chat Completions)
    Openai,
    /// An entry of Anthropic's `tools` array (Messages)
    Anthropic,
    /// An entry of an MCP `tools/list` result
    Mcp,
}

#[derive(Debug, Args)]
struct McpArgs {
    #[command(flatten)]
    settings: setup::Settings,

    /// Send a progress notification at least this often while a call runs (hosts such as
    /// Claude Code abort a call that stays silent)
    #[arg(long, value_name = "SECONDS", default_value = "15", value_parser = setup::parse_seconds)]
    progress_interval: std::time::Duration,

    /// Characters of text one call may answer with; longer answers are cut fairly, each
    /// with a note naming the run id that keeps it all (Claude Code caps MCP output at
    /// 25,000 tokens by default)
    #[arg(long, value_name = "CHARS", default_value_t = subtask::mcp::DEFAULT_OUTPUT_BUDGET)]
    max_output_chars: usize,

    /// When the client gives up on a call (Claude Desktop cancels after about a minute),
    /// keep its runs going: a later call with `resume: <run id>` waits for the run and
    /// returns its answer. By default a cancelled call cancels its runs
    #[arg(long)]
    keep_abandoned_runs: bool,
}

/// Why a command stopped, and the exit code that says so.
#[derive(Debug)]
struct Failure {
    code: u8,
    message: String,
}

/// Exit codes (documented in `AFTER_HELP`).
const EXIT_FAILED: u8 = 1;
const EXIT_USAGE: u8 = 2;
const EXIT_INTERRUPTED: u8 = 130;

impl Failure {
    fn usage(message: impl Into<String>) -> Failure {
        Failure {
            code: EXIT_USAGE,
            message: message.into(),
        }
    }
}

impl From<subtask::Error> for Failure {
    fn from(error: subtask::Error) -> Failure {
        let code = match error.kind() {
            ErrorKind::Config | ErrorKind::InvalidInput => EXIT_USAGE,
            _ => EXIT_FAILED,
        };
        Failure {
            code,
            message: error.to_string(),
        }
    }
}

fn main() -> ExitCode {
    // clap prints help and version to stdout with exit 0, usage errors to stderr with 2.
    let cli = Cli::parse();
    // `run --json` promises a stderr of errors only; elsewhere warnings help. RUST_LOG wins.
    let default_level = match &cli.command {
        Command::Run(args) if args.json => "error",
        _ => "warn",
    };
    let logs = env_logger::Env::default().default_filter_or(default_level);
    if matches!(cli.command, Command::Mcp(_)) {
        // `mcp` also sends its log records to the client that asked for them.
        let inner = env_logger::Builder::from_env(logs).build();
        let level = inner.filter();
        if let Err(error) = subtask::mcp::McpLogger::new(Box::new(inner)).install(level) {
            eprintln!("subtask: warning: {error}");
        }
    } else {
        env_logger::Builder::from_env(logs).init();
    }
    interrupt::install();
    let cwd = cli.cwd.as_deref();
    let result = match cli.command {
        Command::Run(args) => run::run(args, cwd),
        Command::Agents(args) => catalog::agents(cwd, args.json, &args.agents),
        Command::Schema(args) => catalog::schema(cwd, args.format, &args.agents),
        Command::Mcp(args) => serve_mcp(cwd, &args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            eprintln!("subtask: error: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

/// `subtask mcp`: stdout carries the protocol only; logs go to stderr.
fn serve_mcp(cwd: Option<&std::path::Path>, args: &McpArgs) -> Result<u8, Failure> {
    let settings = &args.settings;
    let workspace = setup::workspace(cwd)?;
    let model = settings.model()?;
    let tool = setup::task_tool(&workspace, model.clone(), settings, None)?;
    interrupt::watch(tool.runtime().clone(), interrupt::AfterCancel::Exit);
    let runtime = tool.runtime().clone();
    let mut server = subtask::mcp::McpServer::new(tool)
        .progress_interval(args.progress_interval)
        .output_budget(args.max_output_chars)
        .keep_abandoned_runs(args.keep_abandoned_runs);
    // --cwd names the workspace; without it the client's roots do.
    if cwd.is_none() {
        let for_root = setup::tool_for_root(runtime.clone(), model, settings.no_transcripts);
        server = server.follow_roots(for_root);
        if let Some(reason) = setup::host_chosen_directory(workspace.root()) {
            server = server.require_roots(reason);
        }
    }
    // Returns when the client closes stdin, its calls cancelled and answered.
    let served = server.serve_stdio();
    if let Err(error) = runtime.shutdown(setup::SHUTDOWN_GRACE) {
        log::warn!("{error}");
    }
    served?;
    Ok(0)
}
