//! Transcripts: each subagent run's conversation as JSON Lines, one file per run, flushed
//! after every turn so a crash loses at most the turn in flight.
//!
//! A file starts with a `start` line (run id, subagent type, model, time), then one
//! `message` line per message, then an `end` line (stop reason, usage) if the run ended
//! normally. Later runs continue a conversation from these files ([`TranscriptStore::load`]).

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::llm::{Message, Role, Usage};

/// Where transcripts go by default, relative to the workspace.
pub const DEFAULT_TRANSCRIPT_DIR: &str = ".subtask/transcripts";

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
        fs::create_dir_all(&self.dir).map_err(|error| {
            Error::from(error).with_context(format!(
                "cannot create the transcript directory {}",
                self.dir.display()
            ))
        })?;
        let path = self.path(run_id);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
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
        let file = File::open(&path).map_err(|error| {
            Error::invalid_input(format!(
                "no transcript for run '{run_id}' ({}: {error}); use the id from a previous \
                 run's footer",
                path.display()
            ))
        })?;
        let mut entries = Vec::new();
        for (number, line) in BufReader::new(file).lines().enumerate() {
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
