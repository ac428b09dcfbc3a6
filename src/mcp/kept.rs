//! Runs kept going after their client gave up on the call (`keep_abandoned_runs`), for
//! hosts that cancel a tool call after a fixed time and do not support tasks: the next
//! `task` call with `resume: <run id>` waits for the run and returns its answer.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::runtime::CancelToken;
use crate::task_tool::TaskOutput;

/// The runs of calls in progress, and of abandoned calls until their answers are claimed.
pub(crate) struct KeptRuns {
    /// Run id → its call. Entries of a call that answered its client are removed when it
    /// answers; those of an abandoned call stay until claimed or `ttl` after it ended.
    /// `KeptCall::abandoned` is written under this lock too, so a call cannot be abandoned
    /// between its answer and the removal of its entries.
    runs: Mutex<HashMap<String, Arc<KeptCall>>>,
    ttl: Duration,
}

/// One call whose runs may be kept.
pub(crate) struct KeptCall {
    /// `None` while the call runs; its output and when it ended, after.
    output: Mutex<Option<(TaskOutput, Instant)>>,
    done: Condvar,
    abandoned: std::sync::atomic::AtomicBool,
}

impl KeptCall {
    pub fn new() -> Arc<KeptCall> {
        Arc::new(KeptCall {
            output: Mutex::new(None),
            done: Condvar::new(),
            abandoned: std::sync::atomic::AtomicBool::new(false),
        })
    }

    fn is_abandoned(&self) -> bool {
        self.abandoned.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl KeptRuns {
    pub fn new(ttl: Duration) -> KeptRuns {
        KeptRuns {
            runs: Mutex::new(HashMap::new()),
            ttl,
        }
    }

    /// `run` belongs to `call`.
    pub fn track(&self, run: &str, call: &Arc<KeptCall>) {
        let mut runs = self.runs.lock();
        self.purge(&mut runs);
        runs.insert(run.to_string(), call.clone());
    }

    fn purge(&self, runs: &mut HashMap<String, Arc<KeptCall>>) {
        runs.retain(|_, call| match &*call.output.lock() {
            Some((_, ended)) => ended.elapsed() < self.ttl,
            None => true,
        });
    }

    /// The client gave up on `call`: its runs go on and stay claimable.
    pub fn abandon(&self, call: &Arc<KeptCall>) {
        let _runs = self.runs.lock();
        call.abandoned
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// `call` ended with `output`. Unless it was abandoned, its runs are forgotten.
    pub fn finish(&self, call: &Arc<KeptCall>, output: &TaskOutput) {
        *call.output.lock() = Some((output.clone(), Instant::now()));
        call.done.notify_all();
        let mut runs = self.runs.lock();
        if !call.is_abandoned() {
            runs.retain(|_, kept| !Arc::ptr_eq(kept, call));
        }
    }

    /// The abandoned call `run` belongs to, if any.
    pub fn abandoned(&self, run: &str) -> Option<Arc<KeptCall>> {
        let mut runs = self.runs.lock();
        self.purge(&mut runs);
        runs.get(run).filter(|call| call.is_abandoned()).cloned()
    }

    /// Waits for `call` to end (or `token` to be tripped), then hands over `run`'s result
    /// once, as the output of a call of that run alone: the run is forgotten.
    pub fn claim(&self, call: &KeptCall, run: &str, token: &CancelToken) -> Option<TaskOutput> {
        let mut output = call.output.lock();
        while output.is_none() {
            if token.is_cancelled() {
                return None;
            }
            // Woken when the call ends; the slice notices `token`.
            call.done.wait_for(&mut output, Duration::from_millis(100));
        }
        let result = output.as_ref().and_then(|(output, _)| {
            let mut alone = output.clone();
            alone
                .results
                .retain(|result| result.run_id.as_deref() == Some(run));
            let result = alone.results.first()?;
            alone.is_error = !result.is_complete();
            alone.usage = result.usage;
            alone.duration_ms = result.duration_ms;
            Some(alone)
        });
        drop(output);
        self.runs.lock().remove(run);
        result
    }
}
