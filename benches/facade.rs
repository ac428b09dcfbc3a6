//! Latency and throughput of the runtime's facade (`Runtime::run` / `submit`), on the
//! default pools unless a metric says otherwise.
//!
//! `cargo bench --bench facade` prints a table with each figure next to its target, then the
//! same three measurements (wake latency, round trip, throughput) taken in the same run on
//! Python's `concurrent.futures.ThreadPoolExecutor` by `benches/python_peer.py`, side by side
//! with the ratios and their targets. The peer (`python_peer.py --serve`) runs beside the bench
//! and measures on request, so each of our throughput rounds is followed by one of Python's:
//! a pair sees the same spell of a noisy machine. `cargo bench --bench facade -- --json` prints one JSON
//! object on stdout and nothing else (progress goes to stderr); `--no-python` skips the peer.
//! Other arguments (cargo adds `--bench`) are ignored.

#[path = "common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Condvar, Mutex, mpsc};
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
/// Rounds of the throughput measurement, on both sides; the median round is reported (one
/// round on a 2-core virtual machine swings by ±30 % with the host's scheduling).
const THROUGHPUT_ROUNDS: usize = 5;
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
    let mut peer = with_python.then(|| PythonPeer::start(config.execution_threads()));
    progress("wake latency");
    let wake = Samples::new(wake_latency(&first));
    drop(first);
    let peer_wake = ask_peer(&mut peer, "wake");
    progress("round trip");
    let roundtrip = Samples::new(roundtrip(&runtime()));
    let peer_roundtrip = ask_peer(&mut peer, "roundtrip");
    progress("throughput");
    let (throughput, peer_throughput) = throughput(&runtime(), &mut peer);
    progress("cascade");
    let cascade = cascade(&runtime());
    progress("slot recovery");
    let recovery = Samples::new(slot_recovery(&runtime()));
    let python = peer.map(|peer| {
        let peer = peer?;
        let latency = |answer: &Result<serde_json::Value, String>| -> Result<(f64, f64), String> {
            let answer = answer.as_ref().map_err(Clone::clone)?;
            Ok((number(answer, "p50_us")?, number(answer, "p99_us")?))
        };
        let (wake_p50_us, wake_p99_us) = latency(&peer_wake)?;
        let (roundtrip_p50_us, roundtrip_p99_us) = latency(&peer_roundtrip)?;
        Ok(PythonFigures {
            version: peer.version.clone(),
            wake_p50_us,
            wake_p99_us,
            roundtrip_p50_us,
            roundtrip_p99_us,
            throughput: peer_throughput?,
        })
    });

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
    /// Jobs per round.
    jobs: usize,
    /// Jobs per second, one figure per round, sorted.
    rounds: Vec<f64>,
}

impl Throughput {
    fn new(jobs: usize, mut rounds: Vec<f64>) -> Throughput {
        rounds.sort_by(f64::total_cmp);
        Throughput { jobs, rounds }
    }

    /// The median round.
    fn per_second(&self) -> f64 {
        median(&self.rounds)
    }
}

/// Python's throughput rounds, each run right after one of ours.
struct PeerThroughput {
    per_second: f64,
    /// Our round's rate over Python's, per pair, sorted.
    ratios: Vec<f64>,
}

fn median(sorted: &[f64]) -> f64 {
    sorted[sorted.len() / 2]
}

/// `THROUGHPUT_ROUNDS` rounds of trivial jobs through `run` from many callers at once, each
/// timed from a barrier to the last join; with the peer, each round of ours is followed by
/// one of Python's, so a pair sees the same spell of the machine.
fn throughput(
    runtime: &Runtime,
    peer: &mut Option<Result<PythonPeer, String>>,
) -> (Throughput, Result<PeerThroughput, String>) {
    let jobs = THROUGHPUT_CALLERS * THROUGHPUT_JOBS_PER_CALLER;
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    let mut ratios = Vec::new();
    let mut peer_error = None;
    for _ in 0..THROUGHPUT_ROUNDS {
        let rate = jobs as f64 / throughput_round(runtime).as_secs_f64();
        ours.push(rate);
        if peer.is_none() || peer_error.is_some() {
            continue;
        }
        match ask_peer(peer, "throughput").and_then(|answer| number(&answer, "per_s")) {
            Ok(python) => {
                theirs.push(python);
                ratios.push(rate / python);
            }
            Err(error) => peer_error = Some(error),
        }
    }
    theirs.sort_by(f64::total_cmp);
    ratios.sort_by(f64::total_cmp);
    let peer_throughput = match peer_error {
        Some(error) => Err(error),
        None if theirs.is_empty() => Err("not run".to_string()),
        None => Ok(PeerThroughput {
            per_second: median(&theirs),
            ratios,
        }),
    };
    (Throughput::new(jobs, ours), peer_throughput)
}

fn throughput_round(runtime: &Runtime) -> Duration {
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
    started.elapsed()
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
    throughput: PeerThroughput,
}

/// `benches/python_peer.py --serve`, with the same sample counts and as many workers as the
/// runtime has execution threads, answering one measurement per request. A missing or
/// failing `python3` is reported in the table, not fatal.
struct PythonPeer {
    child: std::process::Child,
    /// Closed on drop, which ends the peer's serve loop.
    requests: Option<std::process::ChildStdin>,
    /// The peer's stdout, a line at a time, read by a thread of its own so that every wait
    /// for an answer has a limit (a hung peer is killed, never waited for forever). The
    /// thread ends when the peer's stdout closes.
    answers: mpsc::Receiver<std::io::Result<String>>,
    version: String,
}

/// How long one Python measurement may take (the slowest, throughput, takes a few seconds).
const PEER_ANSWER_LIMIT: Duration = Duration::from_secs(120);

const PEER_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/python_peer.py");

impl PythonPeer {
    fn start(workers: usize) -> Result<PythonPeer, String> {
        use std::process::{Command, Stdio};
        let mut child = Command::new("python3")
            .arg(PEER_SCRIPT)
            .arg("--serve")
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
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|error| format!("could not run python3 {PEER_SCRIPT}: {error}"))?;
        let requests = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout is piped");
        let (sender, answers) = mpsc::channel();
        thread::spawn(move || {
            for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
                if sender.send(line).is_err() {
                    return;
                }
            }
        });
        let mut peer = PythonPeer {
            child,
            requests,
            answers,
            version: "?".to_string(),
        };
        // Started and answering before any measurement of ours, so its start-up does not
        // overlap them.
        peer.ask("ping")?;
        Ok(peer)
    }

    fn ask(&mut self, measurement: &str) -> Result<serde_json::Value, String> {
        use std::io::Write;
        let requests = self.requests.as_mut().expect("open until drop");
        writeln!(requests, "{measurement}")
            .and_then(|()| requests.flush())
            .map_err(|error| format!("python3 {PEER_SCRIPT} stopped reading: {error}"))?;
        let line = match self.answers.recv_timeout(PEER_ANSWER_LIMIT) {
            Ok(Ok(line)) => line,
            Ok(Err(error)) => return Err(format!("reading python3 {PEER_SCRIPT}: {error}")),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = self.child.kill();
                return Err(format!(
                    "python3 {PEER_SCRIPT} gave no {measurement} figures within \
                     {PEER_ANSWER_LIMIT:?}; stopped it"
                ));
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = self.child.wait().map_or("?".to_string(), |s| s.to_string());
                return Err(format!(
                    "python3 {PEER_SCRIPT} exited ({status}) before measuring {measurement} \
                     (its error is on stderr above)"
                ));
            }
        };
        let answer: serde_json::Value = serde_json::from_str(&line)
            .map_err(|error| format!("python3 {PEER_SCRIPT} printed no JSON: {error}"))?;
        if let Some(error) = answer["error"].as_str() {
            return Err(format!("python3 {PEER_SCRIPT}: {error}"));
        }
        if let Some(version) = answer["python"].as_str() {
            self.version = version.to_string();
        }
        Ok(answer)
    }
}

impl Drop for PythonPeer {
    /// Closing its stdin ends the serve loop, and its exit closes its stdout (the reader
    /// thread then hangs up); a peer still busy a few seconds later (a measurement that
    /// hung) is killed. Reaped either way.
    fn drop(&mut self) {
        drop(self.requests.take());
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.answers.recv_timeout(left) {
                Ok(_) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let _ = self.child.kill();
                    break;
                }
            }
        }
        let _ = self.child.wait();
    }
}

/// One measurement from the peer, if it runs.
fn ask_peer(
    peer: &mut Option<Result<PythonPeer, String>>,
    measurement: &str,
) -> Result<serde_json::Value, String> {
    match peer {
        None => Err("not run (--no-python)".to_string()),
        Some(Err(error)) => Err(error.clone()),
        Some(Ok(peer)) => peer.ask(measurement),
    }
}

fn number(answer: &serde_json::Value, key: &str) -> Result<f64, String> {
    answer[key]
        .as_f64()
        .ok_or_else(|| format!("python3 {PEER_SCRIPT} answered without {key}: {answer}"))
}

/// Ours, theirs and ours over theirs.
fn ratio(ours: f64, theirs: f64) -> (f64, f64, f64) {
    (ours, theirs, ours / theirs)
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
                    "\"roundtrip_us_p99\":{:.1},\"throughput_per_s\":{:.0},",
                    "\"throughput_ratio_median\":{:.2}}}"
                ),
                peer.version,
                peer.wake_p50_us,
                peer.wake_p99_us,
                peer.roundtrip_p50_us,
                peer.roundtrip_p99_us,
                peer.throughput.per_second,
                median(&peer.throughput.ratios),
            ),
            Some(Err(why)) => format!(
                ",\"python_error\":{}",
                serde_json::Value::from(why.as_str())
            ),
            None => String::new(),
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
             benches/python_peer.py\n(throughput: {THROUGHPUT_ROUNDS} rounds, each of ours \
             followed by one of Python's; medians, and the median of the pairs' ratios):\n\
             {:<20} {:>14} {:>14} {:>8}   {:<8} {}\n",
            peer.version,
            self.pools_workers(),
            "metric",
            "subtask",
            "python",
            "ratio",
            "target",
            "ok"
        );
        let mut row = |metric: &str,
                       (ours, theirs, ratio): (f64, f64, f64),
                       unit: &str,
                       target: Option<(f64, bool)>| {
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
            ratio(self.roundtrip.micros(50), peer.roundtrip_p50_us),
            "µs",
            Some((ROUNDTRIP_P50_RATIO_TARGET, true)),
        );
        row(
            "round trip p99",
            ratio(self.roundtrip.micros(99), peer.roundtrip_p99_us),
            "µs",
            None,
        );
        row(
            "wake latency p50",
            ratio(self.wake.micros(50), peer.wake_p50_us),
            "µs",
            Some((WAKE_P50_RATIO_TARGET, true)),
        );
        row(
            "wake latency p99",
            ratio(self.wake.micros(99), peer.wake_p99_us),
            "µs",
            None,
        );
        row(
            "throughput",
            (
                self.throughput.per_second(),
                peer.throughput.per_second,
                // The median of the paired rounds' ratios: each pair ran in the same spell.
                median(&peer.throughput.ratios),
            ),
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
                "median of {THROUGHPUT_ROUNDS} rounds ({:.0}–{:.0} /s) of {} jobs, \
                 {THROUGHPUT_CALLERS} callers",
                self.throughput.rounds[0],
                self.throughput.rounds[self.throughput.rounds.len() - 1],
                self.throughput.jobs,
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
