//! Live progress on stderr: one line per task start, tool call, heartbeat and finish.

use std::io::Write as _;
use std::time::Instant;

use subtask::{Event, EventKind, Observer, Progress};

/// Writes a line for each event worth a person's attention, stamped with the time since
/// the command started: `[  1.2s] explore-k3m9x2ab  grep 'TODO' in src/`.
#[derive(Debug)]
pub struct ProgressLines {
    started: Instant,
}

impl ProgressLines {
    /// Times lines from now.
    pub fn new() -> ProgressLines {
        ProgressLines {
            started: Instant::now(),
        }
    }
}

impl Observer for ProgressLines {
    fn on_event(&self, event: &Event) {
        let Some(line) = line(event) else {
            return;
        };
        let at = event
            .at
            .saturating_duration_since(self.started)
            .as_secs_f64();
        // One write per line, so lines of parallel tasks never mix; a closed stderr is
        // nobody's problem.
        let _ = writeln!(
            std::io::stderr().lock(),
            "[{at:6.1}s] {} {line}",
            event.task
        );
    }
}

/// The text after the task id, or `None` for events not shown (queued, turns, deltas,
/// tool calls that went well).
fn line(event: &Event) -> Option<String> {
    Some(match &event.kind {
        EventKind::Started { .. } => "started".to_string(),
        EventKind::Progress(_) => match event.kind.progress::<Progress>() {
            Some(Progress::ToolStarted { tool, summary }) => format!(" {tool} {summary}"),
            Some(Progress::ToolFinished {
                tool,
                summary,
                duration,
                is_error: true,
            }) => format!(
                " {tool} {summary}: failed after {:.1}s",
                duration.as_secs_f64()
            ),
            _ => return None,
        },
        EventKind::Heartbeat { status, elapsed } => {
            format!("{status} for {:.0}s", elapsed.as_secs_f64())
        }
        EventKind::Finished {
            status,
            ran_for,
            error,
            ..
        } => {
            let mut text = format!("finished: {status}");
            if let Some(ran_for) = ran_for {
                text.push_str(&format!(" in {:.1}s", ran_for.as_secs_f64()));
            }
            if let Some(error) = error {
                text.push_str(&format!(": {error}"));
            }
            text
        }
        _ => return None,
    })
}
