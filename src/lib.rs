//! # subtask
//!
//! Gives an LLM agent one tool, `task`, that hands work to a subagent and **blocks until the
//! answer is back**. Everything asynchronous happens behind that call: the calling model
//! never sees a task id, a status or a poll.
//!
//! This crate is synchronous (no async runtime). Its core is the [`Runtime`]: a scheduler
//! pool that admits and dispatches work, an execution pool that runs it, and a timer that
//! enforces every deadline. Subagents think through the models of [`llm`]: OpenAI-compatible
//! servers and Anthropic over HTTP, or a scripted model for tests.
//!
//! ## Usage
//!
//! ```
//! use std::time::Duration;
//! use subtask::{ErrorKind, RunOptions, Runtime};
//!
//! let runtime = Runtime::builder()
//!     .execution_timeout(Duration::from_secs(60))
//!     .build()?;
//!
//! // Blocks until the job ends; the caller is woken the moment it does.
//! let sum: u64 = runtime.run(|_job| Ok((1..=10).sum()), RunOptions::new())?;
//! assert_eq!(sum, 55);
//!
//! // A job that outlives its execution timeout is cancelled through its token.
//! let result: Result<(), _> = runtime.run(
//!     |job| job.token().sleep(Duration::from_secs(60)),
//!     RunOptions::new().execution_timeout(Duration::from_millis(20)),
//! );
//! assert_eq!(result.unwrap_err().kind(), ErrorKind::Timeout);
//! # Ok::<(), subtask::Error>(())
//! ```
//!
//! ## Error handling
//!
//! Every fallible function returns [`Error`], whose [`kind`](Error::kind) is an
//! [`ErrorKind`] and whose message says what was wrong and what to do next.
//! [`Error::is_retryable`] tells whether the same request may succeed later.
//!
//! ## Threads
//!
//! A runtime owns `scheduler_threads` (4) + `execution_threads` (8) pool threads, one timer
//! thread, one janitor thread, and one mailbox thread per observer (plus one for per-call
//! observers). [`Runtime`] is a cheap handle: clones share them. Scheduler threads never
//! wait on a run, so all execution threads can be busy at once. Dropping the last handle (or
//! calling [`Runtime::shutdown`]) cancels every task and waits a bounded grace time for the
//! jobs to return. Observers run on mailbox threads of their own, cancel actions on the
//! thread that cancels (the janitor thread for a timeout), both without any runtime lock
//! held; a panic in either is logged, never propagated.
//!
//! ## Log levels
//!
//! Through the `log` crate: `warn` for jobs that ignore cancellation (every poll interval
//! while they hold a thread) and for shutdowns that leave such jobs behind; `info` for late
//! results discarded after a timeout and provider retries; `debug` for each task's end and
//! heartbeat and each provider request (its URL, never its headers). API keys are never
//! logged.
//!
//! ## Versioning
//!
//! Semantic versioning. [`ErrorKind`], [`EventKind`] and the stats types are
//! `#[non_exhaustive]`: new variants and fields are not breaking changes.

#![deny(unsafe_code)] // allowed in src/ffi.rs and src/sandbox/linux.rs alone
#![warn(missing_docs, missing_debug_implementations)]

pub mod agent;
mod error;
pub mod ffi;
pub mod llm;
pub mod mcp;
mod runtime;
pub mod sandbox;
mod script;
pub mod subagents;
pub mod task_tool;
pub mod tools;
pub mod transcript;

pub use agent::Progress;
pub use error::{Error, ErrorKind, ProviderDetails, Result};
pub use runtime::{
    CancelGuard, CancelReason, CancelToken, Config, Event, EventKind, JobContext, Observer,
    ProgressReport, RunOptions, Runtime, RuntimeBuilder, Stats, TaskHandle, TaskId, TaskSnapshot,
    TaskStatus, TimeoutKind, WeakRuntime,
};
pub use script::{Task, task};

/// The README's example, compiled and run by `cargo test`.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

/// With the `mimalloc` feature (the Python wheel and C hosts' builds), mimalloc allocates for
/// the whole process: see the dependency's note in Cargo.toml.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
