//! The `bash` tool: one shell command in the workspace, bounded in time and output, and
//! killed with everything it started when the call times out or the task ends.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{RecvTimeoutError, bounded};
use serde_json::{Value, json};

use super::fs::{optional_u64, required_str, thousands};
use super::{Tool, ToolContext, kill_group};
use crate::error::Error;

/// Runs `bash -c <command>` in the workspace root.
///
/// The command gets an empty stdin and runs in a process group of its own, registered with
/// the call's [`ProcessGroups`](super::ProcessGroups): on a timeout the whole group is
/// killed at once, and background processes it leaves (`server &`) are killed when the task
/// is cancelled or its run ends. stdout and stderr go, interleaved, to one temporary file
/// (so a background child holding them open never blocks the call), which is read back,
/// capped (head and tail kept) and deleted. A non-zero exit code is reported in the result,
/// not as an error. The provider keys subtask reads (`OPENAI_API_KEY`, `ANTHROPIC_API_KEY`)
/// are removed from the command's environment, so `env` cannot put them in a transcript.
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
             much was cut; filter long output (`| tail -50`, `grep`) yourself. Background \
             processes (`cmd &`) keep running while the task lasts and are killed when it ends. \
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

        let output = OutputFile::create()?;
        let child = Command::new("bash")
            .arg("-c")
            .arg(command)
            .current_dir(context.workspace().root())
            .stdin(Stdio::null())
            .env_remove("OPENAI_API_KEY")
            .env_remove("ANTHROPIC_API_KEY")
            .stdout(output.file.try_clone()?)
            .stderr(output.file.try_clone()?)
            .process_group(0)
            .spawn();
        let mut child = match child {
            Ok(child) => child,
            Err(error) => {
                return Err(Error::tool(format!("bash could not be started: {error}")));
            }
        };
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
        let waited = wait(&mut child, deadline, || context.processes().kill(pgid));
        drop(on_cancel);

        let status = match waited {
            Waited::Exited(status) => status,
            Waited::NoHelper(error) => {
                context.processes().kill(pgid);
                let _ = child.wait();
                return Err(Error::tool(format!(
                    "the command was stopped: no thread could be started to wait for it \
                     ({error}); try again"
                )));
            }
            Waited::Killed => {
                token.check()?;
                let output = output.read(self.output_cap)?;
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
        let status = status.map_err(|error| {
            context.processes().kill(pgid);
            Error::tool(format!("waiting for bash failed: {error}"))
        })?;
        context.processes().forget_if_finished(pgid);
        let mut text = output.read(self.output_cap)?;
        if text.is_empty() {
            text.push_str("(no output)\n");
        } else if !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&describe_status(status));
        Ok(text)
    }
}

enum Waited {
    /// Bash exited (or waiting for it failed) before the deadline.
    Exited(io::Result<ExitStatus>),
    /// The deadline passed; the group was killed and bash reaped.
    Killed,
    /// No thread could be started to wait on; bash is still running.
    NoHelper(io::Error),
}

/// Waits for `child` on a helper thread until `deadline`; past it, runs `kill` (which must
/// kill the child) and waits for the child to be reaped. No polling: the helper's
/// `child.wait()` returns the moment bash exits or is killed (by `kill` or a cancel action).
fn wait(child: &mut Child, deadline: Option<Instant>, kill: impl Fn()) -> Waited {
    let (sender, receiver) = bounded(1);
    std::thread::scope(|scope| {
        let helper = std::thread::Builder::new()
            .name("subtask-bash-wait".into())
            .spawn_scoped(scope, || {
                let _ = sender.send(child.wait());
            });
        if let Err(error) = helper {
            return Waited::NoHelper(error);
        }
        let received = match deadline {
            Some(deadline) => receiver.recv_deadline(deadline),
            None => receiver.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match received {
            Ok(status) => Waited::Exited(status),
            Err(RecvTimeoutError::Timeout) => {
                kill();
                // Killed, bash exits at once; reap it before reading the output.
                let _ = receiver.recv();
                Waited::Killed
            }
            Err(RecvTimeoutError::Disconnected) => Waited::Exited(Err(helper_gone())),
        }
    })
}

fn helper_gone() -> io::Error {
    io::Error::other("the thread waiting for bash ended without a status")
}

/// Whether no process is left in group `pgid` (`kill(-pgid, 0)` says "no such process").
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

/// The temporary file a command's stdout and stderr both go to; deleted on drop.
struct OutputFile {
    path: PathBuf,
    file: File,
}

impl OutputFile {
    fn create() -> Result<OutputFile, Error> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let directory = std::env::temp_dir();
        let mut attempts = 0;
        loop {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|elapsed| elapsed.subsec_nanos())
                .unwrap_or(0);
            let path = directory.join(format!(
                "subtask-bash-{}-{}-{nanos}.out",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            // Private (0600): the output may hold secrets the command printed.
            match OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
            {
                Ok(file) => return Ok(OutputFile { path, file }),
                Err(error) if error.kind() == io::ErrorKind::AlreadyExists && attempts < 8 => {
                    attempts += 1;
                }
                Err(error) => {
                    return Err(Error::from(io::Error::new(
                        error.kind(),
                        format!(
                            "cannot create a file for the command's output in {}: {error}",
                            directory.display()
                        ),
                    )));
                }
            }
        }
    }

    /// What the command wrote so far, capped at `cap` characters.
    fn read(&self, cap: usize) -> Result<String, Error> {
        // A handle of our own: seeking the child's shared one would move its write offset.
        let mut file = File::open(&self.path)?;
        Ok(read_capped(&mut file, cap)?)
    }
}

impl Drop for OutputFile {
    fn drop(&mut self) {
        // Background children may still hold it open; the data goes when they do.
        let _ = fs::remove_file(&self.path);
    }
}

/// The text of `file` (lossy UTF-8), keeping at most `cap` characters: the first and last
/// halves around a line saying how many were cut. Reads at most about `8 * cap` bytes of a
/// large file (and counts the characters of the rest without keeping them).
fn read_capped(file: &mut File, cap: usize) -> io::Result<String> {
    let length = file.metadata()?.len();
    let head_chars = cap / 2;
    let tail_chars = cap - head_chars;
    // A character is at most 4 bytes, so these many bytes hold at least that many characters.
    let head_bytes = head_chars as u64 * 4;
    let tail_bytes = tail_chars as u64 * 4;
    if length <= head_bytes + tail_bytes {
        let mut bytes = Vec::with_capacity(length as usize);
        file.take(length).read_to_end(&mut bytes)?;
        return Ok(cap_text(&String::from_utf8_lossy(&bytes), cap));
    }
    let mut head = Vec::with_capacity(head_bytes as usize);
    file.take(head_bytes).read_to_end(&mut head)?;
    let mut tail = Vec::with_capacity(tail_bytes as usize);
    file.seek(SeekFrom::Start(length - tail_bytes))?;
    file.take(tail_bytes).read_to_end(&mut tail)?;
    // Count every character (UTF-8 lead bytes; invalid bytes count one each, roughly).
    file.seek(SeekFrom::Start(0))?;
    let mut total = 0u64;
    let mut buffer = vec![0u8; 64 * 1024];
    let mut left = length;
    while left > 0 {
        let want = buffer.len().min(left as usize);
        let read = file.read(&mut buffer[..want])?;
        if read == 0 {
            break;
        }
        total += buffer[..read]
            .iter()
            .filter(|byte| (**byte & 0xC0) != 0x80)
            .count() as u64;
        left -= read as u64;
    }
    let head = String::from_utf8_lossy(&head);
    let head: String = head.chars().take(head_chars).collect();
    let tail = String::from_utf8_lossy(&tail);
    let tail_count = tail.chars().count();
    let tail: String = tail
        .chars()
        .skip(tail_count.saturating_sub(tail_chars))
        .collect();
    let cut = total.saturating_sub((head_chars + tail_chars) as u64);
    Ok(join_cut(&head, cut, &tail))
}

/// `text` if it has at most `cap` characters, else its first and last halves around a note.
pub(crate) fn cap_text(text: &str, cap: usize) -> String {
    let total = text.chars().count();
    if total <= cap {
        return text.to_string();
    }
    let head_chars = cap / 2;
    let tail_chars = cap - head_chars;
    let head_end = text
        .char_indices()
        .nth(head_chars)
        .map_or(text.len(), |(index, _)| index);
    let tail_start = text
        .char_indices()
        .nth(total - tail_chars)
        .map_or(text.len(), |(index, _)| index);
    join_cut(
        &text[..head_end],
        (total - head_chars - tail_chars) as u64,
        &text[tail_start..],
    )
}

fn join_cut(head: &str, cut: u64, tail: &str) -> String {
    let mut text = String::with_capacity(head.len() + tail.len() + 64);
    text.push_str(head);
    if !head.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&format!("[... {} characters cut ...]\n", thousands(cut)));
    text.push_str(tail);
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_kept_whole() {
        assert_eq!(cap_text("hello", 5), "hello");
    }

    #[test]
    fn long_text_keeps_head_and_tail() {
        let text = format!("{}{}", "a".repeat(10), "b".repeat(10));
        assert_eq!(cap_text(&text, 6), "aaa\n[... 14 characters cut ...]\nbbb");
        let wide = "é".repeat(20);
        let capped = cap_text(&wide, 4);
        assert!(capped.starts_with("éé\n[... 16 characters cut ...]\néé"));
    }

    #[test]
    fn large_files_are_read_in_part() {
        let path = std::env::temp_dir().join(format!("subtask-bash-test-{}", std::process::id()));
        fs::write(&path, format!("{}{}", "h".repeat(1000), "t".repeat(1000))).unwrap();
        let mut file = File::open(&path).unwrap();
        let text = read_capped(&mut file, 10).unwrap();
        fs::remove_file(&path).unwrap();
        assert_eq!(text, "hhhhh\n[... 1,990 characters cut ...]\nttttt");
    }
}
