//! Ctrl-C (and SIGTERM, SIGHUP): cancel every running task, which kills the processes its
//! commands started, and exit 130 within a second.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use subtask::Runtime;

use crate::EXIT_INTERRUPTED;

/// What the handler does once every task is cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterCancel {
    /// Give the main thread a moment to print the partial results and exit 130 itself
    /// (`run`: its blocking call returns as soon as the runs have stopped).
    LetMainFinish,
    /// Exit 130 at once (`mcp`: the main thread is blocked reading stdin).
    Exit,
}

/// How long `LetMainFinish` waits before exiting anyway, so the process is gone within a
/// second of the signal even if a run ignores its cancellation.
const MAIN_GRACE: Duration = Duration::from_millis(800);

static RUNTIME: OnceLock<(Runtime, AfterCancel)> = OnceLock::new();
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Installs the handler. Before [`watch`] names a runtime, a signal just exits 130.
pub fn install() {
    let installed = ctrlc::set_handler(|| {
        if INTERRUPTED.swap(true, Ordering::SeqCst) {
            std::process::exit(EXIT_INTERRUPTED.into()); // a second signal: no more waiting
        }
        let Some((runtime, after)) = RUNTIME.get() else {
            std::process::exit(EXIT_INTERRUPTED.into());
        };
        // Cancel actions run on this thread: when this returns, every command's process
        // group has been sent SIGKILL.
        let cancelled = runtime.cancel_all();
        eprintln!("subtask: interrupted: cancelled {cancelled} running task(s)");
        if *after == AfterCancel::LetMainFinish {
            std::thread::sleep(MAIN_GRACE);
        }
        std::process::exit(EXIT_INTERRUPTED.into());
    });
    if let Err(error) = installed {
        log::warn!("Ctrl-C will not cancel running tasks: {error}");
    }
}

/// Makes the handler cancel `runtime`'s tasks.
pub fn watch(runtime: Runtime, after: AfterCancel) {
    let _ = RUNTIME.set((runtime, after));
}

/// Whether a signal arrived.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}
