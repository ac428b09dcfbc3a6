//! What the benchmarks share: sorted samples and their percentiles.

#![allow(dead_code)] // each benchmark uses its own subset

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
