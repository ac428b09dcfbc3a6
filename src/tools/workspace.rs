//! The directory a task's tools may touch: the one place that turns a path argument into
//! an open file beneath it, and the rules for what may be written there.
//!
//! Every file tool goes through [`Workspace`]: a path is first checked by name (for a clear
//! error: `..`, absolute paths, symlinks leading out), then opened *beneath the root's file
//! descriptor* by the kernel (see [`beneath`](super::beneath)), so a change to the tree
//! between the check and the open cannot lead the open outside. Only regular files are
//! read or written; writes replace a file atomically through a temporary file and a rename
//! in the same directory, refuse files with more than one hard link and refuse protected
//! paths.

use std::fs::{self, File, Metadata};
use std::hash::{Hash, Hasher};
use std::io::{self, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};

use super::beneath::RootDir;
use super::protected::Protection;
use crate::error::Error;

/// A task's workspace: a canonical directory that file tools cannot leave.
///
/// Every path a tool receives is checked by [`resolve`](Self::resolve): relative paths
/// start at the root; `..`, absolute paths outside the root, and symlinks whose target lies
/// outside (or nowhere) are refused with an error the model can act on. The file tools then
/// open the checked path beneath a descriptor of the root held here, with `openat2`
/// (`RESOLVE_BENEATH`, no symlinks) where the kernel has it (Linux 5.6+) and one component
/// at a time with `O_NOFOLLOW` elsewhere, so nothing done to the tree between the check and
/// the open redirects them outside.
///
/// `write` and `edit` refuse [protected paths](Self::DEFAULT_PROTECTED_PATHS) (`.git/`,
/// `.subtask/`, `.claude/`, editor and shell hook files) unless the user changes the rules
/// with [`with_protected_paths`](Self::with_protected_paths) or turns them off with
/// [`allow_protected_writes`](Self::allow_protected_writes). The rules bind the file tools
/// only: `bash` is confined by its own sandbox.
///
/// Clones share the root's descriptor. Two workspaces are equal when their roots and write
/// rules are.
#[derive(Debug, Clone)]
pub struct Workspace {
    /// Canonical: absolute, no `..`, no symlinks. Used to check paths and in messages; the
    /// opens themselves go through `dir`.
    root: PathBuf,
    /// `root`, opened when the workspace was made: every file tool opens beneath it.
    dir: Arc<RootDir>,
    /// Where `root` sits beneath the workspace the rules were set on (empty for that one;
    /// `sub` for a subagent's `cwd` of `sub`), so a rule such as `**/.git` still holds in a
    /// workspace rooted at `.git`.
    within: PathBuf,
    /// Which writes are refused.
    protection: Arc<Protection>,
}

/// A file or directory opened beneath the root for reading.
#[derive(Debug)]
pub(crate) struct Opened {
    /// Open read-only, blocking mode restored for regular files.
    pub(crate) file: File,
    /// From `fstat` of `file`: a regular file or a directory, nothing else.
    pub(crate) metadata: Metadata,
    /// The absolute path it was opened at.
    pub(crate) path: PathBuf,
    /// The path relative to the root, for messages.
    pub(crate) shown: String,
}

/// What [`Workspace::write_file`] did.
#[derive(Debug)]
pub(crate) struct Written {
    /// The path relative to the root, for messages.
    pub(crate) shown: String,
    /// The file did not exist before.
    pub(crate) created: bool,
}

/// A path checked by name: where it is, absolute and relative to the root.
struct Located {
    absolute: PathBuf,
    /// Only normal components; empty for the root itself.
    relative: PathBuf,
}

/// Numbers the temporary files of concurrent writes apart (with the process id).
static TEMPORARY_FILES: AtomicU64 = AtomicU64::new(0);

impl Workspace {
    /// The rules `write` and `edit` refuse by default. Each is a glob matched,
    /// case-insensitively, against a path relative to the workspace root and against each
    /// of its parent directories (so a rule naming a directory covers everything in it):
    /// `**/.git`, `**/.subtask`, `**/.claude`, `**/.mcp.json`, `**/.envrc`, `**/.vscode`,
    /// `**/.idea`, `**/.husky`, the vim/neovim start-up files `.exrc`, `.nvimrc`,
    /// `.nvim.lua`, and the shell start-up files `.bashrc`, `.bash_profile`, `.bash_login`,
    /// `.bash_logout`, `.profile`, `.zshrc`, `.zshenv`, `.zprofile`, `.zlogin`.
    ///
    /// Not protected, on purpose: `.gitattributes` (its filter drivers run only if
    /// `.git/config` defines them), `.gitmodules` (git ignores commands in it), and build
    /// files such as `Makefile` or `package.json` (they run only when someone runs the
    /// project, like any source file).
    pub const DEFAULT_PROTECTED_PATHS: &'static [&'static str] = &[
        "**/.git",
        "**/.subtask",
        "**/.claude",
        "**/.mcp.json",
        "**/.envrc",
        "**/.vscode",
        "**/.idea",
        "**/.husky",
        "**/.exrc",
        "**/.nvimrc",
        "**/.nvim.lua",
        "**/.bashrc",
        "**/.bash_profile",
        "**/.bash_login",
        "**/.bash_logout",
        "**/.profile",
        "**/.zshrc",
        "**/.zshenv",
        "**/.zprofile",
        "**/.zlogin",
    ];

    /// A workspace rooted at `root`, which must be an existing directory, with the default
    /// [protected paths](Self::DEFAULT_PROTECTED_PATHS).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) if `root` is not a directory or
    /// cannot be opened.
    pub fn new(root: impl AsRef<Path>) -> Result<Workspace, Error> {
        let root = root.as_ref();
        let unusable = |error: io::Error| {
            Error::config(format!(
                "the workspace {} cannot be used: {error}",
                root.display()
            ))
        };
        let canonical = fs::canonicalize(root).map_err(unusable)?;
        if !canonical.is_dir() {
            return Err(Error::config(format!(
                "the workspace {} is not a directory",
                root.display()
            )));
        }
        let dir = RootDir::open_root(&canonical).map_err(unusable)?;
        Ok(Workspace {
            root: canonical,
            dir: Arc::new(dir),
            within: PathBuf::new(),
            protection: Arc::new(Protection::default_rules()),
        })
    }

    /// The workspace of the current directory.
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new).
    pub fn current_dir() -> Result<Workspace, Error> {
        Workspace::new(std::env::current_dir()?)
    }

    /// This workspace with `rules` as its protected paths instead of the current ones
    /// (globs as in [`DEFAULT_PROTECTED_PATHS`](Self::DEFAULT_PROTECTED_PATHS); an empty
    /// list protects nothing). To add to the defaults, chain them:
    /// `Workspace::DEFAULT_PROTECTED_PATHS.iter().copied().chain(["secrets/**"])`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) naming a rule that is not a valid
    /// glob.
    pub fn with_protected_paths<I, S>(mut self, rules: I) -> Result<Workspace, Error>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut protection = Protection::new(rules.into_iter().map(Into::into))?;
        protection.allow(self.protection.allowed());
        self.protection = Arc::new(protection);
        Ok(self)
    }

    /// Whether `write` and `edit` may change protected paths after all. Only the user (host
    /// code) can set this; a model cannot. Defaults to `false`.
    pub fn allow_protected_writes(mut self, allow: bool) -> Workspace {
        Arc::make_mut(&mut self.protection).allow(allow);
        self
    }

    /// The protected path rules in force (whether or not writes to them are allowed).
    pub fn protected_paths(&self) -> &[String] {
        self.protection.rules()
    }

    /// Whether writes to protected paths are allowed.
    pub fn protected_writes_allowed(&self) -> bool {
        self.protection.allowed()
    }

    /// The workspace rooted at the directory `path` inside this one, with the same write
    /// rules (a subagent's `cwd`). The directory is opened beneath this root.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Tool`](crate::ErrorKind::Tool) when `path` leaves this workspace, does
    /// not exist or is not a directory.
    pub fn subdirectory(&self, path: &str) -> Result<Workspace, Error> {
        let located = self.locate(path)?;
        let shown = self.relative(&located.absolute);
        let fd = self
            .dir
            .open(
                &located.relative,
                OFlags::RDONLY | OFlags::DIRECTORY,
                Mode::empty(),
            )
            .map_err(|error| {
                if error.kind() == io::ErrorKind::NotADirectory {
                    Error::tool(format!("'{shown}' is not a directory of the workspace"))
                } else if error.kind() == io::ErrorKind::NotFound {
                    Error::tool(format!(
                        "'{shown}' is not a directory of the workspace: nothing is there (use \
                         ls to see what is)"
                    ))
                } else {
                    self.open_error("open", &shown, &error)
                }
            })?;
        Ok(Workspace {
            root: located.absolute,
            dir: Arc::new(RootDir::from_fd(fd, self.dir.method())),
            within: self.within.join(&located.relative),
            protection: self.protection.clone(),
        })
    }

    /// The same workspace opening the other way (tests cover both on one kernel).
    #[cfg(test)]
    fn with_method(&self, method: super::beneath::Method) -> Workspace {
        Workspace {
            dir: Arc::new(self.dir.with_method(method).unwrap()),
            ..self.clone()
        }
    }

    /// The canonical root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The absolute path `path` names inside the workspace (existing or not), with every
    /// symlink on the way resolved.
    ///
    /// This is a check by name, for messages and for tools of your own that then open
    /// beneath the root; the built-in file tools open what it returns beneath the root's
    /// descriptor, never by this path.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Tool`](crate::ErrorKind::Tool) when the path is empty, leaves the
    /// workspace (by `..`, an absolute path or a symlink), or goes through a dangling
    /// symlink.
    pub fn resolve(&self, path: &str) -> Result<PathBuf, Error> {
        if path.trim().is_empty() {
            return Err(Error::tool(
                "the path is empty; give a path inside the workspace",
            ));
        }
        if path.contains('\0') {
            return Err(Error::tool(
                "the path contains a NUL character; give a path inside the workspace",
            ));
        }
        let candidate = self.root.join(path); // an absolute `path` replaces the root
        // The deepest part that exists is canonicalised (resolving `..` and symlinks as
        // the filesystem would); the rest does not exist yet and is appended as written.
        let mut existing = candidate.as_path();
        let mut missing = Vec::new();
        let resolved = loop {
            if fs::symlink_metadata(existing).is_ok() {
                let canonical = fs::canonicalize(existing).map_err(|_| {
                    Error::tool(format!(
                        "'{path}' goes through a symlink whose target does not exist; use a \
                         path inside the workspace"
                    ))
                })?;
                break canonical;
            }
            let Some(name) = existing.file_name() else {
                // A `..` after a part that does not exist cannot be resolved.
                return Err(self.outside(path));
            };
            missing.push(name.to_owned());
            existing = existing.parent().unwrap_or(Path::new("/"));
        };
        let mut resolved = resolved;
        for name in missing.iter().rev() {
            match Path::new(name).components().next() {
                Some(Component::Normal(_)) => resolved.push(name),
                _ => {
                    return Err(self.outside(path));
                }
            }
        }
        if !resolved.starts_with(&self.root) {
            return Err(self.outside(path));
        }
        Ok(resolved)
    }

    fn outside(&self, path: &str) -> Error {
        Error::tool(format!(
            "'{path}' is outside the workspace {}; use a path inside it (relative paths start \
             at the workspace root)",
            self.root.display()
        ))
    }

    /// `path` relative to the root, for messages and results (`.` for the root itself).
    pub fn relative(&self, path: &Path) -> String {
        match path.strip_prefix(&self.root) {
            Ok(relative) if relative.as_os_str().is_empty() => ".".to_string(),
            Ok(relative) => relative.display().to_string(),
            Err(_) => path.display().to_string(),
        }
    }

    /// `path` checked by name and split into its absolute and root-relative forms.
    fn locate(&self, path: &str) -> Result<Located, Error> {
        let absolute = self.resolve(path)?;
        let relative = absolute
            .strip_prefix(&self.root)
            .map_err(|_| self.outside(path))?
            .to_path_buf();
        Ok(Located { absolute, relative })
    }

    /// Opens the file or directory `path` names for reading, beneath the root.
    ///
    /// Opened with `O_NONBLOCK`, so a FIFO cannot block the call; anything but a regular
    /// file or a directory is then refused, and a regular file goes back to blocking mode.
    pub(crate) fn open_read(&self, path: &str) -> Result<Opened, Error> {
        let located = self.locate(path)?;
        let shown = self.relative(&located.absolute);
        let fd = self
            .dir
            .open(
                &located.relative,
                OFlags::RDONLY | OFlags::NONBLOCK,
                Mode::empty(),
            )
            .map_err(|error| self.open_error("open", &shown, &error))?;
        let (file, metadata) = regular_or_directory(fd, &shown)?;
        Ok(Opened {
            file,
            metadata,
            path: located.absolute,
            shown,
        })
    }

    /// Opens a regular file a walk found at `absolute` (beneath the root, no symlinks on
    /// the way), for grep. `None` for anything that is not a regular file now.
    pub(crate) fn open_walked(&self, absolute: &Path) -> io::Result<Option<File>> {
        let relative = absolute.strip_prefix(&self.root).map_err(|_| {
            io::Error::new(io::ErrorKind::InvalidInput, "a path outside the workspace")
        })?;
        let fd = self
            .dir
            .open(relative, OFlags::RDONLY | OFlags::NONBLOCK, Mode::empty())?;
        match regular_or_directory(fd, "") {
            Ok((file, metadata)) if metadata.is_file() => Ok(Some(file)),
            _ => Ok(None),
        }
    }

    /// The metadata of the regular file a walk found at `absolute`, if it is one beneath
    /// the root now (opened `O_PATH` where the system has it, so nothing is read and no
    /// device is opened), for glob.
    pub(crate) fn stat_walked(&self, absolute: &Path) -> Option<Metadata> {
        let relative = absolute.strip_prefix(&self.root).ok()?;
        #[cfg(any(target_os = "linux", target_os = "android"))]
        let flags = OFlags::PATH;
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        let flags = OFlags::RDONLY | OFlags::NONBLOCK;
        let fd = self.dir.open(relative, flags, Mode::empty()).ok()?;
        let metadata = File::from(fd).metadata().ok()?;
        metadata.is_file().then_some(metadata)
    }

    /// Refuses a write to `path` when a protected path rule covers it.
    pub(crate) fn check_writable(&self, path: &str) -> Result<(), Error> {
        let located = self.locate(path)?;
        self.check_protection(&located)
    }

    fn check_protection(&self, located: &Located) -> Result<(), Error> {
        let from_top = self.within.join(&located.relative);
        if let Some((rule, why)) = self.protection.rule_for(&from_top) {
            return Err(Error::tool(format!(
                "'{}' is a protected path: it matches the rule `{rule}` ({why}), so write and \
                 edit refuse it. Leave it unchanged, or tell the user what change it needs: \
                 only they can allow it (Workspace::allow_protected_writes or \
                 Workspace::with_protected_paths in the host program)",
                self.relative(&located.absolute)
            )));
        }
        Ok(())
    }

    /// Writes `content` to `path` whole, creating missing parent directories: into a new
    /// temporary file in the same directory, then renamed over the target, so a reader sees
    /// the old content or the new, never a mix. Every directory and the target are opened
    /// beneath the root; protected paths, directories, special files and files with more
    /// than one hard link are refused. A replaced file keeps its permission bits.
    pub(crate) fn write_file(&self, path: &str, content: &[u8]) -> Result<Written, Error> {
        let located = self.locate(path)?;
        let shown = self.relative(&located.absolute);
        self.check_protection(&located)?;
        let Some(name) = located.relative.file_name() else {
            return Err(Error::tool(format!(
                "'{shown}' is the workspace root directory; give the path of a file"
            )));
        };
        let parent_relative = located.relative.parent().unwrap_or(Path::new(""));
        let parent = self.create_dirs(parent_relative, &shown)?;

        let (created, mode) = match rustix::fs::statat(&parent, name, AtFlags::SYMLINK_NOFOLLOW) {
            Err(rustix::io::Errno::NOENT) => (true, Mode::from_raw_mode(0o666)),
            Err(error) => {
                return Err(super::fs::io_tool("write", &shown, &error.into()));
            }
            Ok(stat) => match FileType::from_raw_mode(stat.st_mode) {
                FileType::RegularFile if stat.st_nlink > 1 => {
                    #[allow(clippy::unnecessary_cast)] // `nlink_t` is 32 bits on some targets
                    return Err(hard_linked(&shown, stat.st_nlink as u64));
                }
                FileType::RegularFile => (false, Mode::from_raw_mode(stat.st_mode & 0o777)),
                FileType::Directory => {
                    return Err(Error::tool(format!(
                        "'{shown}' is a directory; give the path of a file"
                    )));
                }
                FileType::Symlink => return Err(changed_under(&shown)),
                other => return Err(not_regular(&shown, kind_name(other))),
            },
        };

        let temporary = format!(
            ".subtask-write-{}-{}.tmp",
            std::process::id(),
            TEMPORARY_FILES.fetch_add(1, Ordering::Relaxed)
        );
        let fd = rustix::fs::openat(
            &parent,
            temporary.as_str(),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            mode,
        )
        .map_err(|error| super::fs::io_tool("write", &shown, &error.into()))?;
        // From here until the rename, the temporary file is removed on every way out,
        // unwinding included.
        let mut cleanup = RemoveOnDrop {
            directory: &parent,
            name: &temporary,
            armed: true,
        };
        if !created {
            // The umask may have narrowed `mode` at creation.
            rustix::fs::fchmod(&fd, mode)
                .map_err(|error| super::fs::io_tool("write", &shown, &error.into()))?;
        }
        let mut file = File::from(fd);
        file.write_all(content)
            .map_err(|error| super::fs::io_tool("write", &shown, &error))?;
        drop(file);
        rustix::fs::renameat(&parent, temporary.as_str(), &parent, name)
            .map_err(|error| super::fs::io_tool("write", &shown, &error.into()))?;
        cleanup.armed = false;
        Ok(Written { shown, created })
    }

    /// Opens (creating what is missing) the directory `relative` beneath the root, each
    /// level opened beneath the root again after it is made.
    fn create_dirs(&self, relative: &Path, shown: &str) -> Result<OwnedFd, Error> {
        let open = |prefix: &Path| {
            self.dir
                .open(prefix, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty())
        };
        let cannot_create = |prefix: &Path, error: &io::Error| {
            Error::tool(format!(
                "cannot create the directory '{}' for '{shown}': {error}",
                self.relative(&self.root.join(prefix))
            ))
        };
        let mut parent = open(Path::new(""))
            .map_err(|error| Error::tool(format!("cannot open the workspace root: {error}")))?;
        let mut prefix = PathBuf::new();
        for component in relative.components() {
            prefix.push(component);
            parent = match open(&prefix) {
                Ok(fd) => fd,
                Err(error) if error.kind() == io::ErrorKind::NotFound => {
                    let name = prefix.file_name().unwrap_or_default();
                    match rustix::fs::mkdirat(&parent, name, Mode::from_raw_mode(0o777)) {
                        Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                        Err(error) => return Err(cannot_create(&prefix, &error.into())),
                    }
                    open(&prefix).map_err(|error| {
                        self.open_error("create the directory for", shown, &error)
                    })?
                }
                Err(error) => {
                    return Err(if is_symlink_refusal(&error) {
                        changed_under(shown)
                    } else {
                        cannot_create(&prefix, &error)
                    });
                }
            };
        }
        Ok(parent)
    }

    /// The tool error for a failed open of `shown`.
    fn open_error(&self, action: &str, shown: &str, error: &io::Error) -> Error {
        if error.kind() == io::ErrorKind::NotFound {
            Error::tool(format!(
                "there is no file or directory at '{shown}' (paths are relative to the \
                 workspace root; use ls or glob to find it)"
            ))
        } else if is_symlink_refusal(error) {
            changed_under(shown)
        } else {
            super::fs::io_tool(action, shown, error)
        }
    }
}

impl PartialEq for Workspace {
    fn eq(&self, other: &Workspace) -> bool {
        self.root == other.root
            && self.within == other.within
            && self.protection == other.protection
    }
}

impl Eq for Workspace {}

impl Hash for Workspace {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.root.hash(state);
    }
}

/// Removes a temporary file unless disarmed (after the rename that made it the target).
struct RemoveOnDrop<'a> {
    directory: &'a OwnedFd,
    name: &'a str,
    armed: bool,
}

impl Drop for RemoveOnDrop<'_> {
    fn drop(&mut self) {
        if self.armed {
            let _ = rustix::fs::unlinkat(self.directory.as_fd(), self.name, AtFlags::empty());
        }
    }
}

/// `fd` as a file with its metadata if it is a regular file (blocking mode restored) or a
/// directory; any other kind is refused.
fn regular_or_directory(fd: OwnedFd, shown: &str) -> Result<(File, Metadata), Error> {
    let file = File::from(fd);
    let metadata = file
        .metadata()
        .map_err(|error| super::fs::io_tool("inspect", shown, &error))?;
    if metadata.is_file() {
        let flags = rustix::fs::fcntl_getfl(&file)
            .map_err(|error| super::fs::io_tool("open", shown, &error.into()))?;
        rustix::fs::fcntl_setfl(&file, flags - OFlags::NONBLOCK)
            .map_err(|error| super::fs::io_tool("open", shown, &error.into()))?;
        return Ok((file, metadata));
    }
    if metadata.is_dir() {
        return Ok((file, metadata));
    }
    let kind = metadata.file_type();
    let name = if kind.is_fifo() {
        "a named pipe (FIFO)"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else {
        "not a file or directory"
    };
    Err(not_regular(shown, name))
}

fn kind_name(kind: FileType) -> &'static str {
    match kind {
        FileType::Fifo => "a named pipe (FIFO)",
        FileType::Socket => "a socket",
        FileType::CharacterDevice => "a character device",
        FileType::BlockDevice => "a block device",
        _ => "not a file or directory",
    }
}

fn not_regular(shown: &str, kind: &str) -> Error {
    Error::tool(format!(
        "'{shown}' is {kind}, not a regular file; file tools read and write only regular \
         files and directories"
    ))
}

fn hard_linked(shown: &str, links: u64) -> Error {
    Error::tool(format!(
        "'{shown}' has {links} hard links, so changing it could change a file outside the \
         workspace; write and edit refuse files with more than one link (write a new file \
         instead, or ask the user)"
    ))
}

fn changed_under(shown: &str) -> Error {
    Error::tool(format!(
        "'{shown}' could not be opened inside the workspace: a symlink appeared on the way \
         while it was being opened, so the workspace changed during the call; nothing outside \
         was touched. Check the path with ls and try again"
    ))
}

/// `ELOOP` (a symlink where `RESOLVE_NO_SYMLINKS`/`O_NOFOLLOW` allow none) or `EXDEV`
/// (resolution would leave the root).
fn is_symlink_refusal(error: &io::Error) -> bool {
    matches!(
        rustix::io::Errno::from_io_error(error),
        Some(rustix::io::Errno::LOOP | rustix::io::Errno::XDEV)
    )
}

/// Refuses a file with more than one hard link for writing.
pub(crate) fn check_single_link(metadata: &Metadata, shown: &str) -> Result<(), Error> {
    if metadata.nlink() > 1 {
        return Err(hard_linked(shown, metadata.nlink()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> TempDir {
            let dir = std::env::temp_dir().join(format!(
                "subtask-ws-{name}-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn setup(name: &str) -> (TempDir, TempDir, Workspace) {
        let root = TempDir::new(&format!("{name}-root"));
        let outside = TempDir::new(&format!("{name}-outside"));
        fs::create_dir_all(root.0.join("src")).unwrap();
        fs::write(root.0.join("src/lib.rs"), "fn main() {}").unwrap();
        fs::write(outside.0.join("secret.txt"), "secret").unwrap();
        let workspace = Workspace::new(&root.0).unwrap();
        (root, outside, workspace)
    }

    fn refused(workspace: &Workspace, path: &str) -> String {
        let error = workspace.resolve(path).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Tool, "{error}");
        error.to_string()
    }

    #[test]
    fn paths_inside_resolve_existing_or_not() {
        let (_root, _outside, workspace) = setup("inside");
        let root = workspace.root().to_path_buf();
        assert_eq!(
            workspace.resolve("src/lib.rs").unwrap(),
            root.join("src/lib.rs")
        );
        assert_eq!(
            workspace.resolve("./src/../src/lib.rs").unwrap(),
            root.join("src/lib.rs")
        );
        assert_eq!(
            workspace.resolve("new/dir/file.txt").unwrap(),
            root.join("new/dir/file.txt")
        );
        assert_eq!(workspace.resolve(".").unwrap(), root);
        let absolute = root.join("src").display().to_string();
        assert_eq!(workspace.resolve(&absolute).unwrap(), root.join("src"));
        assert_eq!(workspace.relative(&root.join("src/lib.rs")), "src/lib.rs");
    }

    #[test]
    fn dot_dot_escapes_are_refused() {
        let (_root, _outside, workspace) = setup("dotdot");
        assert!(refused(&workspace, "..").contains("outside the workspace"));
        refused(&workspace, "../secret.txt");
        refused(&workspace, "src/../../x");
        refused(&workspace, "missing/../../x");
    }

    #[test]
    fn absolute_paths_outside_are_refused() {
        let (_root, outside, workspace) = setup("absolute");
        refused(&workspace, "/etc/passwd");
        refused(
            &workspace,
            &outside.0.join("secret.txt").display().to_string(),
        );
    }

    #[test]
    fn symlinks_that_escape_are_refused() {
        let (root, outside, workspace) = setup("symlink");
        std::os::unix::fs::symlink(&outside.0, root.0.join("door")).unwrap();
        std::os::unix::fs::symlink(outside.0.join("secret.txt"), root.0.join("link.txt")).unwrap();
        std::os::unix::fs::symlink(outside.0.join("nothing"), root.0.join("dangling")).unwrap();
        std::os::unix::fs::symlink(root.0.join("src"), root.0.join("inner")).unwrap();
        refused(&workspace, "door/secret.txt");
        refused(&workspace, "door/new.txt");
        refused(&workspace, "link.txt");
        assert!(refused(&workspace, "dangling").contains("does not exist"));
        // A symlink that stays inside is fine.
        assert_eq!(
            workspace.resolve("inner/lib.rs").unwrap(),
            workspace.root().join("src/lib.rs")
        );
    }

    #[test]
    fn writes_and_reads_open_beneath_the_root_with_either_method() {
        use super::super::beneath::Method;
        use std::io::Read;
        use std::os::unix::fs::PermissionsExt;
        let (root, outside, workspace) = setup("methods");
        std::os::unix::fs::symlink(&outside.0, root.0.join("door")).unwrap();
        for method in [Method::Openat2, Method::ComponentWise] {
            let workspace = workspace.with_method(method);
            let path = format!("{method:?}/deep/new.txt");
            let written = workspace.write_file(&path, b"one").unwrap();
            assert!(written.created);
            assert_eq!(written.shown, path);
            fs::set_permissions(root.0.join(&path), fs::Permissions::from_mode(0o751)).unwrap();
            assert!(!workspace.write_file(&path, b"two").unwrap().created);
            let mode = fs::metadata(root.0.join(&path))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o751, "{method:?}: the mode is kept");
            let mut opened = workspace.open_read(&path).unwrap();
            let mut text = String::new();
            opened.file.read_to_string(&mut text).unwrap();
            assert_eq!(text, "two");
            // No temporary file is left beside it.
            let names: Vec<_> = fs::read_dir(root.0.join(format!("{method:?}/deep")))
                .unwrap()
                .map(|entry| entry.unwrap().file_name())
                .collect();
            assert_eq!(names, ["new.txt"], "{method:?}");
            let error = workspace.write_file("door/x.txt", b"x").unwrap_err();
            assert!(
                error.to_string().contains("outside the workspace"),
                "{error}"
            );
            let sub = workspace.subdirectory(&format!("{method:?}")).unwrap();
            assert!(sub.open_read("deep/new.txt").unwrap().metadata.is_file());
            assert!(sub.write_file("../escape.txt", b"x").is_err());
            assert!(sub.stat_walked(&sub.root().join("deep/new.txt")).is_some());
            assert!(workspace.stat_walked(&root.0.join("door")).is_none());
        }
        assert!(!outside.0.join("x.txt").exists());
        assert!(!root.0.join("escape.txt").exists());
    }

    #[test]
    fn an_empty_path_or_a_missing_root_is_an_error() {
        let (_root, _outside, workspace) = setup("empty");
        refused(&workspace, " ");
        let error = Workspace::new("/no/such/dir/anywhere").unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Config);
    }
}
