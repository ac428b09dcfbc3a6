//! The `bash` tool: one shell command in the workspace, confined by the run's
//! [`Sandbox`](crate::sandbox::Sandbox), bounded in time and output, and killed with
//! everything it started when the call times out or the task ends.

use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::capture::Capture;
use super::fs::{optional_u64, required_str, thousands};
use super::{Tool, ToolContext, kill_group};
use crate::error::Error;
use crate::sandbox::Network;

/// Runs `bash -c <command>` in the workspace root.
///
/// The command runs in the [`Sandbox`](crate::sandbox::Sandbox) of the call's
/// [`ToolContext`] (by default: confined, network off; see [`crate::sandbox`]), with an
/// empty stdin, in a process group of its own registered with the call's
/// [`ProcessGroups`](super::ProcessGroups). Confined, every process it starts — background,
/// `setsid` and double-forked ones included — lives in a PID namespace that ends when bash
/// returns. Unconfined, background processes (`server &`) are killed when the task is
/// cancelled or its run ends. On a timeout or cancellation the whole group is killed at once.
/// stdout and stderr go, interleaved, to a pipe read into a bounded head buffer and tail
/// ring (nothing on disk, memory bounded whatever the command writes), then capped (head
/// and tail kept). A non-zero exit code is reported in the result, not as an error.
#[derive(Debug, Clone)]
pub struct BashTool {
    timeout: Duration,
    output_cap: usize,
    description: String,
}

impl BashTool {
    /// How long a command may run unless the call says otherwise: 120 s.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
    /// The longest timeout a call may ask for (`timeout_seconds`): 600 s.
    pub const MAX_TIMEOUT: Duration = Duration::from_secs(600);
    /// The most characters of output handed back: 30,000 (the first and last halves).
    pub const DEFAULT_OUTPUT_CAP: usize = 30_000;

    /// The tool with the default timeout (120 s) and output cap (30,000 characters).
    pub fn new() -> BashTool {
        BashTool::with_limits(Self::DEFAULT_TIMEOUT, Self::DEFAULT_OUTPUT_CAP)
    }

    /// The tool with another default timeout (kept within 1 s ..= [`MAX_TIMEOUT`]) and output
    /// cap in characters (at least 2). Either way a call never outlives its task's deadline.
    ///
    /// [`MAX_TIMEOUT`]: Self::MAX_TIMEOUT
    pub fn with_limits(timeout: Duration, output_cap: usize) -> BashTool {
        let timeout = timeout.clamp(Duration::from_secs(1), Self::MAX_TIMEOUT);
        let output_cap = output_cap.max(2);
        let description = format!(
            "Runs a shell command with `bash -c` in the workspace root and returns its output \
             (stdout and stderr together, in the order written) followed by a line \
             `exit code: N`. Use it for builds, tests, git and other programs; to look at or \
             change files prefer read, write, edit, ls, glob and grep. Each call starts a fresh \
             shell: `cd` and variables do not carry over (chain commands with `&&`). stdin is \
             empty, so interactive prompts get no input: pass flags such as `--yes` instead. \
             The command is killed, with every process it started, after {timeout} (set \
             `timeout_seconds`, at most {max}, for slower commands) or when the task ends. \
             Output over {cap} characters keeps its first and last halves with a note of how \
             much was cut; filter long output (`| tail -50`, `grep`) yourself. \
             Unless this subagent type turns the sandbox off, commands run in a sandbox: they \
             read the system (programs, libraries, /etc) and the workspace, write only in the \
             workspace and in $TMPDIR (private, also $HOME, emptied after each command; /tmp \
             is not writable), cannot read home directories or other processes, and have no \
             network unless the task was given network access (a failed connection or name \
             lookup is that refusal, not an outage). In the sandbox every process a command \
             starts, background ones (`cmd &`, nohup, setsid) included, is killed when the \
             command returns: start a server and use it within one command. \
             A non-zero exit code is reported, not treated as a failure of the tool.",
            timeout = seconds(timeout),
            max = seconds(Self::MAX_TIMEOUT),
            cap = thousands(output_cap as u64),
        );
        BashTool {
            timeout,
            output_cap,
            description,
        }
    }

    /// The timeout of a call that does not set `timeout_seconds`.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The most characters of output a call returns.
    pub fn output_cap(&self) -> usize {
        self.output_cap
    }
}

impl Default for BashTool {
    fn default() -> BashTool {
        BashTool::new()
    }
}

impl Tool for BashTool {
    fn name(&self) -> &str {
        "bash"
    }

    fn description(&self) -> &str {
        &self.description
    }

    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "command": {
                    "type": "string",
                    "description": "The command line, run as `bash -c <command>` in the workspace root."
                },
                "timeout_seconds": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": Self::MAX_TIMEOUT.as_secs(),
                    "description": format!(
                        "Seconds before the command is killed; defaults to {}. The task's own \
                         deadline still applies.",
                        self.timeout.as_secs()
                    )
                }
            },
            "required": ["command"],
            "additionalProperties": false
        })
    }

    fn call(&self, input: &Value, context: &ToolContext<'_>) -> Result<String, Error> {
        let command = required_str(input, "command")?;
        if command.trim().is_empty() {
            return Err(Error::tool("the command is empty; give a command to run"));
        }
        let timeout = match optional_u64(input, "timeout_seconds")? {
            Some(seconds) => Duration::from_secs(seconds.clamp(1, Self::MAX_TIMEOUT.as_secs())),
            None => self.timeout,
        };
        let token = context.token();
        token.check()?;

        let sandbox = context.sandbox();
        let mut prepared = sandbox.command(context.workspace().root(), command)?;
        let (output, output_writer) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
            .map_err(|error| Error::tool(format!("bash could not be started: pipe: {error}")))?;
        let mut child = prepared.spawn(output_writer)?;
        let pgid = child.id();
        context.processes().track(pgid);
        // The run's ProcessGroups kills tracked groups on cancel too; this action makes the
        // wait below return at once even if that set belongs to another token.
        let on_cancel = token.on_cancel(move || kill_group(pgid));

        let call_deadline = Instant::now().checked_add(timeout);
        let deadline = match (call_deadline, token.deadline()) {
            (Some(call), Some(task)) => Some(call.min(task)),
            (call, task) => call.or(task),
        };
        let mut capture = Capture::new(self.output_cap);
        let ended = wait_capturing(&mut child, output, &mut capture, deadline, || {
            context.processes().kill(pgid)
        });
        drop(on_cancel);
        // A confined command's processes are all gone after this; its private directory
        // goes with `prepared`.
        prepared.end();
        drop(prepared);

        let status = match ended {
            Ended::Exited(status) => status,
            Ended::Failed(error) => {
                context.processes().kill(pgid);
                let _ = child.wait();
                return Err(Error::tool(format!("waiting for bash failed: {error}")));
            }
            Ended::TimedOut => {
                token.check()?;
                let output = capture.text(self.output_cap);
                return Err(Error::tool(format!(
                    "the command timed out after {} and was killed (with every process it \
                     started); run it with a larger `timeout_seconds`, or make it faster or \
                     smaller. Output so far:\n{}",
                    seconds(timeout),
                    if output.is_empty() { "(none)" } else { &output }
                )));
            }
        };
        token.check()?;
        context.processes().forget_if_finished(pgid);
        let mut text = if capture.is_empty() {
            "(no output)\n".to_string()
        } else {
            capture.text(self.output_cap)
        };
        if !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&describe_status(status));
        if sandbox.is_confined()
            && sandbox.network_access() == Network::Off
            && mentions_network_failure(&text)
        {
            text.push_str(
                "\nnote: this command ran without network access (network is off for this \
                 task): connections to other hosts and name lookups fail, and only servers \
                 started within the same command are reachable on localhost",
            );
        }
        Ok(text)
    }
}

/// How a command's wait ended.
enum Ended {
    /// Bash exited (on its own, or killed by a cancel action) before the deadline.
    Exited(ExitStatus),
    /// The deadline passed; the group was killed and bash reaped.
    TimedOut,
    /// Waiting failed; bash may still be running.
    Failed(io::Error),
}

/// Reads the command's output into `capture` until the child exits, then drains what is
/// left without blocking (an unconfined command's background processes may hold the pipe
/// open). Past `deadline`, runs `kill` (which must kill the child) and goes on until the
/// child is gone. No polling: one `poll` waits for output, the child's exit (a pidfd) and
/// the deadline at once; a cancel action kills the child, which wakes it.
#[cfg(target_os = "linux")]
fn wait_capturing(
    child: &mut Child,
    output: OwnedFd,
    capture: &mut Capture,
    deadline: Option<Instant>,
    kill: impl Fn(),
) -> Ended {
    use rustix::event::{PollFd, PollFlags, Timespec, poll};

    let pid = rustix::process::Pid::from_child(child);
    let exited = match rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()) {
        Ok(pidfd) => pidfd,
        Err(error) => return Ended::Failed(error.into()),
    };
    let mut buffer = vec![0u8; 64 * 1024];
    let mut output_open = true;
    let mut timed_out = false;
    loop {
        let left = match deadline {
            Some(deadline) if !timed_out => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    kill();
                    timed_out = true;
                    continue;
                }
                Some(Timespec {
                    tv_sec: left.as_secs().try_into().unwrap_or(i64::MAX),
                    tv_nsec: left.subsec_nanos().into(),
                })
            }
            _ => None,
        };
        let mut fds = vec![PollFd::new(&exited, PollFlags::IN)];
        if output_open {
            fds.push(PollFd::new(&output, PollFlags::IN));
        }
        match poll(&mut fds, left.as_ref()) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(error) => return Ended::Failed(error.into()),
        }
        let child_exited = !fds[0].revents().is_empty();
        let output_ready = fds.get(1).is_some_and(|fd| !fd.revents().is_empty());
        drop(fds);
        if output_ready {
            match rustix::io::read(&output, &mut buffer) {
                Ok(0) => output_open = false,
                Ok(read) => capture.push(&buffer[..read]),
                Err(rustix::io::Errno::INTR | rustix::io::Errno::AGAIN) => {}
                Err(_) => output_open = false,
            }
        }
        if child_exited {
            break;
        }
    }
    if output_open {
        drain(&output, capture, &mut buffer);
    }
    match child.wait() {
        Ok(_) if timed_out => Ended::TimedOut,
        Ok(status) => Ended::Exited(status),
        Err(error) => Ended::Failed(error),
    }
}

/// The portable fallback: reads output until EOF or the deadline, checking the child
/// every 50 ms (no pidfd outside Linux).
#[cfg(not(target_os = "linux"))]
fn wait_capturing(
    child: &mut Child,
    output: OwnedFd,
    capture: &mut Capture,
    deadline: Option<Instant>,
    kill: impl Fn(),
) -> Ended {
    use rustix::event::{PollFd, PollFlags, Timespec, poll};

    let mut buffer = vec![0u8; 64 * 1024];
    let mut output_open = true;
    let mut timed_out = false;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) => {}
            Err(error) => return Ended::Failed(error),
        }
        if !timed_out && deadline.is_some_and(|deadline| Instant::now() >= deadline) {
            kill();
            timed_out = true;
        }
        let tick = Timespec {
            tv_sec: 0,
            tv_nsec: 50_000_000,
        };
        if output_open {
            let mut fds = [PollFd::new(&output, PollFlags::IN)];
            let ready = matches!(poll(&mut fds, Some(&tick)), Ok(1));
            if ready {
                match rustix::io::read(&output, &mut buffer) {
                    Ok(0) => output_open = false,
                    Ok(read) => capture.push(&buffer[..read]),
                    Err(_) => {}
                }
            }
        } else {
            let _ = poll(&mut [], Some(&tick));
        }
    }
    if output_open {
        drain(&output, capture, &mut buffer);
    }
    match child.wait() {
        Ok(_) if timed_out => Ended::TimedOut,
        Ok(status) => Ended::Exited(status),
        Err(error) => Ended::Failed(error),
    }
}

/// Reads what the pipe holds now, without waiting for more: at most 1 MiB, so a
/// background writer that outlives the command cannot keep the call going.
fn drain(output: &OwnedFd, capture: &mut Capture, buffer: &mut [u8]) {
    use rustix::fs::{OFlags, fcntl_getfl, fcntl_setfl};

    let nonblocking =
        fcntl_getfl(output).and_then(|flags| fcntl_setfl(output, flags | OFlags::NONBLOCK));
    if nonblocking.is_err() {
        return;
    }
    for _ in 0..16 {
        match rustix::io::read(output, &mut *buffer) {
            Ok(0) => return,
            Ok(read) => capture.push(&buffer[..read]),
            Err(rustix::io::Errno::INTR) => {}
            Err(_) => return,
        }
    }
}

/// Whether `output` shows a refused connection or name lookup (curl, wget, git, pip,
/// cargo, npm, ssh, python and glibc wordings).
fn mentions_network_failure(output: &str) -> bool {
    const SIGNS: &[&str] = &[
        "network is unreachable",
        "could not resolve",
        "temporary failure in name resolution",
        "name or service not known",
        "failed to connect",
        "connection refused",
        "failed to lookup address",
        "getaddrinfo",
        "no route to host",
        "unable to resolve host",
    ];
    let lower = output.to_ascii_lowercase();
    SIGNS.iter().any(|sign| lower.contains(sign))
}

fn describe_status(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code: {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => "exit status unknown".to_string(),
    }
}

/// `120 s`, `1.5 s`.
fn seconds(duration: Duration) -> String {
    if duration.subsec_nanos() == 0 {
        format!("{} s", duration.as_secs())
    } else {
        format!("{:.1} s", duration.as_secs_f64())
    }
}
