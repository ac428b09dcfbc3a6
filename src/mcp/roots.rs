//! The client's roots: where a call's subagents work when the host, not the user, chose the
//! server's working directory.
//!
//! Roots come from the client (`roots/list` after the handshake, or an MRTR input request
//! on 2026-07-28), so they are untrusted input: only `file://` URIs of existing directories
//! are kept, canonicalised (symlinks resolved), and `/` is never one.

use std::path::{Path, PathBuf};
use std::time::Duration;

use parking_lot::{Condvar, Mutex};
use serde_json::Value;

/// Roots kept at most; a client sending more gets the first ones and a warning.
const MAX_ROOTS: usize = 32;

/// The directories of a `roots/list` result (`{"roots": [{"uri": …}]}`), in the client's
/// order, and what was wrong with the entries left out.
pub(crate) fn parse(result: &Value) -> Result<(Vec<PathBuf>, Vec<String>), String> {
    let Some(entries) = result.get("roots").and_then(Value::as_array) else {
        return Err("the roots/list result has no `roots` array".into());
    };
    let mut roots = Vec::new();
    let mut skipped = Vec::new();
    for entry in entries {
        let Some(uri) = entry.get("uri").and_then(Value::as_str) else {
            skipped.push("a root without a `uri`".to_string());
            continue;
        };
        match directory(uri) {
            Ok(path) if roots.len() >= MAX_ROOTS => {
                skipped.push(format!("{}: more than {MAX_ROOTS} roots", path.display()));
            }
            Ok(path) if !roots.contains(&path) => roots.push(path),
            Ok(_) => {}
            Err(problem) => skipped.push(format!("{}: {problem}", printable(uri))),
        }
    }
    Ok((roots, skipped))
}

/// A URI as it may appear in a message: control characters escaped, at most 200 characters.
fn printable(uri: &str) -> String {
    uri.chars().take(200).flat_map(char::escape_debug).collect()
}

/// The canonical directory a root's `file://` URI names.
fn directory(uri: &str) -> Result<PathBuf, String> {
    let Some(rest) = uri.strip_prefix("file://") else {
        return Err("not a file:// URI".into());
    };
    // `file:///path` or `file://localhost/path`; another host is another machine.
    let path = match rest.find('/') {
        Some(0) => rest,
        Some(at) if rest[..at].eq_ignore_ascii_case("localhost") => &rest[at..],
        _ => return Err("names another host".into()),
    };
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let decoded = percent_encoding::percent_decode_str(path)
        .decode_utf8()
        .map_err(|_| "is not UTF-8 once decoded".to_string())?;
    if decoded.contains('\0') {
        return Err("holds a NUL byte".into());
    }
    let canonical = std::fs::canonicalize(Path::new(decoded.as_ref()))
        .map_err(|problem| format!("cannot be used: {problem}"))?;
    if !canonical.is_dir() {
        return Err("is not a directory".into());
    }
    if canonical.parent().is_none() {
        return Err("is the filesystem root, where subagents never work".into());
    }
    Ok(canonical)
}

/// The roots of a session on a handshake revision: asked with `roots/list` after
/// `notifications/initialized` and again on `notifications/roots/list_changed`.
pub(crate) struct SessionRoots {
    /// Written by the dispatcher (asked, answered); read by call workers, which wait on
    /// `changed` while an answer is pending.
    state: Mutex<RootsState>,
    changed: Condvar,
}

#[derive(Debug, Clone)]
pub(crate) enum RootsState {
    /// The client did not declare `roots`, or has not been asked yet.
    None,
    /// A `roots/list` request is out, with this id.
    Pending(String),
    /// A `roots/list` request is out, with this id, and a call gave up waiting for it: calls
    /// no longer wait (a client that never answers costs one wait, not one per call), but a
    /// late answer is still taken.
    Late(String),
    /// The client's last answer: its directories (maybe none).
    Known(Vec<PathBuf>),
}

impl SessionRoots {
    pub fn new() -> SessionRoots {
        SessionRoots {
            state: Mutex::new(RootsState::None),
            changed: Condvar::new(),
        }
    }

    pub fn set(&self, state: RootsState) {
        *self.state.lock() = state;
        self.changed.notify_all();
    }

    /// The id of the `roots/list` request awaiting an answer.
    pub fn pending(&self) -> Option<String> {
        match &*self.state.lock() {
            RootsState::Pending(id) | RootsState::Late(id) => Some(id.clone()),
            _ => None,
        }
    }

    /// The last known roots (empty when none are known).
    pub fn known(&self) -> Vec<PathBuf> {
        match &*self.state.lock() {
            RootsState::Known(roots) => roots.clone(),
            _ => Vec::new(),
        }
    }

    /// The roots once any pending `roots/list` is answered; `None` if none were asked
    /// for, or the client has not answered within `patience`.
    pub fn wait(&self, patience: Duration) -> Option<Vec<PathBuf>> {
        let mut state = self.state.lock();
        let deadline = std::time::Instant::now() + patience;
        loop {
            match &*state {
                RootsState::None | RootsState::Late(_) => return None,
                RootsState::Known(roots) => return Some(roots.clone()),
                RootsState::Pending(id) => {
                    let id = id.clone();
                    if self.changed.wait_until(&mut state, deadline).timed_out() {
                        let gave_up = matches!(&*state, RootsState::Pending(still) if *still == id);
                        if gave_up {
                            *state = RootsState::Late(id);
                        }
                        drop(state);
                        if gave_up {
                            log::warn!(
                                "MCP: the client has not answered roots/list in {} s; calls go \
                                 on without roots until it does",
                                patience.as_secs_f64()
                            );
                        }
                        return None;
                    }
                }
            }
        }
    }
}

/// Which of `roots` a call works in, from the `cwd` of its tasks: the root holding its
/// absolute `cwd`s (all in one), else the first root. The message names what is valid.
pub(crate) fn choose<'a>(roots: &'a [PathBuf], arguments: &Value) -> Result<&'a Path, String> {
    let first = roots.first().ok_or("the client offered no roots")?;
    let mut cwds: Vec<(String, &str)> = Vec::new();
    if let Some(cwd) = arguments.get("cwd").and_then(Value::as_str) {
        cwds.push(("cwd".into(), cwd));
    }
    if let Some(tasks) = arguments.get("tasks").and_then(Value::as_array) {
        for (index, task) in tasks.iter().enumerate() {
            if let Some(cwd) = task.get("cwd").and_then(Value::as_str) {
                cwds.push((format!("tasks[{index}].cwd"), cwd));
            }
        }
    }
    let mut chosen: Option<(&'a Path, String)> = None;
    for (field, cwd) in cwds {
        let path = Path::new(cwd);
        if !path.is_absolute() {
            continue;
        }
        // The existing path, symlinks resolved: a link out of a root is outside it.
        let resolved = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        let Some(root) = roots.iter().find(|root| resolved.starts_with(root)) else {
            return Err(format!(
                "`{field}` '{}' is not inside any of the client's roots; use a directory \
                 inside one of: {}",
                printable(cwd),
                list(roots)
            ));
        };
        match &chosen {
            Some((other, other_field)) if *other != root.as_path() => {
                return Err(format!(
                    "`{other_field}` is in the root {} but `{field}` is in the root {}; the \
                     tasks of one call work in one root: make one call per root",
                    other.display(),
                    root.display()
                ));
            }
            Some(_) => {}
            None => chosen = Some((root, field)),
        }
    }
    Ok(chosen.map_or(first.as_path(), |(root, _)| root))
}

/// `/a, /b`: the roots for a message.
pub(crate) fn list(roots: &[PathBuf]) -> String {
    roots
        .iter()
        .map(|root| root.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn only_file_uris_of_directories_other_than_slash_are_roots() {
        let here = std::fs::canonicalize(env!("CARGO_MANIFEST_DIR")).unwrap();
        let src = here.join("src");
        let result = json!({"roots": [
            {"uri": format!("file://{}", here.display())},
            {"uri": format!("file://localhost{}", src.display())},
            {"uri": format!("file://{}", here.display())},
            {"uri": "file:///"},
            {"uri": "file://evil.example/etc"},
            {"uri": "https://example.com/"},
            {"uri": format!("file://{}/Cargo.toml", here.display())},
            {"uri": "file:///no/such/dir"},
            {"name": "no uri"},
        ]});
        let (roots, skipped) = parse(&result).unwrap();
        assert_eq!(roots, [here, src]);
        assert_eq!(skipped.len(), 6, "{skipped:?}");
        assert!(skipped[0].contains("filesystem root"), "{skipped:?}");
        assert!(parse(&json!({})).is_err());
    }

    #[test]
    fn percent_encoded_paths_are_decoded() {
        let dir = std::env::temp_dir().join(format!("subtask roots {}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let uri = format!("file://{}", dir.display()).replace(' ', "%20");
        let (roots, _) = parse(&json!({"roots": [{"uri": uri}]})).unwrap();
        assert_eq!(roots, [std::fs::canonicalize(&dir).unwrap()]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_call_works_in_the_root_of_its_cwd_or_the_first() {
        let here = std::fs::canonicalize(env!("CARGO_MANIFEST_DIR")).unwrap();
        let (a, b) = (here.join("src"), here.join("tests"));
        let roots = [a.clone(), b.clone()];
        assert_eq!(choose(&roots, &json!({"prompt": "x"})).unwrap(), a);
        let in_b = json!({"cwd": b.join("support").display().to_string()});
        assert_eq!(choose(&roots, &in_b).unwrap(), b);
        let relative = json!({"tasks": [{"cwd": "mcp"}, {"cwd": b.display().to_string()}]});
        assert_eq!(choose(&roots, &relative).unwrap(), b);
        let outside = choose(&roots, &json!({"cwd": "/etc"})).unwrap_err();
        assert!(outside.contains(&a.display().to_string()), "{outside}");
        let escape = json!({"cwd": format!("{}/../benches", a.display())});
        assert!(choose(&roots, &escape).is_err());
        let both =
            json!({"tasks": [{"cwd": a.display().to_string()}, {"cwd": b.display().to_string()}]});
        assert!(
            choose(&roots, &both)
                .unwrap_err()
                .contains("one call per root")
        );
        assert!(choose(&[], &json!({})).is_err());
    }
}
