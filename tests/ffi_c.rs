//! The C ABI from C: takes the cdylib `cargo test` built, compiles `tests/c/smoke.c` with
//! `gcc -std=c11 -Wall -Wextra -Werror -pedantic` against `include/subtask.h`, runs it, and
//! runs it again under valgrind (no definite leak, no invalid access).
//!
//! Needs `gcc` and `valgrind` on PATH (`apt-get install gcc valgrind`); without them these
//! tests fail rather than pass unchecked.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_nanos());
        let dir =
            std::env::temp_dir().join(format!("subtask-{name}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn describe(output: &Output) -> String {
    format!(
        "{}\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn run(command: &mut Command, what: &str) -> Output {
    command.output().unwrap_or_else(|error| {
        panic!(
            "{what}: could not start {:?}: {error}",
            command.get_program()
        )
    })
}

/// The directory of `libsubtask.so`, the cdylib of the code under test.
///
/// `cargo test` builds the library with every crate type in Cargo.toml, so the cdylib it
/// just built sits in `deps/`, next to this test's binary, under whatever target dir cargo
/// uses. Only when it is missing (this binary run by hand after a clean) is it built with
/// `cargo build --lib`, into the target dir's `debug/`. Not always: inside `cargo test`,
/// `cargo build --lib` rebuilds the library against dependencies with other features (the
/// dev-dependencies' change serde_json's) under the same file names, and the doc tests
/// that follow then fail to link ("multiple different versions of crate `serde_core`").
fn library_dir() -> PathBuf {
    let test_binary = std::env::current_exe().expect("the test binary's path");
    let deps = test_binary.parent().expect("the test binary's directory");
    if deps.join("libsubtask.so").is_file() {
        return deps.to_path_buf();
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .args(["build", "--lib", "--quiet"])
        .current_dir(root());
    // Drop what `cargo test` sets for test binaries: some build scripts (ring's) watch
    // CARGO_MANIFEST_DIR, so passing it on would rebuild them here and again in the next
    // `cargo test`.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        let set_for_tests = name.starts_with("CARGO_PKG_")
            || name.starts_with("CARGO_BIN_")
            || [
                "CARGO_MANIFEST_DIR",
                "CARGO_MANIFEST_PATH",
                "CARGO_MANIFEST_LINKS",
                "CARGO_CRATE_NAME",
                "CARGO_PRIMARY_PACKAGE",
                "CARGO_TARGET_TMPDIR",
                "CARGO_RUSTC_CURRENT_DIR",
            ]
            .contains(&name.as_ref());
        if set_for_tests {
            build.env_remove(name.as_ref());
        }
    }
    let output = run(&mut build, "cargo build --lib");
    assert!(
        output.status.success(),
        "cargo build --lib failed: {}",
        describe(&output)
    );
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map_or_else(|| root().join("target"), |dir| root().join(dir));
    let dir = target.join("debug");
    assert!(
        dir.join("libsubtask.so").is_file(),
        "no libsubtask.so in {} after cargo build --lib",
        dir.display()
    );
    dir
}

/// The smoke program (`ffi-c/smoke` beside the library), compiled once for every test here.
fn smoke() -> &'static Path {
    static SMOKE: OnceLock<PathBuf> = OnceLock::new();
    SMOKE.get_or_init(|| {
        let started = Instant::now();
        let library = library_dir();
        let dir = library.join("ffi-c");
        std::fs::create_dir_all(&dir).unwrap();
        let binary = dir.join("smoke");
        let output = run(
            Command::new("gcc")
                .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic", "-g"])
                .arg("-I")
                .arg(root().join("include"))
                .arg(root().join("tests/c/smoke.c"))
                .arg("-L")
                .arg(&library)
                .arg("-lsubtask")
                .arg(format!("-Wl,-rpath,{}", library.display()))
                .arg("-o")
                .arg(&binary),
            "gcc (apt-get install gcc)",
        );
        assert!(
            output.status.success(),
            "tests/c/smoke.c does not compile: {}",
            describe(&output)
        );
        eprintln!(
            "compiled smoke.c against {} in {:?}",
            library.display(),
            started.elapsed()
        );
        binary
    })
}

#[test]
fn c_smoke_program_passes() {
    let workspace = TempDir::new("ffi-c-workspace");
    let smoke = smoke();
    let started = Instant::now();
    let output = run(Command::new(smoke).arg(&workspace.0), "smoke");
    assert!(
        output.status.success(),
        "tests/c/smoke.c failed: {}",
        describe(&output)
    );
    eprintln!("smoke ran in {:?}", started.elapsed());
}

#[test]
fn c_smoke_program_is_clean_under_valgrind() {
    let installed = Command::new("valgrind")
        .arg("--version")
        .output()
        .is_ok_and(|output| output.status.success());
    assert!(
        installed,
        "valgrind is not installed, so the C ABI cannot be checked for leaks and invalid \
         accesses: install it (apt-get install valgrind) and run this test again"
    );
    let workspace = TempDir::new("ffi-c-valgrind");
    let smoke = smoke();
    let started = Instant::now();
    let output = run(
        Command::new("valgrind")
            .args([
                "--leak-check=full",
                "--errors-for-leak-kinds=definite",
                "--error-exitcode=99",
            ])
            .arg(format!(
                "--suppressions={}",
                root().join("tests/c/valgrind.supp").display()
            ))
            .arg(smoke)
            .arg(&workspace.0),
        "valgrind",
    );
    let report = describe(&output);
    assert!(
        output.status.success(),
        "smoke.c under valgrind failed (99: valgrind found errors): {report}"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    for line in stderr.lines() {
        let summary = ["ERROR SUMMARY", "lost:", "still reachable:", "suppressed:"];
        if summary.iter().any(|part| line.contains(part)) {
            eprintln!("{line}");
        }
    }
    assert!(
        stderr.contains("ERROR SUMMARY: 0 errors"),
        "valgrind reported errors: {report}"
    );
    eprintln!("valgrind run took {:?}", started.elapsed());
}
