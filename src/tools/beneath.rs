//! Opening paths beneath a directory with the kernel's help, so that nothing done to the
//! filesystem between a path check and the open (a directory swapped for a symlink, a
//! `renameat2(RENAME_EXCHANGE)`) can lead an open outside.
//!
//! [`RootDir`] holds a file descriptor of the workspace root, and every open is relative to
//! it:
//!
//! - on Linux 5.6 and later, one `openat2` call with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`
//!   (which implies `RESOLVE_NO_MAGICLINKS`): the kernel refuses any resolution that would
//!   leave the root, and any symlink at all, atomically with the open;
//! - where `openat2` is missing (`ENOSYS` on older kernels, `EPERM` under some seccomp
//!   filters, other systems), component by component: `openat` of each directory with
//!   `O_NOFOLLOW | O_DIRECTORY` from the one before, then of the last component with
//!   `O_NOFOLLOW`. Paths given here contain only normal components (no `..`, no `.`), so
//!   that walk cannot climb, and `O_NOFOLLOW` refuses a symlink at each step.
//!
//! Paths handed to [`RootDir::open`] are the workspace's canonical relative paths:
//! [`Workspace`](super::Workspace) resolves symlinks that stay inside before it opens, so a
//! symlink found at open time means the tree changed under the call, and the open fails
//! (`ELOOP`/`EXDEV`) instead of following it.
//!
//! No `unsafe` here: rustix wraps every call.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path};

use rustix::fs::{Mode, OFlags};

/// How [`RootDir`] opens beneath the root on this system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    /// One `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` call per open.
    Openat2,
    /// `openat(O_NOFOLLOW)` one component at a time.
    ComponentWise,
}

/// A directory file descriptor that every open is made beneath.
#[derive(Debug)]
pub(crate) struct RootDir {
    fd: OwnedFd,
    method: Method,
}

/// How often an `openat2` that failed with `EAGAIN` (a concurrent rename or mount during
/// resolution) is retried before the error is returned.
const EAGAIN_RETRIES: usize = 8;

impl RootDir {
    /// Opens `root` (an absolute, canonical directory path) and picks the open method.
    pub(crate) fn open_root(root: &Path) -> io::Result<RootDir> {
        let fd = rustix::fs::open(
            root,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let method = probe(fd.as_fd());
        Ok(RootDir { fd, method })
    }

    /// A root from a directory already opened beneath another (for a subdirectory
    /// workspace), with the same method.
    pub(crate) fn from_fd(fd: OwnedFd, method: Method) -> RootDir {
        RootDir { fd, method }
    }

    /// The method in use.
    pub(crate) fn method(&self) -> Method {
        self.method
    }

    /// The same root, opened the other way (tests cover both paths on one kernel).
    #[cfg(test)]
    pub(crate) fn with_method(&self, method: Method) -> io::Result<RootDir> {
        Ok(RootDir {
            fd: self.fd.try_clone()?,
            method,
        })
    }

    /// Opens `relative` beneath the root with `flags` (`O_CLOEXEC`, and `O_NOCTTY` unless
    /// `O_PATH`, are added).
    ///
    /// `relative` must consist of normal components only; an empty path opens the root
    /// itself. A symlink anywhere on the way fails with `ELOOP` (or `EXDEV` when it would
    /// leave the root); anything else is the open's own error.
    pub(crate) fn open(&self, relative: &Path, flags: OFlags, mode: Mode) -> io::Result<OwnedFd> {
        if relative
            .components()
            .any(|component| !matches!(component, Component::Normal(_)))
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "only plain names may be opened beneath the root",
            ));
        }
        // openat2 refuses O_PATH with anything but O_CLOEXEC, O_DIRECTORY and O_NOFOLLOW.
        #[cfg(any(target_os = "linux", target_os = "android"))]
        let flags = if flags.contains(OFlags::PATH) {
            flags | OFlags::CLOEXEC
        } else {
            flags | OFlags::CLOEXEC | OFlags::NOCTTY
        };
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        let flags = flags | OFlags::CLOEXEC | OFlags::NOCTTY;
        let relative = if relative.as_os_str().is_empty() {
            Path::new(".")
        } else {
            relative
        };
        match self.method {
            Method::Openat2 => openat2_beneath(self.fd.as_fd(), relative, flags, mode),
            Method::ComponentWise => component_wise(self.fd.as_fd(), relative, flags, mode),
        }
    }
}

/// Whether `openat2` works here: `ENOSYS` (kernel before 5.6) and `EPERM` (a seccomp
/// filter that does not know it) mean it does not.
fn probe(root: BorrowedFd<'_>) -> Method {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        match openat2_beneath(
            root,
            Path::new("."),
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Err(error)
                if matches!(
                    rustix::io::Errno::from_io_error(&error),
                    Some(rustix::io::Errno::NOSYS | rustix::io::Errno::PERM)
                ) =>
            {
                log::info!(
                    "openat2 is not available ({error}); file tools open paths one component \
                     at a time with O_NOFOLLOW"
                );
                Method::ComponentWise
            }
            _ => Method::Openat2,
        }
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = root;
        Method::ComponentWise
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn openat2_beneath(
    root: BorrowedFd<'_>,
    relative: &Path,
    flags: OFlags,
    mode: Mode,
) -> io::Result<OwnedFd> {
    use rustix::fs::ResolveFlags;
    let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
    let mut attempts = 0;
    loop {
        match rustix::fs::openat2(root, relative, flags, mode, resolve) {
            Err(rustix::io::Errno::AGAIN) if attempts < EAGAIN_RETRIES => attempts += 1,
            result => return result.map_err(io::Error::from),
        }
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn openat2_beneath(
    root: BorrowedFd<'_>,
    relative: &Path,
    flags: OFlags,
    mode: Mode,
) -> io::Result<OwnedFd> {
    component_wise(root, relative, flags, mode)
}

/// `openat` one component at a time, never following a symlink, never climbing.
fn component_wise(
    root: BorrowedFd<'_>,
    relative: &Path,
    flags: OFlags,
    mode: Mode,
) -> io::Result<OwnedFd> {
    let mut names: Vec<_> = relative
        .components()
        .filter_map(|component| match component {
            Component::Normal(name) => Some(name),
            _ => None,
        })
        .collect();
    let Some(last) = names.pop() else {
        // "." (the root itself).
        return Ok(rustix::fs::openat(root, ".", flags, mode)?);
    };
    let mut current: Option<OwnedFd> = None;
    for name in names {
        let at = current.as_ref().map_or(root, |fd| fd.as_fd());
        let next = rustix::fs::openat(
            at,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|error| symlink_as_loop(at, name, error))?;
        current = Some(next);
    }
    let at = current.as_ref().map_or(root, |fd| fd.as_fd());
    rustix::fs::openat(at, last, flags | OFlags::NOFOLLOW, mode)
        .map_err(|error| symlink_as_loop(at, last, error))
}

/// `O_DIRECTORY | O_NOFOLLOW` on a symlink fails with `ENOTDIR`; report it as the symlink
/// refusal it is (`ELOOP`), as openat2 does.
fn symlink_as_loop(at: BorrowedFd<'_>, name: &OsStr, error: rustix::io::Errno) -> io::Error {
    use rustix::fs::{AtFlags, FileType};
    let symlink = error == rustix::io::Errno::NOTDIR
        && rustix::fs::statat(at, name, AtFlags::SYMLINK_NOFOLLOW)
            .is_ok_and(|stat| FileType::from_raw_mode(stat.st_mode) == FileType::Symlink);
    if symlink {
        rustix::io::Errno::LOOP.into()
    } else {
        error.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "subtask-beneath-{name}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("root/sub")).unwrap();
        std::fs::create_dir_all(dir.join("outside")).unwrap();
        std::fs::write(dir.join("root/sub/file.txt"), "inside").unwrap();
        std::fs::write(dir.join("outside/secret.txt"), "secret").unwrap();
        std::os::unix::fs::symlink(dir.join("outside"), dir.join("root/door")).unwrap();
        std::os::unix::fs::symlink("sub", dir.join("root/inner")).unwrap();
        dir
    }

    fn both(root: &RootDir) -> [RootDir; 2] {
        [
            root.with_method(Method::Openat2).unwrap(),
            root.with_method(Method::ComponentWise).unwrap(),
        ]
    }

    #[test]
    fn opens_plain_paths_and_refuses_every_symlink_and_climb() {
        let dir = scratch("plain");
        let root = RootDir::open_root(&dir.join("root")).unwrap();
        #[cfg(target_os = "linux")]
        assert_eq!(root.method(), Method::Openat2, "this kernel has openat2");
        for root in both(&root) {
            let file = root
                .open(Path::new("sub/file.txt"), OFlags::RDONLY, Mode::empty())
                .unwrap();
            assert_eq!(
                std::io::read_to_string(std::fs::File::from(file)).unwrap(),
                "inside"
            );
            root.open(Path::new(""), OFlags::RDONLY, Mode::empty())
                .unwrap();
            for refused in ["door/secret.txt", "inner/file.txt", "door"] {
                let error = root
                    .open(Path::new(refused), OFlags::RDONLY, Mode::empty())
                    .unwrap_err();
                let errno = rustix::io::Errno::from_io_error(&error);
                assert!(
                    matches!(
                        errno,
                        Some(rustix::io::Errno::LOOP | rustix::io::Errno::XDEV)
                    ),
                    "{refused} ({:?}): {error}",
                    root.method()
                );
            }
            for climbing in [
                "../outside/secret.txt",
                "/etc/passwd",
                "sub/../sub/file.txt",
            ] {
                let error = root
                    .open(Path::new(climbing), OFlags::RDONLY, Mode::empty())
                    .unwrap_err();
                assert_eq!(error.kind(), io::ErrorKind::InvalidInput, "{climbing}");
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
