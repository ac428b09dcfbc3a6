//! What a confined command may see: the system paths it reads, the `/etc` entries it is
//! granted, and the environment it gets. Plain data, the same for every platform.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Read and execute: where programs, libraries and toolchains live.
pub(super) const SYSTEM_PATHS: &[&str] = &[
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/opt",
    "/nix/store",
];

/// Read only (no execute): the kernel's views. Other processes' sensitive entries there
/// are guarded by Landlock's ptrace scoping, not by these rules.
pub(super) const KERNEL_PATHS: &[&str] = &["/proc", "/sys"];

/// Read and write (no execute): the harmless devices.
pub(super) const DEVICES: &[&str] = &[
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
    "/dev/tty",
];

/// Host variables a confined command gets (when set), besides `LC_*` and the sandbox's own
/// `pass_env` list. `HOME`, `TMPDIR`, `TMP` and `TEMP` are set to the private directory.
const PASSED_VARIABLES: &[&str] = &[
    "PATH",
    "LANG",
    "LANGUAGE",
    "TERM",
    "COLORTERM",
    "NO_COLOR",
    "TZ",
    "USER",
    "LOGNAME",
    "SHELL",
];

/// Variables removed even from an unconfined command (with every secret-looking name).
const PROVIDER_KEYS: &[&str] = &["OPENAI_API_KEY", "ANTHROPIC_API_KEY"];

/// How deep `/etc` is split to leave its secrets out, and how many entries one subtree may
/// hold and still be granted whole (beyond it, it is split or left out).
const ETC_DEPTH: u32 = 4;
const SUBTREE_BUDGET: usize = 20_000;

/// Sets a confined command's environment: the allow-list only, with `HOME` and the
/// temporary directory variables pointing at `private`.
pub(super) fn confined_env(command: &mut Command, pass_env: &[String], private: &Path) {
    command.env_clear();
    for (name, value) in std::env::vars_os() {
        let Some(text) = name.to_str() else {
            continue;
        };
        let passed = PASSED_VARIABLES.contains(&text)
            || text.starts_with("LC_")
            || pass_env.iter().any(|allowed| allowed == text);
        if passed {
            command.env(&name, value);
        }
    }
    for name in ["HOME", "TMPDIR", "TMP", "TEMP"] {
        command.env(name, private);
    }
}

/// Removes the provider keys and secret-looking variables from an unconfined command's
/// environment, except those `pass_env` names.
pub(super) fn scrub_env(command: &mut Command, pass_env: &[String]) {
    for (name, _) in std::env::vars_os() {
        let Some(text) = name.to_str() else {
            continue;
        };
        if pass_env.iter().any(|allowed| allowed == text) {
            continue;
        }
        if PROVIDER_KEYS.contains(&text) || looks_secret(text) {
            command.env_remove(&name);
        }
    }
}

/// `*KEY*`, `*TOKEN*`, `*SECRET*`, `*PASSWORD*`, `*PASSWD*`, `*CREDENTIAL*` (any case).
pub(super) fn looks_secret(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    ["KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL"]
        .iter()
        .any(|word| upper.contains(word))
}

/// The `/etc` entries a confined command may read: computed once per process (so entries
/// added later are not granted until the host restarts).
pub(super) fn etc_entries() -> &'static [PathBuf] {
    static ENTRIES: OnceLock<Vec<PathBuf>> = OnceLock::new();
    ENTRIES.get_or_init(|| {
        let mut entries = Vec::new();
        grant_clean_subtrees(Path::new("/etc"), 1, &mut entries);
        entries
    })
}

/// Adds to `out` the largest subtrees of `dir` that hold no secret: each entry whose name
/// is not a secret's, that everyone may read, and (for a directory) whose every entry is
/// the same; a directory that fails is split, down to [`ETC_DEPTH`].
fn grant_clean_subtrees(dir: &Path, depth: u32, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|entry| !secret_name(&entry.file_name()))
        .map(|entry| entry.path())
        .collect();
    paths.sort();
    for path in paths {
        // Followed: a granted symlink grants its target, so the target is what is checked.
        let Ok(metadata) = fs::metadata(&path) else {
            continue;
        };
        if !world_readable(&metadata) {
            continue;
        }
        if !metadata.is_dir() {
            out.push(path);
            continue;
        }
        let mut budget = SUBTREE_BUDGET;
        if clean_subtree(&path, &mut budget) {
            out.push(path);
        } else if depth < ETC_DEPTH {
            grant_clean_subtrees(&path, depth + 1, out);
        }
    }
}

/// Whether every entry beneath `dir` is world-readable and none is named like a secret.
/// Symlinks inside are not followed: Landlock checks the path they lead to on its own.
fn clean_subtree(dir: &Path, budget: &mut usize) -> bool {
    let Ok(entries) = fs::read_dir(dir) else {
        return false;
    };
    for entry in entries {
        let Ok(entry) = entry else {
            return false;
        };
        if *budget == 0 || secret_name(&entry.file_name()) {
            return false;
        }
        *budget -= 1;
        let Ok(metadata) = entry.path().symlink_metadata() else {
            return false;
        };
        if metadata.file_type().is_symlink() {
            continue;
        }
        if !world_readable(&metadata) {
            return false;
        }
        if metadata.is_dir() && !clean_subtree(&entry.path(), budget) {
            return false;
        }
    }
    true
}

fn world_readable(metadata: &fs::Metadata) -> bool {
    let mode = metadata.permissions().mode();
    // Directories must also be searchable by everyone.
    mode & 0o004 != 0 && (!metadata.is_dir() || mode & 0o001 != 0)
}

/// Names that hold secrets whatever their mode says (root reads through modes).
fn secret_name(name: &OsStr) -> bool {
    let Some(name) = name.to_str() else {
        return true;
    };
    name.starts_with("shadow")
        || name.starts_with("gshadow")
        || name.starts_with("sudoers")
        || name.starts_with("ssh_host_")
        || name.ends_with("_key")
        || name.ends_with(".key")
        || name.ends_with(".keytab")
        || name == "private"
        || name == "opasswd"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names_are_never_granted() {
        for name in [
            "shadow",
            "gshadow-",
            "sudoers.d",
            "ssh_host_ed25519_key",
            "private",
            "krb5.keytab",
        ] {
            assert!(secret_name(OsStr::new(name)), "{name}");
        }
        for name in ["passwd", "group", "hosts", "ssl", "ssh_config"] {
            assert!(!secret_name(OsStr::new(name)), "{name}");
        }
        assert!(looks_secret("GITHUB_TOKEN"));
        assert!(looks_secret("aws_secret_access_key"));
        assert!(!looks_secret("PATH"));
    }

    #[test]
    fn subtrees_with_secrets_are_split_and_private_files_left_out() {
        let root = std::env::temp_dir().join(format!("subtask-etc-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        for dir in ["clean/deeper", "ssh/ssh_config.d", "locked"] {
            fs::create_dir_all(root.join(dir)).unwrap();
        }
        let files = [
            ("passwd", 0o644),
            ("shadow", 0o644), // by name, whatever its mode
            ("private.conf", 0o600),
            ("clean/deeper/x.conf", 0o644),
            ("ssh/ssh_config", 0o644),
            ("ssh/ssh_host_ed25519_key", 0o600),
            ("ssh/ssh_host_ed25519_key.pub", 0o644),
            ("locked/inside", 0o644),
        ];
        for (file, mode) in files {
            let path = root.join(file);
            fs::write(&path, "x").unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        }
        fs::set_permissions(root.join("locked"), fs::Permissions::from_mode(0o700)).unwrap();
        let mut granted = Vec::new();
        grant_clean_subtrees(&root, 1, &mut granted);
        let granted: Vec<String> = granted
            .iter()
            .map(|path| path.strip_prefix(&root).unwrap().display().to_string())
            .collect();
        fs::remove_dir_all(&root).unwrap();
        assert_eq!(
            granted,
            [
                "clean",
                "passwd",
                "ssh/ssh_config",
                // Public host keys go too: the rule is by name, and they are no loss.
                "ssh/ssh_config.d",
            ]
        );
    }

    #[test]
    fn etc_grants_no_secret() {
        let entries = etc_entries();
        for entry in entries {
            assert!(
                !entry.iter().any(secret_name),
                "{} is a secret",
                entry.display()
            );
            if entry.is_dir() {
                let mut budget = SUBTREE_BUDGET;
                assert!(clean_subtree(entry, &mut budget), "{}", entry.display());
            }
        }
        if Path::new("/etc/passwd").exists() {
            assert!(
                entries
                    .iter()
                    .any(|entry| entry == Path::new("/etc/passwd"))
            );
        }
        assert!(
            !entries
                .iter()
                .any(|entry| entry == Path::new("/etc/shadow"))
        );
    }
}
