//! Many tasks: ids stay unique and finished tasks leave nothing behind. A binary of its own,
//! so its load does not slow the timing-sensitive tests that run in parallel elsewhere.

mod support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use subtask::{RunOptions, Runtime};
use support::watchdog_for;

#[test]
fn a_hundred_thousand_jobs_leave_no_records_behind() {
    watchdog_for(Duration::from_secs(120), || {
        let runtime = Runtime::new().unwrap();
        let callers = 8;
        let per_caller = 12_500;
        let started = Instant::now();
        std::thread::scope(|scope| {
            for _ in 0..callers {
                scope.spawn(|| {
                    for i in 0..per_caller {
                        assert_eq!(runtime.run(move |_| Ok(i), RunOptions::new()).unwrap(), i);
                    }
                });
            }
        });
        eprintln!(
            "{} jobs through run() from {callers} threads took {:?}",
            callers * per_caller,
            started.elapsed()
        );
        let stats = runtime.stats();
        assert_eq!(stats.completed, 100_000);
        assert_eq!(stats.submitted, 100_000);
        assert_eq!((stats.live, stats.queued, stats.running), (0, 0, 0));
        assert!(runtime.tasks().is_empty());
    });
}

#[test]
fn task_ids_are_unique_across_ten_thousand_submissions() {
    watchdog_for(Duration::from_secs(60), || {
        let runtime = Runtime::builder().max_queued(10_000).build().unwrap();
        let handles: Vec<_> = (0..10_000)
            .map(|_| {
                runtime
                    .submit(|job| Ok(job.id().clone()), RunOptions::new())
                    .unwrap()
            })
            .collect();
        let mut ids = HashSet::new();
        for handle in handles {
            let id = handle.id().clone();
            assert_eq!(
                handle.wait().unwrap(),
                id,
                "the job and the handle disagree"
            );
            assert!(id.as_str().starts_with("task-"), "{id}");
            assert!(ids.insert(id.clone()), "{id} was handed out twice");
        }
        assert_eq!(ids.len(), 10_000);
    });
}
