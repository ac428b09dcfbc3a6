//! Transcripts: each subagent run's conversation as JSON Lines, one file per run, flushed
//! after every turn so a crash loses at most the turn in flight.
//!
//! A file starts with a `start` line (run id, subagent type, model, time), then one
//! `message` line per message, then an `end` line (stop reason, usage) if the run ended
//! normally. Later runs continue a conversation from these files ([`TranscriptStore::load`]).
//!
//! # Where they live, and why not in the workspace
//!
//! A transcript is read back to resume a run, so whoever can write one can steer a later
//! run. Subagents write to their workspace (and a cloned repository ships whatever files it
//! likes), so transcripts live outside it by default: in the per-user state directory, one
//! directory per workspace ([`default_dir`]):
//! `$XDG_STATE_HOME/subtask/transcripts/<workspace key>/` (`~/.local/state/…` when
//! `XDG_STATE_HOME` is unset). Directories are made `0700` and files `0600`; files are
//! opened without following symlinks and must be regular files owned by the current user.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use rustix::fs::OFlags;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::llm::{Message, Role, Usage};

/// The largest transcript [`TranscriptStore::load`] reads: 64 MiB.
pub const MAX_TRANSCRIPT_BYTES: u64 = 64 * 1024 * 1024;

/// The per-user state directory: `$XDG_STATE_HOME`, else `$HOME/.local/state`.
///
/// # Errors
///
/// [`ErrorKind::Config`](crate::ErrorKind::Config) when neither variable gives an absolute
/// path.
pub fn state_dir() -> Result<PathBuf, Error> {
    let absolute = |name: &str| {
        std::env::var_os(name)
            .map(PathBuf::from)
            .filter(|path| path.is_absolute())
    };
    absolute("XDG_STATE_HOME")
        .or_else(|| absolute("HOME").map(|home| home.join(".local/state")))
        .ok_or_else(|| {
            Error::config(
                "there is no per-user state directory for transcripts (neither XDG_STATE_HOME \
                 nor HOME is an absolute path): set one, or choose a transcript directory",
            )
        })
}

/// Where the transcripts of runs in `workspace` go by default:
/// `<state dir>/subtask/transcripts/<workspace key>`, the key being the canonical path made
/// into one readable file name plus a hash (`home-ana-src-app-3f2a9c1b04d7e865`).
///
/// # Errors
///
/// As [`state_dir`].
pub fn default_dir(workspace: &Path) -> Result<PathBuf, Error> {
    Ok(state_dir()?
        .join("subtask/transcripts")
        .join(workspace_key(workspace)))
}

/// A file name for `workspace`: its last components (at most 48 characters, other
/// characters than `a-zA-Z0-9._` turned into `-`) and a stable 64-bit FNV-1a hash of the
/// whole path, so two workspaces never share a directory.
pub(crate) fn workspace_key(workspace: &Path) -> String {
    let bytes = workspace.as_os_str().as_encoded_bytes();
    let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    let readable: String = workspace
        .to_string_lossy()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let readable = readable.trim_matches('-');
    let start = readable
        .char_indices()
        .rev()
        .nth(47)
        .map_or(0, |(index, _)| index);
    let readable = readable[start..].trim_start_matches(['-', '.']);
    format!("{readable}-{hash:016x}")
}

/// `open` flags for transcripts: never through a symlink, never blocking on a FIFO.
const NO_FOLLOW: i32 = (OFlags::NOFOLLOW.bits() | OFlags::NONBLOCK.bits()) as i32;

/// Opens an existing transcript for reading: no symlink followed, a regular file owned by
/// this user, at most [`MAX_TRANSCRIPT_BYTES`].
fn open_for_reading(path: &Path) -> std::io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(NO_FOLLOW)
        .open(path)?;
    check_owned_file(&file)?;
    Ok(file)
}

/// Refuses anything but a regular file owned by this process's user.
fn check_owned_file(file: &File) -> std::io::Result<()> {
    let metadata = file.metadata()?;
    if !metadata.file_type().is_file() {
        return Err(std::io::Error::other("it is not a regular file"));
    }
    if metadata.uid() != rustix::process::geteuid().as_raw() {
        return Err(std::io::Error::other("it belongs to another user"));
    }
    Ok(())
}

/// One line of a transcript.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Entry {
    /// The first line.
    Start {
        /// The run's id (the task id).
        run_id: String,
        /// The subagent type.
        subagent: String,
        /// `provider:model`.
        model: String,
        /// Seconds since the Unix epoch.
        started_at: u64,
        /// The run's workspace (absolute), so a resumed run works where the run did.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        workspace: Option<PathBuf>,
    },
    /// A message of the conversation, in order.
    Message {
        /// The message.
        message: Message,
    },
    /// The last line of a run that ended (any way but a crash).
    End {
        /// Why it ended (`completed`, `max_turns`, `cancelled`…).
        stop_reason: String,
        /// Tokens and cost of the whole run.
        usage: Usage,
        /// Turns taken.
        turns: u32,
    },
}

/// A directory of transcripts, one `<run-id>.jsonl` file per run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranscriptStore {
    dir: PathBuf,
}

impl TranscriptStore {
    /// Transcripts in `dir` (made when the first one is written).
    pub fn new(dir: impl Into<PathBuf>) -> TranscriptStore {
        TranscriptStore { dir: dir.into() }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file of run `run_id`.
    pub fn path(&self, run_id: &str) -> PathBuf {
        self.dir.join(format!("{run_id}.jsonl"))
    }

    /// Starts the transcript of a new run (appending if the file exists: a resumed run).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Io`](crate::ErrorKind::Io) if the directory or file cannot be made.
    pub fn create(&self, run_id: &str, subagent: &str, model: &str) -> Result<Transcript, Error> {
        self.create_in(run_id, subagent, model, None)
    }

    /// [`create`](Self::create), recording the run's workspace in the start line.
    ///
    /// # Errors
    ///
    /// As [`create`](Self::create).
    pub fn create_in(
        &self,
        run_id: &str,
        subagent: &str,
        model: &str,
        workspace: Option<&Path>,
    ) -> Result<Transcript, Error> {
        // Directories this makes are private (0700); an existing one is used as it is.
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(|error| {
                Error::from(error).with_context(format!(
                    "cannot create the transcript directory {}",
                    self.dir.display()
                ))
            })?;
        let path = self.path(run_id);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .custom_flags(NO_FOLLOW)
            .open(&path)
            .and_then(|file| check_owned_file(&file).map(|()| file))
            .map_err(|error| {
                Error::from(error)
                    .with_context(format!("cannot open the transcript {}", path.display()))
            })?;
        let transcript = Transcript {
            path,
            file: Mutex::new(file),
        };
        let started_at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_secs());
        transcript.append(&Entry::Start {
            run_id: run_id.to_string(),
            subagent: subagent.to_string(),
            model: model.to_string(),
            started_at,
            workspace: workspace.map(Path::to_path_buf),
        })?;
        Ok(transcript)
    }

    /// The entries of run `run_id`'s transcript.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) if there is no such
    /// transcript or a line is not a transcript entry (naming the file and line).
    pub fn load(&self, run_id: &str) -> Result<Vec<Entry>, Error> {
        let path = self.path(run_id);
        let file = open_for_reading(&path).map_err(|error| {
            if error.kind() == std::io::ErrorKind::NotFound {
                Error::invalid_input(format!(
                    "no transcript for run '{run_id}' ({}: {error}); use the id from a \
                     previous run's footer",
                    path.display()
                ))
            } else {
                Error::invalid_input(format!(
                    "the transcript of run '{run_id}' ({}) cannot be used: {error}",
                    path.display()
                ))
            }
        })?;
        let length = file.metadata()?.len();
        if length > MAX_TRANSCRIPT_BYTES {
            return Err(Error::invalid_input(format!(
                "the transcript of run '{run_id}' ({}) has {length} bytes, more than the {} a \
                 run can be resumed from; start a new run instead",
                path.display(),
                MAX_TRANSCRIPT_BYTES
            )));
        }
        let mut entries = Vec::new();
        let reader = BufReader::new(file.take(MAX_TRANSCRIPT_BYTES));
        for (number, line) in reader.lines().enumerate() {
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            let entry = serde_json::from_str(&line).map_err(|error| {
                Error::invalid_input(format!(
                    "the transcript {} is corrupt at line {}: {error}",
                    path.display(),
                    number + 1
                ))
            })?;
            entries.push(entry);
        }
        Ok(entries)
    }

    /// The workspace run `run_id` ran in, as its first start line recorded it.
    ///
    /// # Errors
    ///
    /// As [`load`](Self::load).
    pub fn workspace(&self, run_id: &str) -> Result<Option<PathBuf>, Error> {
        Ok(self
            .load(run_id)?
            .into_iter()
            .find_map(|entry| match entry {
                Entry::Start { workspace, .. } => Some(workspace),
                _ => None,
            })
            .flatten())
    }

    /// The conversation of run `run_id`: its messages in order, consecutive user messages
    /// joined into one (a resumed run's prompt follows the last run's tool results).
    ///
    /// # Errors
    ///
    /// As [`load`](Self::load).
    pub fn messages(&self, run_id: &str) -> Result<Vec<Message>, Error> {
        let mut messages: Vec<Message> = Vec::new();
        for entry in self.load(run_id)? {
            let Entry::Message { message } = entry else {
                continue;
            };
            match messages.last_mut() {
                Some(last) if last.role == Role::User && message.role == Role::User => {
                    last.content.extend(message.content);
                }
                _ => messages.push(message),
            }
        }
        Ok(messages)
    }
}

/// An open transcript. Each [`append`](Self::append) writes one line and flushes it.
#[derive(Debug)]
pub struct Transcript {
    path: PathBuf,
    file: Mutex<File>,
}

impl Transcript {
    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes one entry as a line and flushes it to the file.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Io`](crate::ErrorKind::Io) if the write fails.
    pub fn append(&self, entry: &Entry) -> Result<(), Error> {
        let mut line = serde_json::to_vec(entry).map_err(|error| {
            Error::new(
                crate::ErrorKind::Internal,
                format!("a transcript entry could not be encoded: {error}"),
            )
        })?;
        line.push(b'\n');
        let mut file = self.file.lock();
        // One write call per line: a crash leaves whole lines, at worst one partial last line.
        file.write_all(&line)?;
        file.flush()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transcript_round_trips_and_a_corrupt_one_is_named() {
        let dir = std::env::temp_dir().join(format!("subtask-transcripts-{}", std::process::id()));
        let store = TranscriptStore::new(&dir);
        let transcript = store
            .create("explore-abc", "explore", "scripted:model")
            .unwrap();
        transcript
            .append(&Entry::Message {
                message: Message::user("hello"),
            })
            .unwrap();
        assert_eq!(
            store.messages("explore-abc").unwrap(),
            vec![Message::user("hello")]
        );
        assert!(matches!(
            store.load("explore-abc").unwrap()[0],
            Entry::Start { .. }
        ));
        std::fs::write(store.path("broken"), "{\"type\":\"start\"\n").unwrap();
        let error = store.load("broken").unwrap_err();
        assert!(error.message().contains("corrupt at line 1"), "{error}");
        let error = store.load("nobody").unwrap_err();
        assert!(
            error.message().contains("no transcript for run 'nobody'"),
            "{error}"
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
