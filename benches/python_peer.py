"""The facade benchmark's peer: the same three measurements on Python's
concurrent.futures.ThreadPoolExecutor, run by `cargo bench --bench facade` in the same run.

    python3 benches/python_peer.py [--workers 8] [--wake 100] [--roundtrip 20000]
        [--roundtrip-warmup 1000] [--callers 16] [--jobs-per-caller 2000]
        [--throughput-warmup 100] [--throughput-rounds 5] [--serve]

Prints one JSON object on stdout (figures in microseconds and jobs per second). With
--serve, answers each measurement named on a line of stdin with one JSON line instead (the
bench's way of pairing its rounds with ours).

- wake latency: a job sleeps 50 ms and returns perf_counter_ns(); the caller, blocked in
  future.result(), takes the difference the moment it holds the value.
- round trip: submit a job that returns at once and wait for its result, one caller.
- throughput: trivial jobs through submit().result() from 16 caller threads at once, from a
  barrier to the last join; the median of several rounds on one pool.
"""

import argparse
import json
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

WAKE_JOB_RUN = 0.050


def percentile(samples, percent):
    ordered = sorted(samples)
    index = min(len(ordered) * percent // 100, len(ordered) - 1)
    return ordered[index]


def sleepy_job():
    time.sleep(WAKE_JOB_RUN)
    return time.perf_counter_ns()


def trivial_job():
    return None


def wake_latency(pool, samples):
    pool.submit(trivial_job).result()  # threads started, first allocations done
    out = []
    for _ in range(samples):
        returned_at = pool.submit(sleepy_job).result()
        out.append((time.perf_counter_ns() - returned_at) / 1e3)
    return out


def roundtrip(pool, warmup, samples):
    for _ in range(warmup):
        pool.submit(trivial_job).result()
    out = []
    for _ in range(samples):
        started = time.perf_counter_ns()
        pool.submit(trivial_job).result()
        out.append((time.perf_counter_ns() - started) / 1e3)
    return out


def throughput(pool, callers, jobs_per_caller, warmup):
    barrier = threading.Barrier(callers + 1)

    def caller():
        for _ in range(warmup):
            pool.submit(trivial_job).result()
        barrier.wait()
        for _ in range(jobs_per_caller):
            pool.submit(trivial_job).result()

    threads = [threading.Thread(target=caller) for _ in range(callers)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    return callers * jobs_per_caller / elapsed, elapsed


def serve(args):
    """Answers one measurement per line of stdin ("wake", "roundtrip", "throughput"; "ping"
    answers at once) with a
    JSON line, so the bench can interleave its rounds with ours: a 2-core virtual machine
    drifts between fast and slow spells that last seconds, and paired rounds see the same
    spell."""
    pools = {}

    def pool(name):
        if name not in pools:
            pools[name] = ThreadPoolExecutor(max_workers=args.workers)
        return pools[name]

    for line in sys.stdin:
        command = line.strip()
        if command == "wake":
            wake = wake_latency(pool(command), args.wake)
            answer = {"p50_us": percentile(wake, 50), "p99_us": percentile(wake, 99)}
        elif command == "roundtrip":
            rt = roundtrip(pool(command), args.roundtrip_warmup, args.roundtrip)
            answer = {"p50_us": percentile(rt, 50), "p99_us": percentile(rt, 99)}
        elif command == "throughput":
            per_second, elapsed = throughput(
                pool(command), args.callers, args.jobs_per_caller, args.throughput_warmup
            )
            answer = {"per_s": per_second, "elapsed_s": elapsed}
        elif command == "ping":
            answer = {}
        else:
            answer = {"error": f"unknown command {command!r}"}
        answer["python"] = sys.version.split()[0]
        print(json.dumps(answer), flush=True)
    for executor in pools.values():
        executor.shutdown()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--wake", type=int, default=100)
    parser.add_argument("--roundtrip", type=int, default=20_000)
    parser.add_argument("--roundtrip-warmup", type=int, default=1_000)
    parser.add_argument("--callers", type=int, default=16)
    parser.add_argument("--jobs-per-caller", type=int, default=2_000)
    parser.add_argument("--throughput-warmup", type=int, default=100)
    parser.add_argument("--throughput-rounds", type=int, default=5)
    parser.add_argument(
        "--serve", action="store_true", help="answer measurements named on stdin"
    )
    args = parser.parse_args()
    if args.serve:
        serve(args)
        return

    with ThreadPoolExecutor(max_workers=args.workers) as pool:
        wake = wake_latency(pool, args.wake)
    with ThreadPoolExecutor(max_workers=args.workers) as pool:
        rt = roundtrip(pool, args.roundtrip_warmup, args.roundtrip)
    with ThreadPoolExecutor(max_workers=args.workers) as pool:
        rounds = sorted(
            throughput(pool, args.callers, args.jobs_per_caller, args.throughput_warmup)
            for _ in range(args.throughput_rounds)
        )
    per_second, elapsed = rounds[len(rounds) // 2]
    json.dump(
        {
            "python": sys.version.split()[0],
            "workers": args.workers,
            "wake_latency_us_p50": percentile(wake, 50),
            "wake_latency_us_p99": percentile(wake, 99),
            "roundtrip_us_p50": percentile(rt, 50),
            "roundtrip_us_p99": percentile(rt, 99),
            "throughput_per_s": per_second,
            "throughput_elapsed_s": elapsed,
            "throughput_rounds_per_s": [rate for rate, _ in rounds],
            "wake_samples": len(wake),
            "roundtrip_samples": len(rt),
            "throughput_jobs": args.callers * args.jobs_per_caller,
        },
        sys.stdout,
    )
    print()


if __name__ == "__main__":
    main()
