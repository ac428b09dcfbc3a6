//! Latency and throughput of the runtime's facade (`Runtime::run` / `submit`), on the
//! default pools unless a metric says otherwise.
//!
//! `cargo bench --bench facade` prints a table with each figure next to its target, then the
//! same three measurements (wake latency, round trip, throughput) taken in the same run on
//! Python's `concurrent.futures.ThreadPoolExecutor` by `benches/python_peer.py`, side by side
//! with the ratios and their targets. `cargo bench --bench facade -- --json` prints one JSON
//! object on stdout and nothing else (progress goes to stderr); `--no-python` skips the peer.
//! Other arguments (cargo adds `--bench`) are ignored.

#[path = "common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Condvar, Mutex};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use common::{Samples, Table};

use subtask::{ErrorKind, RunOptions, Runtime};

const WAKE_SAMPLES: usize = 100;
const WAKE_JOB_RUN: Duration = Duration::from_millis(50);
const ROUNDTRIP_WARMUP: usize = 1_000;
const ROUNDTRIP_SAMPLES: usize = 20_000;
const THROUGHPUT_CALLERS: usize = 16;
const THROUGHPUT_JOBS_PER_CALLER: usize = 2_000;
const THROUGHPUT_WARMUP_PER_CALLER: usize = 100;
const CASCADE_JOBS: usize = 12;
const CASCADE_JOB_RUN: Duration = Duration::from_secs(3);
const CASCADE_TIMEOUT: Duration = Duration::from_millis(500);
const RECOVERY_ROUNDS: usize = 25;
const RECOVERY_TIMEOUT: Duration = Duration::from_millis(20);
const RECOVERY_SLEEP: Duration = Duration::from_secs(60);
/// How long a latch waits before the bench gives up on a round.
const LATCH_LIMIT: Duration = Duration::from_secs(10);

fn main() {
    let json = std::env::args().skip(1).any(|arg| arg == "--json");
    let with_python = !std::env::args().skip(1).any(|arg| arg == "--no-python");
    let runtime = || {
        Runtime::builder()
            .build()
            .expect("a default runtime starts")
    };

    let first = runtime();
    let config = first.config().clone();
    progress("wake latency");
    let wake = Samples::new(wake_latency(&first));
    drop(first);
    progress("round trip");
    let roundtrip = Samples::new(roundtrip(&runtime()));
    progress("throughput");
    let throughput = throughput(&runtime());
    progress("cascade");
    let cascade = cascade(&runtime());
    progress("slot recovery");
    let recovery = Samples::new(slot_recovery(&runtime()));
    let python = if with_python {
        progress("the same on Python's ThreadPoolExecutor (benches/python_peer.py)");
        Some(python_peer(config.execution_threads()))
    } else {
        None
    };

    let report = Report {
        pools: format!(
            "{} scheduler + {} execution threads, poll interval {:?}",
            config.scheduler_threads(),
            config.execution_threads(),
            config.poll_interval()
        ),
        workers: config.execution_threads().to_string(),
        cores: thread::available_parallelism().map_or(0, |n| n.get()),
        wake,
        roundtrip,
        throughput,
        cascade,
        recovery,
        python,
    };
    if json {
        println!("{}", report.json());
    } else {
        print!("{}", report.table());
    }
}

fn progress(section: &str) {
    eprintln!("facade bench: measuring {section}…");
}

/// From the instant a 50 ms job returns its value to the instant its caller holds it.
fn wake_latency(runtime: &Runtime) -> Vec<Duration> {
    let sleepy_job = |_: &subtask::JobContext<'_>| {
        thread::sleep(WAKE_JOB_RUN);
        Ok(Instant::now())
    };
    // One short call first so thread start-up and first allocations are not sampled.
    runtime
        .run(|_| Ok(()), RunOptions::new())
        .expect("warm-up call");
    (0..WAKE_SAMPLES)
        .map(|_| {
            let returned_at = runtime
                .run(sleepy_job, RunOptions::new())
                .expect("a 50 ms job completes");
            Instant::now().saturating_duration_since(returned_at)
        })
        .collect()
}

/// The duration of one `run` of a job that returns at once, one caller.
fn roundtrip(runtime: &Runtime) -> Vec<Duration> {
    let call = || {
        runtime
            .run(|_| Ok(()), RunOptions::new())
            .expect("a trivial job completes");
    };
    for _ in 0..ROUNDTRIP_WARMUP {
        call();
    }
    (0..ROUNDTRIP_SAMPLES)
        .map(|_| {
            let started = Instant::now();
            call();
            started.elapsed()
        })
        .collect()
}

struct Throughput {
    jobs: usize,
    elapsed: Duration,
}

impl Throughput {
    fn per_second(&self) -> f64 {
        self.jobs as f64 / self.elapsed.as_secs_f64()
    }
}

/// Trivial jobs through `run` from many callers at once, from a barrier to the last join.
fn throughput(runtime: &Runtime) -> Throughput {
    let barrier = Arc::new(Barrier::new(THROUGHPUT_CALLERS + 1));
    let callers: Vec<_> = (0..THROUGHPUT_CALLERS)
        .map(|_| {
            let runtime = runtime.clone();
            let barrier = barrier.clone();
            thread::spawn(move || {
                let call = || {
                    runtime
                        .run(|_| Ok(()), RunOptions::new())
                        .expect("a trivial job completes");
                };
                for _ in 0..THROUGHPUT_WARMUP_PER_CALLER {
                    call();
                }
                barrier.wait();
                for _ in 0..THROUGHPUT_JOBS_PER_CALLER {
                    call();
                }
            })
        })
        .collect();
    barrier.wait();
    let started = Instant::now();
    for caller in callers {
        caller.join().expect("a caller thread finishes");
    }
    Throughput {
        jobs: THROUGHPUT_CALLERS * THROUGHPUT_JOBS_PER_CALLER,
        elapsed: started.elapsed(),
    }
}

struct Cascade {
    never_started: usize,
    timeouts: usize,
    elapsed: Duration,
}

/// More cooperative jobs than slots, each outliving its execution timeout: every one must
/// run (its execution clock starts when it starts) and time out.
fn cascade(runtime: &Runtime) -> Cascade {
    let started = Arc::new(AtomicUsize::new(0));
    let began = Instant::now();
    let handles: Vec<_> = (0..CASCADE_JOBS)
        .map(|_| {
            let started = started.clone();
            runtime
                .submit(
                    move |job| {
                        started.fetch_add(1, Ordering::SeqCst);
                        job.token().sleep(CASCADE_JOB_RUN)
                    },
                    RunOptions::new().execution_timeout(CASCADE_TIMEOUT),
                )
                .expect("the queue has room for the cascade")
        })
        .collect();
    let timeouts = handles
        .into_iter()
        .map(|handle| handle.wait())
        .filter(|outcome| matches!(outcome, Err(error) if error.kind() == ErrorKind::Timeout))
        .count();
    Cascade {
        never_started: CASCADE_JOBS - started.load(Ordering::SeqCst),
        timeouts,
        elapsed: began.elapsed(),
    }
}

/// From a cooperative job's timeout (its token's deadline) to its execution thread
/// starting the next queued job. Each round fills every slot with a sleeper, queues as many
/// quick followers behind them, and waits for all of them.
fn slot_recovery(runtime: &Runtime) -> Vec<Duration> {
    let slots = runtime.config().execution_threads();
    let mut samples = Vec::with_capacity(RECOVERY_ROUNDS * slots);
    for _ in 0..RECOVERY_ROUNDS {
        let deadlines = Arc::new(Mutex::new(Vec::<(ThreadId, Instant)>::new()));
        let starts = Arc::new(Mutex::new(Vec::<(ThreadId, Instant)>::new()));
        let running = Arc::new(Latch::new(slots));
        let sleepers: Vec<_> = (0..slots)
            .map(|_| {
                let deadlines = deadlines.clone();
                let running = running.clone();
                runtime
                    .submit(
                        move |job| {
                            let deadline = job.token().deadline().expect("a running job's token");
                            deadlines
                                .lock()
                                .unwrap()
                                .push((thread::current().id(), deadline));
                            running.count_down();
                            job.token().sleep(RECOVERY_SLEEP)
                        },
                        RunOptions::new().execution_timeout(RECOVERY_TIMEOUT),
                    )
                    .expect("the queue has room for the sleepers")
            })
            .collect();
        // Followers are queued only once every slot holds a sleeper, so none of them can
        // overtake a sleeper through the scheduler pool.
        running.wait();
        // A follower holds its thread until every follower has started, so each freed
        // thread runs exactly one and every sleeper gives a sample.
        let followed = Arc::new(Latch::new(slots));
        let followers: Vec<_> = (0..slots)
            .map(|_| {
                let starts = starts.clone();
                let followed = followed.clone();
                runtime
                    .submit(
                        move |_| {
                            let started_at = Instant::now();
                            starts
                                .lock()
                                .unwrap()
                                .push((thread::current().id(), started_at));
                            followed.count_down();
                            followed.wait();
                            Ok(())
                        },
                        RunOptions::new(),
                    )
                    .expect("the queue has room for the followers")
            })
            .collect();
        for sleeper in sleepers {
            let error = sleeper.wait().expect_err("a sleeper outlives its timeout");
            assert_eq!(error.kind(), ErrorKind::Timeout, "{error}");
        }
        for follower in followers {
            follower.wait().expect("a follower completes");
        }
        let starts: HashMap<ThreadId, Instant> = starts.lock().unwrap().iter().copied().collect();
        for &(thread, deadline) in deadlines.lock().unwrap().iter() {
            let started_at = starts[&thread];
            samples.push(started_at.saturating_duration_since(deadline));
        }
    }
    samples
}

/// Opens once `count_down` has been called `count` times.
struct Latch {
    remaining: Mutex<usize>,
    opened: Condvar,
}

impl Latch {
    fn new(count: usize) -> Latch {
        Latch {
            remaining: Mutex::new(count),
            opened: Condvar::new(),
        }
    }

    fn count_down(&self) {
        let mut remaining = self.remaining.lock().unwrap();
        *remaining = remaining.saturating_sub(1);
        if *remaining == 0 {
            self.opened.notify_all();
        }
    }

    /// Blocks until the latch opens; panics after `LATCH_LIMIT` rather than hang the bench.
    fn wait(&self) {
        let (remaining, wait) = self
            .opened
            .wait_timeout_while(self.remaining.lock().unwrap(), LATCH_LIMIT, |remaining| {
                *remaining > 0
            })
            .unwrap();
        assert!(
            !wait.timed_out(),
            "{} of the expected jobs never started",
            *remaining
        );
    }
}

/// The peer's figures, or why there are none.
type Peer = Result<PythonFigures, String>;

struct PythonFigures {
    version: String,
    wake_p50_us: f64,
    wake_p99_us: f64,
    roundtrip_p50_us: f64,
    roundtrip_p99_us: f64,
    throughput_per_s: f64,
}

/// Runs `benches/python_peer.py` with the same sample counts and as many workers as the
/// runtime has execution threads. A missing or failing `python3` is reported, not fatal.
fn python_peer(workers: usize) -> Peer {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/python_peer.py");
    let output = std::process::Command::new("python3")
        .arg(script)
        .args(["--workers", &workers.to_string()])
        .args(["--wake", &WAKE_SAMPLES.to_string()])
        .args(["--roundtrip", &ROUNDTRIP_SAMPLES.to_string()])
        .args(["--roundtrip-warmup", &ROUNDTRIP_WARMUP.to_string()])
        .args(["--callers", &THROUGHPUT_CALLERS.to_string()])
        .args(["--jobs-per-caller", &THROUGHPUT_JOBS_PER_CALLER.to_string()])
        .args([
            "--throughput-warmup",
            &THROUGHPUT_WARMUP_PER_CALLER.to_string(),
        ])
        .output()
        .map_err(|error| format!("could not run python3 {script}: {error}"))?;
    if !output.status.success() {
        return Err(format!(
            "python3 {script} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    let value: serde_json::Value = serde_json::from_slice(&output.stdout)
        .map_err(|error| format!("python3 {script} printed no JSON: {error}"))?;
    let number = |key: &str| {
        value[key]
            .as_f64()
            .ok_or_else(|| format!("python3 {script} printed no {key}"))
    };
    Ok(PythonFigures {
        version: value["python"].as_str().unwrap_or("?").to_string(),
        wake_p50_us: number("wake_latency_us_p50")?,
        wake_p99_us: number("wake_latency_us_p99")?,
        roundtrip_p50_us: number("roundtrip_us_p50")?,
        roundtrip_p99_us: number("roundtrip_us_p99")?,
        throughput_per_s: number("throughput_per_s")?,
    })
}

/// Targets as ratios to Python's figures in the same run (issue 11).
const ROUNDTRIP_P50_RATIO_TARGET: f64 = 0.6;
const WAKE_P50_RATIO_TARGET: f64 = 0.3;
const THROUGHPUT_RATIO_TARGET: f64 = 5.0;

struct Report {
    python: Option<Peer>,
    /// The pools every metric ran on.
    pools: String,
    /// Python's worker count (the runtime's execution threads).
    workers: String,
    cores: usize,
    wake: Samples,
    roundtrip: Samples,
    throughput: Throughput,
    cascade: Cascade,
    recovery: Samples,
}

const WAKE_P50_TARGET_US: f64 = 50.0;
const WAKE_P99_TARGET_US: f64 = 250.0;
const ROUNDTRIP_P50_TARGET_US: f64 = 25.0;
const THROUGHPUT_TARGET_PER_S: f64 = 40_000.0;
const RECOVERY_P99_TARGET_MS: f64 = 5.0;

impl Report {
    fn json(&self) -> String {
        let python = match &self.python {
            Some(Ok(peer)) => format!(
                concat!(
                    ",\"python\":{{\"version\":\"{}\",\"wake_latency_us_p50\":{:.1},",
                    "\"wake_latency_us_p99\":{:.1},\"roundtrip_us_p50\":{:.1},",
                    "\"roundtrip_us_p99\":{:.1},\"throughput_per_s\":{:.0}}}"
                ),
                peer.version,
                peer.wake_p50_us,
                peer.wake_p99_us,
                peer.roundtrip_p50_us,
                peer.roundtrip_p99_us,
                peer.throughput_per_s,
            ),
            _ => String::new(),
        };
        let rust = format!(
            concat!(
                "{{\"wake_latency_us_p50\":{:.1},\"wake_latency_us_p99\":{:.1},",
                "\"roundtrip_us_p50\":{:.1},\"roundtrip_us_p99\":{:.1},",
                "\"throughput_per_s\":{:.0},\"cascade_never_started\":{},",
                "\"slot_recovery_ms_p50\":{:.3},\"slot_recovery_ms_p99\":{:.3},",
                "\"cores\":{}"
            ),
            self.wake.micros(50),
            self.wake.micros(99),
            self.roundtrip.micros(50),
            self.roundtrip.micros(99),
            self.throughput.per_second(),
            self.cascade.never_started,
            self.recovery.millis(50),
            self.recovery.millis(99),
            self.cores,
        );
        format!("{rust}{python}}}")
    }

    /// subtask beside Python's ThreadPoolExecutor, with the ratios and their targets.
    fn comparison(&self) -> String {
        let peer = match &self.python {
            None => return String::new(),
            Some(Err(why)) => return format!("\nPython peer: not measured: {why}\n"),
            Some(Ok(peer)) => peer,
        };
        let mut out = format!(
            "\nsame run, Python {} concurrent.futures.ThreadPoolExecutor({} workers), \
             benches/python_peer.py:\n{:<20} {:>14} {:>14} {:>8}   {:<8} {}\n",
            peer.version,
            self.pools_workers(),
            "metric",
            "subtask",
            "python",
            "ratio",
            "target",
            "ok"
        );
        let mut row =
            |metric: &str, ours: f64, theirs: f64, unit: &str, target: Option<(f64, bool)>| {
                let ratio = ours / theirs;
                let (target, ok) = match target {
                    Some((limit, at_most)) => {
                        let met = if at_most {
                            ratio <= limit
                        } else {
                            ratio >= limit
                        };
                        (
                            format!("{} {limit}×", if at_most { "≤" } else { "≥" }),
                            if met { "✓" } else { "✗" },
                        )
                    }
                    None => (String::new(), ""),
                };
                out.push_str(&format!(
                    "{metric:<20} {:>14} {:>14} {:>7.2}×   {target:<8} {ok}\n",
                    format!("{ours:.1} {unit}"),
                    format!("{theirs:.1} {unit}"),
                    ratio
                ));
            };
        row(
            "round trip p50",
            self.roundtrip.micros(50),
            peer.roundtrip_p50_us,
            "µs",
            Some((ROUNDTRIP_P50_RATIO_TARGET, true)),
        );
        row(
            "round trip p99",
            self.roundtrip.micros(99),
            peer.roundtrip_p99_us,
            "µs",
            None,
        );
        row(
            "wake latency p50",
            self.wake.micros(50),
            peer.wake_p50_us,
            "µs",
            Some((WAKE_P50_RATIO_TARGET, true)),
        );
        row(
            "wake latency p99",
            self.wake.micros(99),
            peer.wake_p99_us,
            "µs",
            None,
        );
        row(
            "throughput",
            self.throughput.per_second(),
            peer.throughput_per_s,
            "/s",
            Some((THROUGHPUT_RATIO_TARGET, false)),
        );
        out
    }

    fn pools_workers(&self) -> &str {
        &self.workers
    }

    fn table(&self) -> String {
        let mut table = Table::new(26, 14, 14);
        let at_most = |value: f64, target: f64, unit: &str| {
            Some((format!("≤ {target} {unit}"), value <= target))
        };
        let (wake50, wake99) = (self.wake.micros(50), self.wake.micros(99));
        let wake_n = format!("{}", self.wake.len());
        table.row(
            "wake latency p50",
            format!("{wake50:.1} µs"),
            at_most(wake50, WAKE_P50_TARGET_US, "µs"),
            &wake_n,
        );
        table.row(
            "wake latency p99",
            format!("{wake99:.1} µs"),
            at_most(wake99, WAKE_P99_TARGET_US, "µs"),
            &wake_n,
        );
        let (rt50, rt99) = (self.roundtrip.micros(50), self.roundtrip.micros(99));
        let rt_n = format!("{} (+{ROUNDTRIP_WARMUP} warm-up)", self.roundtrip.len());
        table.row(
            "round trip p50",
            format!("{rt50:.1} µs"),
            at_most(rt50, ROUNDTRIP_P50_TARGET_US, "µs"),
            &rt_n,
        );
        table.row("round trip p99", format!("{rt99:.1} µs"), None, &rt_n);
        let per_s = self.throughput.per_second();
        table.row(
            "throughput",
            format!("{per_s:.0} jobs/s"),
            Some((
                format!("≥ {THROUGHPUT_TARGET_PER_S:.0} /s"),
                per_s >= THROUGHPUT_TARGET_PER_S,
            )),
            &format!(
                "{} jobs, {THROUGHPUT_CALLERS} callers, {:.0} ms",
                self.throughput.jobs,
                self.throughput.elapsed.as_secs_f64() * 1e3
            ),
        );
        table.row(
            "cascade never started",
            format!("{}", self.cascade.never_started),
            Some((
                "= 0".into(),
                self.cascade.never_started == 0 && self.cascade.timeouts == CASCADE_JOBS,
            )),
            &format!(
                "{CASCADE_JOBS} jobs, {} timed out, {:.0} ms",
                self.cascade.timeouts,
                self.cascade.elapsed.as_secs_f64() * 1e3
            ),
        );
        let (rec50, rec99) = (self.recovery.millis(50), self.recovery.millis(99));
        let rec_n = format!("{} ({RECOVERY_ROUNDS} rounds)", self.recovery.len());
        table.row("slot recovery p50", format!("{rec50:.3} ms"), None, &rec_n);
        table.row(
            "slot recovery p99",
            format!("{rec99:.3} ms"),
            at_most(rec99, RECOVERY_P99_TARGET_MS, "ms"),
            &rec_n,
        );
        let out = table.finish();
        format!(
            "subtask facade benchmark\n\
             reproduce: cargo bench --bench facade   (JSON: cargo bench --bench facade -- --json)\n\
             cores: {} (available_parallelism); default pools: {}\n\n{out}{}",
            self.cores,
            self.pools,
            self.comparison()
        )
    }
}
