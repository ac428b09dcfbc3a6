//! Task ids, statuses, and the counts and snapshots a host sees.

use std::borrow::Borrow;
use std::fmt;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

/// A task's id, made by the runtime: the task's label and a random suffix, e.g.
/// `explore-k3m9x2ab`. Unique among live tasks, and random enough to name files that outlive
/// the process (transcripts). Never taken from the caller.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskId(Arc<str>);

/// Crockford's base32 in lowercase: no `i`, `l`, `o` or `u` to misread.
const ID_ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
const ID_SUFFIX_LEN: usize = 8;
const MAX_LABEL_LEN: usize = 32;

impl TaskId {
    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `label-xxxxxxxx`, with 40 random bits drawn from `seq` and `attempt` through a
    /// randomly keyed hash, so ids differ across processes too.
    pub(crate) fn generate(label: &str, seq: u64, attempt: u32) -> TaskId {
        let mut bits = std::collections::hash_map::RandomState::new().hash_one((seq, attempt));
        // Built on the stack and copied once into the `Arc` (one allocation per task).
        let mut id = [0u8; MAX_LABEL_LEN + 1 + ID_SUFFIX_LEN];
        let label = &label.as_bytes()[..label.len().min(MAX_LABEL_LEN)];
        id[..label.len()].copy_from_slice(label);
        id[label.len()] = b'-';
        for byte in &mut id[label.len() + 1..label.len() + 1 + ID_SUFFIX_LEN] {
            *byte = ID_ALPHABET[(bits & 31) as usize];
            bits >>= 5;
        }
        let id = &id[..label.len() + 1 + ID_SUFFIX_LEN];
        // Labels are sanitized ASCII and the alphabet is ASCII; a label cut mid-character by
        // a caller of this crate-internal function would fall back to the lossy form.
        TaskId(String::from_utf8_lossy(id).into())
    }
}

/// Turns a caller's label into the readable start of an id: lowercase letters, digits, `-`
/// and `_`, at most 32 characters; `task` if nothing is left.
pub(crate) fn sanitize_label(label: Option<&str>) -> Arc<str> {
    let mut clean = String::new();
    for c in label.unwrap_or("").chars() {
        let c = c.to_ascii_lowercase();
        let c = if c.is_ascii_alphanumeric() || c == '_' {
            c
        } else {
            '-'
        };
        if c == '-' && (clean.is_empty() || clean.ends_with('-')) {
            continue;
        }
        if clean.len() == MAX_LABEL_LEN {
            break;
        }
        clean.push(c);
    }
    let clean = clean.trim_end_matches('-');
    if clean.is_empty() {
        "task".into()
    } else {
        clean.into()
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl Borrow<str> for TaskId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for TaskId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Which time limit fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimeoutKind {
    /// The task waited too long for an execution slot.
    Queue,
    /// The run took too long (counted from its start).
    Execution,
    /// The caller's whole call took too long (queueing included).
    Wait,
}

impl fmt::Display for TimeoutKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TimeoutKind::Queue => "queue",
            TimeoutKind::Execution => "execution",
            TimeoutKind::Wait => "wait",
        })
    }
}

/// Where a task is in its life: `Pending → Running → Completed | Failed | Cancelled |
/// TimedOut`. A task may also end straight from `Pending` (cancelled or timed out in the
/// queue). The first terminal status written is final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaskStatus {
    /// Admitted, waiting for an execution slot.
    Pending,
    /// On an execution thread.
    Running,
    /// The job returned `Ok`.
    Completed,
    /// The job returned an error or panicked.
    Failed,
    /// Cancelled by the host, a dropped handle, or shutdown.
    Cancelled,
    /// A time limit fired.
    TimedOut(TimeoutKind),
}

impl TaskStatus {
    /// Whether this status is final.
    pub fn is_terminal(self) -> bool {
        !matches!(self, TaskStatus::Pending | TaskStatus::Running)
    }
}

impl fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskStatus::Pending => f.write_str("pending"),
            TaskStatus::Running => f.write_str("running"),
            TaskStatus::Completed => f.write_str("completed"),
            TaskStatus::Failed => f.write_str("failed"),
            TaskStatus::Cancelled => f.write_str("cancelled"),
            TaskStatus::TimedOut(limit) => write!(f, "timed out ({limit})"),
        }
    }
}

/// A live task as a host sees it, from [`Runtime::tasks`](super::Runtime::tasks).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TaskSnapshot {
    /// The task's id.
    pub id: TaskId,
    /// The label it was submitted with.
    pub label: Arc<str>,
    /// Its status. A terminal status here means its job ignores cancellation and still holds
    /// an execution thread.
    pub status: TaskStatus,
    /// Time since submission.
    pub age: Duration,
    /// Time since its run started, if it has.
    pub running_for: Option<Duration>,
    /// Whether its job occupies an execution thread.
    pub holds_slot: bool,
}

/// Counts for dashboards, from [`Runtime::stats`](super::Runtime::stats). Gauges are read
/// one by one, so under load they may be a moment apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Stats {
    /// Tasks waiting for an execution slot.
    pub queued: usize,
    /// Tasks running.
    pub running: usize,
    /// Jobs that ended (timed out or cancelled) but ignore cancellation and still hold an
    /// execution thread.
    pub zombies: usize,
    /// Task records held by the runtime (queued, running and zombie tasks). Counted a
    /// registry shard at a time: while tasks start and end, it may count a task that ended
    /// during the count next to one that started during it.
    pub live: usize,
    /// Tasks admitted since the runtime started.
    pub submitted: u64,
    /// Tasks refused because the queue was full.
    pub rejected: u64,
    /// Tasks that completed.
    pub completed: u64,
    /// Tasks whose job failed or panicked.
    pub failed: u64,
    /// Tasks cancelled.
    pub cancelled: u64,
    /// Tasks that timed out (any limit).
    pub timed_out: u64,
}

/// The runtime's counters. Gauges move only under the record lock of the task they count,
/// together with the status change they reflect.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) queued: AtomicUsize,
    pub(crate) running: AtomicUsize,
    pub(crate) zombies: AtomicUsize,
    pub(crate) submitted: AtomicU64,
    pub(crate) rejected: AtomicU64,
    pub(crate) completed: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) cancelled: AtomicU64,
    pub(crate) timed_out: AtomicU64,
}

impl Counters {
    pub(crate) fn snapshot(&self, live: usize) -> Stats {
        Stats {
            queued: self.queued.load(Ordering::Relaxed),
            running: self.running.load(Ordering::Relaxed),
            zombies: self.zombies.load(Ordering::Relaxed),
            live,
            submitted: self.submitted.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            completed: self.completed.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            cancelled: self.cancelled.load(Ordering::Relaxed),
            timed_out: self.timed_out.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn count_end(&self, status: TaskStatus) {
        let counter = match status {
            TaskStatus::Completed => &self.completed,
            TaskStatus::Failed => &self.failed,
            TaskStatus::Cancelled => &self.cancelled,
            TaskStatus::TimedOut(_) => &self.timed_out,
            TaskStatus::Pending | TaskStatus::Running => return,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_label_and_random_suffix() {
        let a = TaskId::generate("explore", 1, 0);
        let b = TaskId::generate("explore", 1, 1);
        assert!(a.as_str().starts_with("explore-"));
        assert_eq!(a.as_str().len(), "explore-".len() + ID_SUFFIX_LEN);
        assert_ne!(a, b);
    }

    #[test]
    fn labels_are_made_readable() {
        assert_eq!(&*sanitize_label(None), "task");
        assert_eq!(&*sanitize_label(Some("  ")), "task");
        assert_eq!(&*sanitize_label(Some("Find the TODOs!")), "find-the-todos");
        assert_eq!(&*sanitize_label(Some("../../etc")), "etc");
        assert_eq!(sanitize_label(Some(&"x".repeat(100))).len(), MAX_LABEL_LEN);
    }
}
