//! What the C ABI adds to a `task` call: the same trivial task (a host model that answers
//! at once) run through `TaskTool::call_str` directly and through `subtask_task` with an
//! `extern "C"` model callback. `python/bench.py` subtracts the C ABI figure from the same
//! call made from Python to get what the Python binding adds.
//!
//! `cargo bench --bench ffi` prints a table; `cargo bench --bench ffi -- --json` prints one
//! JSON object on stdout and nothing else (progress goes to stderr). Other arguments (cargo
//! adds `--bench`) are ignored.

use std::ffi::{CStr, CString, c_char, c_void};
use std::hint::black_box;
use std::ptr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use subtask::Runtime;
use subtask::ffi::{
    subtask_config, subtask_config_free, subtask_config_new, subtask_config_set_model,
    subtask_error, subtask_error_free, subtask_error_message, subtask_reply, subtask_reply_set,
    subtask_runtime, subtask_runtime_free, subtask_runtime_new, subtask_string_free, subtask_task,
};
use subtask::llm::FunctionModel;
use subtask::subagents::{Subagents, Transcripts};
use subtask::task_tool::TaskTool;
use subtask::tools::{Workspace, builtin_tools};

const WARMUP: usize = 500;
const SAMPLES: usize = 5_000;
/// Idle time between two calls of the spaced measurement: long enough for the runtime's
/// threads to park, as they do between the calls of a host that works in between (a Python
/// agent loop), so the next call pays for waking them. Part of the workload, not a wait.
const GAP: Duration = Duration::from_millis(1);
const SPACED_SAMPLES: usize = 1_000;
const ARGS: &str = r#"{"description": "Answer", "prompt": "What is six times seven?", "subagent_type": "general-purpose"}"#;
const RESPONSE: &CStr = c"{\"choices\": [{\"message\": {\"role\": \"assistant\", \"content\": \"42\"}, \"finish_reason\": \"stop\"}]}";

fn main() {
    let json = std::env::args().skip(1).any(|arg| arg == "--json");
    let workspace = std::env::temp_dir();

    eprintln!("ffi bench: TaskTool::call_str with a Rust FunctionModel…");
    let direct = Samples::new(direct(&workspace));
    eprintln!("ffi bench: subtask_task with an extern \"C\" model callback…");
    let c_abi = Samples::new(through_c_abi(&workspace, Duration::ZERO));
    eprintln!("ffi bench: the same, {GAP:?} apart…");
    let c_abi_spaced = Samples::new(through_c_abi(&workspace, GAP));

    if json {
        println!(
            "{}",
            json!({
                "samples": SAMPLES,
                "direct": direct.json(),
                "c_abi": c_abi.json(),
                "c_abi_spaced": c_abi_spaced.json(),
                "c_abi_added_p50_us": micros(c_abi.percentile(50.0)) - micros(direct.percentile(50.0)),
            })
        );
    } else {
        println!("a trivial task (one model turn, answered at once), {SAMPLES} calls each:");
        println!("| path | p50 | p99 |\n|---|---|---|");
        for (name, samples) in [
            ("TaskTool::call_str, Rust FunctionModel", &direct),
            ("subtask_task, extern \"C\" model callback", &c_abi),
            (
                "the same, 1 ms apart (the pools' threads parked)",
                &c_abi_spaced,
            ),
        ] {
            println!(
                "| {name} | {:.1} µs | {:.1} µs |",
                micros(samples.percentile(50.0)),
                micros(samples.percentile(99.0))
            );
        }
        println!(
            "C ABI adds {:.1} µs at the median (JSON text in and out, the callback's copy)",
            micros(c_abi.percentile(50.0)) - micros(direct.percentile(50.0))
        );
    }
}

fn response() -> Value {
    serde_json::from_str(RESPONSE.to_str().expect("UTF-8")).expect("JSON")
}

fn direct(workspace: &std::path::Path) -> Vec<Duration> {
    let reply = response();
    let model = Arc::new(FunctionModel::new("bench", move |_request| {
        Ok(reply.clone())
    }));
    let subagents = Subagents::new(model, builtin_tools()).transcripts(Transcripts::Off);
    let tool = TaskTool::new(
        Runtime::new().expect("a runtime"),
        subagents,
        Workspace::new(workspace).expect("a workspace"),
    );
    measure(|| {
        let output = tool.call_str(black_box(ARGS));
        assert!(!output.is_error, "{}", output.to_text());
        black_box(output);
    })
}

unsafe extern "C" fn answer(
    _user_data: *mut c_void,
    _request_json: *const c_char,
    reply: *mut subtask_reply,
) -> i32 {
    // SAFETY: `reply` is the live reply of this call; RESPONSE is NUL-terminated.
    unsafe { subtask_reply_set(reply, RESPONSE.as_ptr()) };
    0
}

fn check(error: *mut subtask_error) {
    if !error.is_null() {
        // SAFETY: a live error from the library, freed once here.
        let message = unsafe { CStr::from_ptr(subtask_error_message(error)) }
            .to_string_lossy()
            .into_owned();
        // SAFETY: as above.
        unsafe { subtask_error_free(error) };
        panic!("subtask error: {message}");
    }
}

fn through_c_abi(workspace: &std::path::Path, gap: Duration) -> Vec<Duration> {
    let settings = CString::new(
        json!({"transcripts": "off", "workspace": workspace.to_string_lossy()}).to_string(),
    )
    .expect("no NUL");
    let args = CString::new(ARGS).expect("no NUL");
    let mut config: *mut subtask_config = ptr::null_mut();
    let mut runtime: *mut subtask_runtime = ptr::null_mut();
    // SAFETY: every pointer is valid for the call; handles are freed once below.
    unsafe {
        check(subtask_config_new(settings.as_ptr(), &mut config));
        check(subtask_config_set_model(
            config,
            c"bench".as_ptr(),
            Some(answer),
            ptr::null_mut(),
        ));
        check(subtask_runtime_new(config, &mut runtime));
        subtask_config_free(config);
    }
    let call = || {
        let mut out: *mut c_char = ptr::null_mut();
        // SAFETY: a live runtime, a NUL-terminated argument, a writable out-parameter; the
        // string it receives is freed once.
        unsafe {
            check(subtask_task(runtime, args.as_ptr(), &mut out));
            black_box(CStr::from_ptr(out).to_bytes().len());
            subtask_string_free(out);
        }
    };
    let samples = if gap.is_zero() {
        measure(call)
    } else {
        measure_spaced(call, gap)
    };
    // SAFETY: no call on it is running any more.
    unsafe { subtask_runtime_free(runtime) };
    samples
}

/// Like `measure`, with `gap` of idle time before each call (not timed).
fn measure_spaced(mut call: impl FnMut(), gap: Duration) -> Vec<Duration> {
    for _ in 0..WARMUP / 10 {
        call();
    }
    (0..SPACED_SAMPLES)
        .map(|_| {
            std::thread::sleep(gap);
            let started = Instant::now();
            call();
            started.elapsed()
        })
        .collect()
}

fn measure(mut call: impl FnMut()) -> Vec<Duration> {
    for _ in 0..WARMUP {
        call();
    }
    (0..SAMPLES)
        .map(|_| {
            let started = Instant::now();
            call();
            started.elapsed()
        })
        .collect()
}

struct Samples(Vec<Duration>);

impl Samples {
    fn new(mut samples: Vec<Duration>) -> Samples {
        samples.sort_unstable();
        Samples(samples)
    }

    fn percentile(&self, percent: f64) -> Duration {
        let index = ((self.0.len() - 1) as f64 * percent / 100.0).round() as usize;
        self.0[index]
    }

    fn json(&self) -> Value {
        json!({
            "p50_us": micros(self.percentile(50.0)),
            "p99_us": micros(self.percentile(99.0)),
        })
    }
}

fn micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}
