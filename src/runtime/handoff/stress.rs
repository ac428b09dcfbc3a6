//! Adversarial stress tests for [`Handoff`]: a child module, so they can check and print
//! its private state. Each runs for `SUBTASK_STRESS_MS` (default 700 ms) with a random
//! seed, printed (`SUBTASK_STRESS_SEED` replays one); a lost wake-up shows as a 60 s
//! timeout naming the state, never as a hang.
use super::*;
use crossbeam_channel::{Sender, unbounded};
use std::hint::spin_loop;
use std::sync::atomic::AtomicU64;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// Generous bound on any single wait: a lost wake-up shows up as this timeout.
const HANG: Duration = Duration::from_secs(60);

fn budget() -> Duration {
    Duration::from_millis(
        std::env::var("SUBTASK_STRESS_MS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(700),
    )
}

fn seed() -> u64 {
    std::env::var("SUBTASK_STRESS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        })
}

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = mix(self.0);
        self.0 % n
    }
}

fn dump<T>(h: &Handoff<T>) -> String {
    let s = h.state.lock();
    format!(
        "queue={} idle={} consumers={} spinning={} queued={}",
        s.queue.len(),
        s.idle.len(),
        s.consumers,
        h.spinning.load(Ordering::Relaxed),
        h.queued.load(Ordering::Relaxed)
    )
}

/// Rounds separated by quiescence, so a stranded item is never rescued by later traffic:
/// each round sends k items from several senders and must get all k back within `HANG`.
/// Consumers, per item: go straight back to `recv` (polling), spin, yield, or block on a
/// gate that the main thread opens at a random point of the next round (a long pause
/// ending in the middle of other sends). Half the rounds start only once every
/// non-gated consumer has parked (sends must wake parked consumers).
#[test]
fn rounds_every_item_exactly_once_no_lost_wakeup() {
    const CONSUMERS: usize = 8;
    const SENDERS: usize = 3;
    let seed = seed();
    eprintln!("seed {seed}");
    let mut rng = Rng(seed);
    let handoff: Arc<Handoff<Option<u64>>> = Handoff::new();
    let (results_tx, results) = unbounded::<(usize, u64)>();
    let (gate_tx, gate_rx) = unbounded::<()>();
    let (exited_tx, exited) = unbounded::<usize>();
    let gated = Arc::new(AtomicUsize::new(0));
    let consumers: Vec<JoinHandle<()>> = (0..CONSUMERS)
        .map(|id| {
            let consumer = handoff.consumer();
            let results = results_tx.clone();
            let gate = gate_rx.clone();
            let gated = gated.clone();
            let exited = exited_tx.clone();
            thread::spawn(move || {
                while let Some(item) = consumer.recv() {
                    results.send((id, item)).unwrap();
                    match mix(item ^ ((id as u64) << 40)) % 8 {
                        3 => (0..mix(item) % 4000).for_each(|_| spin_loop()),
                        4 => (0..mix(item) % 4).for_each(|_| thread::yield_now()),
                        5 => {
                            gated.fetch_add(1, Ordering::SeqCst);
                            let _ = gate.recv(); // Err once the test drops the gate
                        }
                        _ => {} // straight back: polling when the next item comes
                    }
                }
                drop(consumer); // on its own thread, before announcing the exit
                exited.send(id).unwrap();
            })
        })
        .collect();
    drop((results_tx, gate_rx, exited_tx));
    let open_gates = |gate_tx: &Sender<()>| {
        for _ in 0..gated.swap(0, Ordering::SeqCst) {
            gate_tx.send(()).unwrap();
        }
    };
    let mut work_txs = Vec::new();
    let senders: Vec<JoinHandle<()>> = (0..SENDERS)
        .map(|s| {
            let (work_tx, work) = unbounded::<Vec<u64>>();
            work_txs.push(work_tx);
            let handoff = handoff.clone();
            let mut rng = Rng(seed ^ ((s as u64 + 1) * 0x1234_5678));
            thread::spawn(move || {
                for batch in work {
                    for item in batch {
                        if rng.below(4) == 0 {
                            thread::yield_now();
                        }
                        handoff.send(Some(item)).unwrap();
                    }
                }
            })
        })
        .collect();
    let mut seen: Vec<u8> = Vec::new();
    let mut next_id = 0u64;
    let mut rounds = 0u64;
    let mut waited_for_parking = 0u64;
    let end = Instant::now() + budget();
    while Instant::now() < end {
        rounds += 1;
        let k = 1 + rng.below(2 * CONSUMERS as u64);
        if rng.below(2) == 0 {
            waited_for_parking += 1;
            let start = Instant::now();
            while handoff.state.lock().idle.len() + gated.load(Ordering::SeqCst) < CONSUMERS {
                assert!(
                    start.elapsed() < HANG,
                    "consumers never parked: {}",
                    dump(&handoff)
                );
                thread::yield_now();
            }
        }
        let mut batches = vec![Vec::new(); SENDERS];
        for _ in 0..k {
            batches[rng.below(SENDERS as u64) as usize].push(next_id);
            next_id += 1;
            seen.push(0);
        }
        let open_at = rng.below(k + 1);
        for (tx, batch) in work_txs.iter().zip(batches) {
            tx.send(batch).unwrap();
        }
        for got in 0..k {
            if got == open_at {
                open_gates(&gate_tx);
            }
            match results.recv_timeout(HANG) {
                Ok((_, item)) => seen[item as usize] += 1,
                Err(e) => panic!(
                    "round {rounds}: {got}/{k} received, then {e:?}: {}",
                    dump(&handoff)
                ),
            }
        }
        open_gates(&gate_tx);
        // Every item of the round is back: nothing may be left queued.
        assert_eq!(handoff.state.lock().queue.len(), 0, "round {rounds}");
    }
    drop(work_txs);
    for s in senders {
        s.join().unwrap();
    }
    drop(gate_tx); // releases gated consumers for good
    for _ in 0..CONSUMERS {
        handoff.send(None).unwrap();
    }
    for _ in 0..CONSUMERS {
        exited.recv_timeout(HANG).unwrap_or_else(|e| {
            panic!("a consumer never got its None ({e:?}): {}", dump(&handoff))
        });
    }
    for c in consumers {
        c.join().unwrap();
    }
    assert!(results.try_recv().is_err(), "an extra item was received");
    let bad: Vec<_> = seen.iter().enumerate().filter(|(_, n)| **n != 1).collect();
    assert!(bad.is_empty(), "items not received exactly once: {bad:?}");
    {
        let s = handoff.state.lock();
        assert_eq!((s.queue.len(), s.idle.len(), s.consumers), (0, 0, 0));
    }
    assert_eq!(handoff.spinning.load(Ordering::Relaxed), 0);
    assert_eq!(handoff.send(Some(0)), Err(Some(0)));
    eprintln!(
        "rounds {rounds} ({waited_for_parking} after full parking), items {next_id}: all once"
    );
}

/// Continuous traffic while consumers leave one by one (each drops its `Consumer` on its
/// own thread after a random quota). Every item `send` accepted is received exactly once or
/// still queued (a channel would keep it in its buffer); none refused is ever received;
/// once the last consumer is gone every send is refused.
#[test]
fn consumers_leaving_under_traffic_lose_nothing() {
    const CONSUMERS: usize = 6;
    const SENDERS: usize = 3;
    let seed = seed();
    eprintln!("seed {seed}");
    let end = Instant::now() + budget();
    let mut iterations = 0;
    let mut total_ok = 0usize;
    let mut total_err = 0usize;
    let mut total_stranded = 0usize;
    while Instant::now() < end || iterations == 0 {
        iterations += 1;
        let seed = mix(seed ^ iterations);
        let handoff: Arc<Handoff<u64>> = Handoff::new();
        let (results_tx, results) = unbounded::<u64>();
        let consumers: Vec<JoinHandle<()>> = (0..CONSUMERS)
            .map(|id| {
                let consumer = handoff.consumer();
                let results = results_tx.clone();
                let quota = 50 + mix(seed ^ id as u64) % 1500;
                thread::spawn(move || {
                    for _ in 0..quota {
                        let item = consumer.recv();
                        results.send(item).unwrap();
                        if mix(item).is_multiple_of(16) {
                            thread::yield_now();
                        }
                    }
                })
            })
            .collect();
        drop(results_tx);
        let next = Arc::new(AtomicU64::new(0));
        let (done_tx, done) = unbounded::<(Vec<u64>, Vec<u64>)>();
        let mut senders = Vec::new();
        for s in 0..SENDERS {
            let handoff = handoff.clone();
            let next = next.clone();
            let done = done_tx.clone();
            let mut rng = Rng(seed ^ s as u64);
            senders.push(thread::spawn(move || {
                let (mut ok, mut err) = (Vec::new(), Vec::new());
                let mut refused_in_a_row = 0;
                while refused_in_a_row < 50 {
                    let id = next.fetch_add(1, Ordering::Relaxed);
                    match handoff.send(id) {
                        Ok(()) => {
                            assert_eq!(refused_in_a_row, 0, "accepted after a refusal");
                            ok.push(id)
                        }
                        Err(back) => {
                            assert_eq!(back, id);
                            err.push(id);
                            refused_in_a_row += 1;
                        }
                    }
                    if rng.below(8) == 0 {
                        thread::yield_now();
                    }
                }
                done.send((ok, err)).unwrap();
            }));
        }
        drop(done_tx);
        let (mut ok, mut err) = (Vec::new(), Vec::new());
        for _ in 0..SENDERS {
            let (o, e) = done
                .recv_timeout(HANG)
                .unwrap_or_else(|e| panic!("a sender hung ({e:?}): {}", dump(&handoff)));
            ok.extend(o);
            err.extend(e);
        }
        for thread in senders.into_iter().chain(consumers) {
            thread.join().unwrap();
        }
        let mut received: Vec<u64> = results.try_iter().collect();
        let stranded: Vec<u64> = handoff.state.lock().queue.iter().copied().collect();
        {
            let s = handoff.state.lock();
            assert_eq!((s.consumers, s.idle.len()), (0, 0));
        }
        assert_eq!(handoff.spinning.load(Ordering::Relaxed), 0);
        total_stranded += stranded.len();
        received.extend(&stranded);
        received.sort_unstable();
        ok.sort_unstable();
        assert_eq!(received, ok, "accepted items != received + still queued");
        total_ok += ok.len();
        total_err += err.len();
    }
    eprintln!(
        "iterations {iterations}: accepted {total_ok} (of which left queued {total_stranded}), \
         refused {total_err}: none lost or duplicated"
    );
}
