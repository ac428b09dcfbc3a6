//! The quickstart: a tour of the runtime that every `task` call runs through.
//!
//! Ten jobs share eight execution threads, one outlives its execution timeout, and one is
//! cancelled by the host while it runs; each caller blocks until its own answer is back and
//! is woken the moment it is. The observer prints every event as a
//! progress line.
//!
//! Run it with `cargo run --release --example quickstart`.

use std::time::{Duration, Instant};

use subtask::{Event, EventKind, RunOptions, Runtime};

fn main() -> Result<(), subtask::Error> {
    env_logger::init();
    println!(
        "subtask quickstart: the runtime alone (no LLM yet). Jobs here are Rust closures; \
         subagents will run through exactly this path."
    );
    let started = Instant::now();
    let runtime = Runtime::builder()
        .poll_interval(Duration::from_millis(500))
        .observer(move |event: &Event| {
            // Heartbeats are per waiting call; show them, they are the "still working" lines.
            let elapsed = started.elapsed().as_secs_f64();
            if !matches!(event.kind, EventKind::Queued) {
                println!("  [{elapsed:5.2} s] {event}");
            }
        })
        .build()?;
    let config = runtime.config();
    println!(
        "pools: {} scheduler threads, {} execution threads; poll interval {:?}\n",
        config.scheduler_threads(),
        config.execution_threads(),
        config.poll_interval()
    );

    println!("1. ten jobs at once on eight execution threads (each works 300 ms):");
    let handles = (0..10)
        .map(|n| {
            runtime.submit(
                move |job| {
                    job.token().sleep(Duration::from_millis(300))?;
                    Ok(n * n)
                },
                RunOptions::new().label(format!("square-{n}")),
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    let squares = handles
        .into_iter()
        .map(|handle| handle.wait())
        .collect::<Result<Vec<_>, _>>()?;
    println!("   answers: {squares:?}\n");

    println!("2. a job that needs 10 s, with an execution timeout of 1 s:");
    let slow = runtime.run(
        |job| {
            job.token().sleep(Duration::from_secs(10))?;
            Ok("done")
        },
        RunOptions::new()
            .label("slow")
            .execution_timeout(Duration::from_secs(1)),
    );
    println!("   caller got: {}\n", slow.unwrap_err());

    println!("3. a job cancelled by the host 700 ms after it starts:");
    let endless = runtime.submit(
        |job| {
            let _undo = job.token().on_cancel(|| {
                println!("   (cancel action: this is where a child process is killed)")
            });
            job.token().sleep(Duration::from_secs(3600))?;
            Ok(())
        },
        RunOptions::new().label("endless"),
    )?;
    let id = endless.id().clone();
    let canceller = runtime.clone();
    let cancel_thread = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(700));
        canceller.cancel(id.as_str())
    });
    println!("   caller got: {}", endless.wait().unwrap_err());
    let _ = cancel_thread.join();
    println!();

    // Shutdown waits for the last events to be delivered, so the summary comes last.
    runtime.shutdown(Duration::from_secs(1))?;
    let stats = runtime.stats();
    println!(
        "done in {:.1} s: {} completed, {} timed out, {} cancelled; {} task records left",
        started.elapsed().as_secs_f64(),
        stats.completed,
        stats.timed_out,
        stats.cancelled,
        stats.live
    );
    Ok(())
}
