//! What the benchmarks share: sorted samples and their percentiles.

#![allow(dead_code)] // each benchmark uses its own subset

use std::fmt::Write as _;
use std::time::Duration;

/// Sorted durations.
pub struct Samples(Vec<Duration>);

impl Samples {
    pub fn new(mut samples: Vec<Duration>) -> Samples {
        assert!(!samples.is_empty(), "a metric needs at least one sample");
        samples.sort_unstable();
        Samples(samples)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn percentile(&self, percent: usize) -> Duration {
        let index = (self.0.len() * percent / 100).min(self.0.len() - 1);
        self.0[index]
    }

    pub fn micros(&self, percent: usize) -> f64 {
        self.percentile(percent).as_secs_f64() * 1e6
    }

    pub fn millis(&self, percent: usize) -> f64 {
        self.percentile(percent).as_secs_f64() * 1e3
    }
}

/// A table of figures: metric, value, target and whether it is met, samples.
pub struct Table {
    metric: usize,
    value: usize,
    target: usize,
    out: String,
}

impl Table {
    /// A table with these column widths, header written.
    pub fn new(metric: usize, value: usize, target: usize) -> Table {
        let mut table = Table {
            metric,
            value,
            target,
            out: String::new(),
        };
        table.line("metric", "value", "target", "ok", "samples");
        table
    }

    /// One row; `target` is the target's text and whether it is met.
    pub fn row(
        &mut self,
        metric: &str,
        value: String,
        target: Option<(String, bool)>,
        samples: &str,
    ) {
        let (target, mark) = match target {
            Some((target, met)) => (target, if met { "✓" } else { "✗" }),
            None => (String::new(), ""),
        };
        self.line(metric, &value, &target, mark, samples);
    }

    fn line(&mut self, metric: &str, value: &str, target: &str, mark: &str, samples: &str) {
        let (m, v, t) = (self.metric, self.value, self.target);
        let _ = writeln!(
            self.out,
            "{metric:<m$} {value:>v$}   {target:<t$} {mark:<2} {samples}"
        );
    }

    /// The text.
    pub fn finish(self) -> String {
        self.out
    }
}
