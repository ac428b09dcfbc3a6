//! The Linux sandbox: a Landlock ruleset and namespaces, set up in the parent as far as
//! anything allocates, and entered by raw syscalls between fork and exec.
//!
//! This is the one module besides `src/ffi.rs` allowed `unsafe`: `pre_exec` is unsafe by
//! nature (the closure runs in a forked copy of a multithreaded process), and the syscalls
//! it makes (`unshare`, `landlock_restrict_self`, `fork`, `waitpid`, `close_range`) have no
//! async-signal-safe wrapper in a safe crate. Every block says why it is sound.

#![allow(unsafe_code)]

use std::ffi::CStr;
use std::fs::DirBuilder;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use landlock::{
    ABI, Access, AccessFs, CompatLevel, Compatible, PathBeneath, PathFd, Ruleset, RulesetAttr,
    RulesetCreatedAttr, Scope, path_beneath_rules,
};

use super::{Facility, Network, Sandbox, missing, policy};
use crate::error::Error;

/// The newest Landlock ABI whose rights this module asks for (best effort above V1).
const BEST_ABI: ABI = ABI::V6;

/// Whether Landlock and user namespaces are there (checked once per process).
pub(super) fn check_support() -> Result<(), Error> {
    static SUPPORT: OnceLock<Result<(), (Facility, String)>> = OnceLock::new();
    let support = SUPPORT.get_or_init(|| {
        if read_sysctl("/proc/sys/user/max_user_namespaces").as_deref() == Some("0") {
            return Err((
                Facility::UserNamespaces,
                "user.max_user_namespaces is 0".to_string(),
            ));
        }
        if read_sysctl("/proc/sys/kernel/unprivileged_userns_clone").as_deref() == Some("0")
            && !rustix::process::geteuid().is_root()
        {
            return Err((
                Facility::UserNamespaces,
                "kernel.unprivileged_userns_clone is 0".to_string(),
            ));
        }
        Ruleset::default()
            .set_compatibility(CompatLevel::HardRequirement)
            .handle_access(AccessFs::from_all(ABI::V1))
            .and_then(|ruleset| ruleset.create())
            .map(drop)
            .map_err(|error| (Facility::Landlock, error.to_string()))
    });
    support
        .clone()
        .map_err(|(facility, detail)| missing(facility, &detail))
}

fn read_sysctl(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|text| text.trim().to_string())
}

/// What one confined command holds in the parent: the ruleset and the step pipe until it
/// is spawned, and its private temporary directory until it ends (dropped).
pub(super) struct Confinement {
    /// The Landlock ruleset the child restricts itself with; closed once spawned.
    ruleset: Option<OwnedFd>,
    /// The child writes the number of the [`Step`] that failed here, before it exits.
    step_reader: OwnedFd,
    step_writer: Option<OwnedFd>,
    /// C writes the host pid of the namespace's init (G) here once it forked it.
    init_reader: OwnedFd,
    init_writer: Option<OwnedFd>,
    /// A pidfd of G, once spawned: G ends only after every process of the namespace.
    init: Option<OwnedFd>,
    /// `$HOME` and `$TMPDIR` of the command (0700), removed with everything in it on drop.
    private_dir: PathBuf,
}

impl Confinement {
    /// Prepares `command` (`bash -c …` in `workspace`) to run confined as `sandbox` says.
    pub(super) fn new(
        sandbox: &Sandbox,
        workspace: &Path,
        command: &mut Command,
    ) -> Result<Confinement, Error> {
        host_not_dumpable();
        let (step_reader, step_writer) = rustix::pipe::pipe_with(
            rustix::pipe::PipeFlags::CLOEXEC | rustix::pipe::PipeFlags::NONBLOCK,
        )
        .map_err(|error| Error::tool(format!("bash could not be started: pipe: {error}")))?;
        let (init_reader, init_writer) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
            .map_err(|error| Error::tool(format!("bash could not be started: pipe: {error}")))?;
        // From here on, a failure drops `confinement`, which removes the directory.
        let mut confinement = Confinement {
            ruleset: None,
            step_reader,
            step_writer: None,
            init_reader,
            init_writer: None,
            init: None,
            private_dir: private_dir()?,
        };
        let ruleset = ruleset(sandbox, workspace, &confinement.private_dir)?;
        policy::confined_env(command, &sandbox.pass_env, &confinement.private_dir);
        let uid = rustix::process::getuid().as_raw();
        let gid = rustix::process::getgid().as_raw();
        let plan = Plan {
            ruleset: ruleset.as_raw_fd(),
            proc_access: (AccessFs::ReadFile | AccessFs::ReadDir).bits(),
            step: step_writer.as_raw_fd(),
            init_pid: init_writer.as_raw_fd(),
            uid_map: format!("{uid} {uid} 1\n").into_bytes(),
            gid_map: format!("{gid} {gid} 1\n").into_bytes(),
            new_network: sandbox.network == Network::Off,
        };
        confinement.ruleset = Some(ruleset);
        confinement.step_writer = Some(step_writer);
        confinement.init_writer = Some(init_writer);
        // SAFETY: `enter` makes only async-signal-safe calls (raw syscalls through libc, no
        // allocation, no lock) on data prepared here, and the fds it uses (`plan.ruleset`,
        // `plan.step`) stay open in the parent until `spawned`, after the spawn returned.
        unsafe {
            command.pre_exec(move || enter(&plan));
        }
        Ok(confinement)
    }

    /// Closes what only the spawn needed, and opens a pidfd of the namespace's init.
    pub(super) fn spawned(&mut self) {
        self.ruleset = None;
        self.step_writer = None;
        if self.init_writer.take().is_none() {
            return;
        }
        // C writes the pid right after its fork; EOF (no pid) only if C died first, and then
        // G dies too (PR_SET_PDEATHSIG).
        let mut bytes = [0u8; 4];
        let mut filled = 0;
        while filled < bytes.len() {
            match rustix::io::read(&self.init_reader, &mut bytes[filled..]) {
                Ok(0) => return,
                Ok(read) => filled += read,
                Err(rustix::io::Errno::INTR) => {}
                Err(_) => return,
            }
        }
        self.init = rustix::process::Pid::from_raw(i32::from_ne_bytes(bytes)).and_then(|pid| {
            rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).ok()
        });
    }

    /// Kills the namespace's init (a no-op when it has ended) and waits until it is gone,
    /// which the kernel allows only once every process of the namespace is.
    pub(super) fn end_namespace(&mut self) {
        let Some(init) = self.init.take() else {
            return;
        };
        let _ = rustix::process::pidfd_send_signal(&init, rustix::process::Signal::KILL);
        loop {
            let mut fds = [rustix::event::PollFd::new(
                &init,
                rustix::event::PollFlags::IN,
            )];
            match rustix::event::poll(&mut fds, None) {
                Err(rustix::io::Errno::INTR) => {}
                _ => return,
            }
        }
    }

    /// The error for a spawn that failed: names the sandbox step that failed, if one did.
    pub(super) fn spawn_error(&mut self, error: io::Error) -> Error {
        self.spawned();
        let mut byte = [0u8; 1];
        let step = match rustix::io::read(&self.step_reader, &mut byte) {
            Ok(1) => Step::from_byte(byte[0]),
            _ => None,
        };
        let Some(step) = step else {
            return Error::tool(format!("bash could not be started: {error}"));
        };
        let errno = error.raw_os_error().unwrap_or(0);
        let refused = matches!(
            errno,
            libc::EPERM
                | libc::EACCES
                | libc::EINVAL
                | libc::ENOSPC
                | libc::ENOSYS
                | libc::EUSERS
                | libc::EOPNOTSUPP
        );
        match step {
            Step::Namespaces | Step::IdMaps if refused => missing(
                Facility::UserNamespaces,
                &format!("{} failed: {error}", step.describe()),
            ),
            Step::Landlock if refused => missing(
                Facility::Landlock,
                &format!("{} failed: {error}", step.describe()),
            ),
            _ => Error::tool(format!(
                "bash could not be started: the sandbox step '{}' failed: {error}; try again",
                step.describe()
            )),
        }
    }
}

impl Drop for Confinement {
    fn drop(&mut self) {
        if let Err(error) = std::fs::remove_dir_all(&self.private_dir) {
            log::warn!(
                "the sandbox directory {} was not removed: {error}",
                self.private_dir.display()
            );
        }
    }
}

/// Makes the host process not dumpable, once: its `/proc/<pid>/{environ,mem,fd}` then
/// belong to root, and no core dump holds its keys.
fn host_not_dumpable() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        if let Err(error) =
            rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
        {
            log::warn!("the process could not be made non-dumpable: {error}");
        }
    });
}

/// A new private directory (0700) under the system's temporary directory.
fn private_dir() -> Result<PathBuf, Error> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let base = std::env::temp_dir();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.subsec_nanos())
        .unwrap_or(0);
    let mut last_error = None;
    for _ in 0..8 {
        let path = base.join(format!(
            "subtask-sandbox-{}-{}-{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        match DirBuilder::new().mode(0o700).create(&path) {
            Ok(()) => return Ok(path.canonicalize().unwrap_or(path)),
            Err(error) => last_error = Some(error),
        }
    }
    Err(Error::tool(format!(
        "bash could not be started: cannot create a private directory in {}: {}",
        base.display(),
        last_error.map_or_else(String::new, |error| error.to_string())
    )))
}

/// The Landlock ruleset of one command: Landlock's V1 filesystem rights are required (the
/// creation fails without them), newer rights and scopes are used where the kernel has them.
fn ruleset(sandbox: &Sandbox, workspace: &Path, private_dir: &Path) -> Result<OwnedFd, Error> {
    let landlock_error =
        |error: landlock::RulesetError| missing(Facility::Landlock, &error.to_string());
    let read = AccessFs::from_read(BEST_ABI);
    let kernel_views = AccessFs::ReadFile | AccessFs::ReadDir;
    let write = AccessFs::from_all(BEST_ABI);
    let devices =
        AccessFs::ReadFile | AccessFs::WriteFile | AccessFs::Truncate | AccessFs::IoctlDev;
    let created = Ruleset::default()
        .set_compatibility(CompatLevel::HardRequirement)
        .handle_access(AccessFs::from_all(ABI::V1))
        .and_then(|ruleset| {
            ruleset
                .set_compatibility(CompatLevel::BestEffort)
                .handle_access(AccessFs::from_all(BEST_ABI))
        })
        .and_then(|ruleset| ruleset.scope(Scope::from_all(BEST_ABI)))
        .and_then(|ruleset| ruleset.create())
        .and_then(|ruleset| ruleset.add_rules(path_beneath_rules(policy::SYSTEM_PATHS, read)))
        .and_then(|ruleset| ruleset.add_rules(path_beneath_rules(policy::etc_entries(), read)))
        .and_then(|ruleset| ruleset.add_rules(path_beneath_rules(&sandbox.read_paths, read)))
        .and_then(|ruleset| {
            ruleset.add_rules(path_beneath_rules(policy::KERNEL_PATHS, kernel_views))
        })
        .and_then(|ruleset| ruleset.add_rules(path_beneath_rules(policy::DEVICES, devices)))
        .and_then(|ruleset| ruleset.add_rules(path_beneath_rules(&sandbox.write_paths, write)))
        .map_err(landlock_error)?;
    // The workspace and the private directory must be there: opened here, not skipped.
    let mut created = created;
    for path in [workspace, private_dir] {
        let fd = PathFd::new(path).map_err(|error| {
            Error::tool(format!(
                "bash could not be started: cannot open {} for the sandbox: {error}",
                path.display()
            ))
        })?;
        created = created
            .add_rule(PathBeneath::new(fd, write))
            .map_err(landlock_error)?;
    }
    let fd: Option<OwnedFd> = created.into();
    fd.ok_or_else(|| missing(Facility::Landlock, "the kernel does not enforce it"))
}

/// A step of [`enter`]; its number is what a failing child writes to the step pipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Step {
    Signals = 1,
    Namespaces,
    IdMaps,
    Loopback,
    NoNewPrivs,
    Landlock,
    Fork,
    Init,
}

impl Step {
    fn from_byte(byte: u8) -> Option<Step> {
        [
            Step::Signals,
            Step::Namespaces,
            Step::IdMaps,
            Step::Loopback,
            Step::NoNewPrivs,
            Step::Landlock,
            Step::Fork,
            Step::Init,
        ]
        .into_iter()
        .find(|step| *step as u8 == byte)
    }

    fn describe(self) -> &'static str {
        match self {
            Step::Signals => "resetting signal handlers",
            Step::Namespaces => "creating the user, PID, mount and network namespaces",
            Step::IdMaps => "writing the user namespace's uid/gid maps",
            Step::Loopback => "bringing up the loopback interface",
            Step::NoNewPrivs => "setting no_new_privs",
            Step::Landlock => "entering the Landlock domain (landlock_restrict_self)",
            Step::Fork => "starting the PID namespace's init (fork)",
            Step::Init => "starting bash under the PID namespace's init",
        }
    }
}

/// Everything the child needs, prepared (and allocated) by the parent.
struct Plan {
    ruleset: RawFd,
    /// The rights on the namespace's own `/proc` (read files and directories).
    proc_access: u64,
    step: RawFd,
    init_pid: RawFd,
    uid_map: Vec<u8>,
    gid_map: Vec<u8>,
    new_network: bool,
}

/// Runs in the forked child (C) between fork and exec: async-signal-safe calls only.
/// Returns in B (the future bash) alone; C and G never return.
fn enter(plan: &Plan) -> io::Result<()> {
    reset_signals().map_err(|error| fail(plan, Step::Signals, error))?;
    // Dumpable while the maps are written: a non-dumpable process's /proc/self files
    // belong to root, and an unprivileged user could not write its own maps.
    // SAFETY: prctl with integer arguments only.
    syscall_result(unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 1, 0, 0, 0) })
        .map_err(|error| fail(plan, Step::IdMaps, error))?;
    let mut flags = libc::CLONE_NEWUSER | libc::CLONE_NEWPID | libc::CLONE_NEWNS;
    if plan.new_network {
        flags |= libc::CLONE_NEWNET;
    }
    // SAFETY: unshare with flags only; the child is single-threaded, as CLONE_NEWUSER needs.
    syscall_result(unsafe { libc::unshare(flags) })
        .map_err(|error| fail(plan, Step::Namespaces, error))?;
    write_file(c"/proc/self/setgroups", b"deny")
        .and_then(|()| write_file(c"/proc/self/uid_map", &plan.uid_map))
        .and_then(|()| write_file(c"/proc/self/gid_map", &plan.gid_map))
        .map_err(|error| fail(plan, Step::IdMaps, error))?;
    // Not dumpable again: C and G hold a copy of the host's memory, which the command must
    // not read through /proc/<pid>/mem, and no core dump may hold it.
    // SAFETY: as above.
    syscall_result(unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) })
        .map_err(|error| fail(plan, Step::IdMaps, error))?;
    if plan.new_network {
        loopback_up().map_err(|error| fail(plan, Step::Loopback, error))?;
    }
    // The namespace's mounts stay its own (G mounts its /proc there).
    // SAFETY: mount with a static path and null strings, as mount(2) allows for MS_PRIVATE.
    syscall_result(unsafe {
        libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        )
    })
    .map_err(|error| fail(plan, Step::Namespaces, error))?;
    // SAFETY: prctl with integer arguments only.
    syscall_result(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) })
        .map_err(|error| fail(plan, Step::NoNewPrivs, error))?;

    // G reports B's wait status to C through this pipe.
    let mut status = [0 as libc::c_int; 2];
    // SAFETY: pipe2 writes two fds into the array it is given.
    syscall_result(unsafe { libc::pipe2(status.as_mut_ptr(), libc::O_CLOEXEC) })
        .map_err(|error| fail(plan, Step::Fork, error))?;
    let [status_reader, status_writer] = status;
    // SAFETY: fork in a single-threaded child; both sides go on with syscalls only.
    match unsafe { libc::fork() } {
        -1 => Err(fail(plan, Step::Fork, io::Error::last_os_error())),
        0 => init(plan, status_reader, status_writer),
        init_pid => {
            let bytes = init_pid.to_ne_bytes();
            // SAFETY: writes 4 bytes from a live array; a failure only costs the parent its
            // wait for the namespace's end.
            unsafe { libc::write(plan.init_pid, bytes.as_ptr().cast(), bytes.len()) };
            outer(init_pid, status_reader)
        }
    }
}

/// G, PID 1 of the new PID namespace: starts bash (returning, in B, so that std execs it),
/// then reaps every process until bash ends and reports bash's status.
fn init(plan: &Plan, status_reader: RawFd, status_writer: RawFd) -> io::Result<()> {
    // SAFETY: close and prctl on integers.
    unsafe { libc::close(status_reader) };
    // Killed with C: killing C's process group (or C alone) ends the namespace.
    syscall_result(unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) })
        .map_err(|error| fail(plan, Step::Init, error))?;
    mount_own_proc(plan);
    if plan.new_network {
        hide_run().map_err(|error| fail(plan, Step::Init, error))?;
    }
    // Landlock last: a Landlock domain may not mount. Applied here, in G, so that B and
    // every process after it are confined; C (the parent's waiter) runs only this code.
    // SAFETY: the raw syscall with the ruleset fd the parent keeps open and no flags.
    let restricted = unsafe { libc::syscall(libc::SYS_landlock_restrict_self, plan.ruleset, 0u32) };
    syscall_result(restricted as libc::c_int).map_err(|error| fail(plan, Step::Landlock, error))?;
    // SAFETY: fork in a single-threaded process, as above.
    let bash = match unsafe { libc::fork() } {
        -1 => return Err(fail(plan, Step::Init, io::Error::last_os_error())),
        0 => {
            // B: the status pipe closes on exec; std goes on to exec bash.
            return Ok(());
        }
        bash => bash,
    };
    // G keeps only the status pipe: std's exec-error pipe (which the parent reads to EOF),
    // the output pipe and the step pipe must close with B alone.
    close_all_but(status_writer);
    loop {
        let mut raw = 0;
        // SAFETY: waitpid writes the status into `raw`.
        let pid = unsafe { libc::waitpid(-1, &mut raw, 0) };
        if pid == bash {
            let bytes = raw.to_ne_bytes();
            // SAFETY: writes 4 bytes from a live array; then exits without unwinding.
            unsafe {
                libc::write(status_writer, bytes.as_ptr().cast(), bytes.len());
                libc::_exit(0)
            }
        }
        if pid == -1 && io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            // SAFETY: exits without unwinding.
            unsafe { libc::_exit(1) }
        }
    }
}

/// Mounts a `/proc` of the new PID namespace over the host's (in the new mount namespace),
/// so the command sees its own processes only — not the host's command lines — and lets
/// the ruleset read it. Where the kernel or a container forbids the mount, the host's
/// `/proc` stays, its sensitive entries still guarded by Landlock's ptrace scoping.
fn mount_own_proc(plan: &Plan) {
    // SAFETY: mount with static NUL-terminated strings; open of a static path; the raw
    // landlock_add_rule with a live, packed attribute struct; close of the fd opened here.
    unsafe {
        let mounted = libc::mount(
            c"proc".as_ptr(),
            c"/proc".as_ptr(),
            c"proc".as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            std::ptr::null(),
        );
        if mounted != 0 {
            return;
        }
        let proc = libc::open(c"/proc".as_ptr(), libc::O_PATH | libc::O_CLOEXEC);
        if proc < 0 {
            return;
        }
        let rule = PathBeneathAttr {
            allowed_access: plan.proc_access,
            parent_fd: proc,
        };
        libc::syscall(
            libc::SYS_landlock_add_rule,
            plan.ruleset,
            LANDLOCK_RULE_PATH_BENEATH,
            &rule as *const PathBeneathAttr,
            0u32,
        );
        libc::close(proc);
    }
}

/// Mounts an empty tmpfs over `/run` (in the new mount namespace): with the network off,
/// the host's Unix sockets there (`/run/docker.sock`, D-Bus, databases) must be out of
/// reach too, and Landlock (before ABI 8) does not check `connect` on a socket's path.
fn hide_run() -> io::Result<()> {
    // SAFETY: mount with static NUL-terminated strings.
    let mounted = unsafe {
        libc::mount(
            c"tmpfs".as_ptr(),
            c"/run".as_ptr(),
            c"tmpfs".as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            c"mode=0755,size=64k".as_ptr().cast(),
        )
    };
    match syscall_result(mounted) {
        Err(error) if error.raw_os_error() == Some(libc::ENOENT) => Ok(()),
        other => other,
    }
}

/// `struct landlock_path_beneath_attr` of `<linux/landlock.h>` (packed).
#[repr(C, packed)]
struct PathBeneathAttr {
    allowed_access: u64,
    parent_fd: i32,
}

/// `LANDLOCK_RULE_PATH_BENEATH` of `<linux/landlock.h>`.
const LANDLOCK_RULE_PATH_BENEATH: libc::c_int = 1;

/// C, outside the PID namespace: waits for G (which ends after bash and, by the kernel,
/// after every process of the namespace), then exits as bash did.
fn outer(init_pid: libc::pid_t, status_reader: RawFd) -> ! {
    close_all_but(status_reader);
    loop {
        let mut raw = 0;
        // SAFETY: waitpid writes the status into `raw`.
        let pid = unsafe { libc::waitpid(init_pid, &mut raw, 0) };
        if pid == init_pid
            || (pid == -1 && io::Error::last_os_error().raw_os_error() != Some(libc::EINTR))
        {
            break;
        }
    }
    let mut bytes = [0u8; 4];
    // SAFETY: reads into a live array of that length.
    let read = unsafe { libc::read(status_reader, bytes.as_mut_ptr().cast(), bytes.len()) };
    let raw = i32::from_ne_bytes(bytes);
    // SAFETY: exits and signals to itself, without unwinding.
    unsafe {
        if read == 4 && libc::WIFEXITED(raw) {
            libc::_exit(libc::WEXITSTATUS(raw));
        }
        // Killed (by its own command or by a signal to the group): die of the same signal,
        // so the tool reports "killed by signal N". C is not dumpable: no core dump.
        let signal = if read == 4 && libc::WIFSIGNALED(raw) {
            libc::WTERMSIG(raw)
        } else {
            libc::SIGKILL
        };
        libc::signal(signal, libc::SIG_DFL);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, signal);
        libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        libc::kill(libc::getpid(), signal);
        libc::_exit(128 + signal)
    }
}

/// Every handler back to its default: a host's handlers must not run in C or G (whose
/// namespace init only gets signals it handles).
fn reset_signals() -> io::Result<()> {
    // SAFETY: sigaction/sigprocmask with zeroed (empty) sets and SIG_DFL; errors for the
    // signals that cannot be changed (SIGKILL, SIGSTOP, the libc-reserved ones) are ignored.
    unsafe {
        for signal in 1..libc::SIGRTMIN() {
            if signal != libc::SIGKILL && signal != libc::SIGSTOP {
                libc::signal(signal, libc::SIG_DFL);
            }
        }
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        syscall_result(libc::sigprocmask(
            libc::SIG_SETMASK,
            &set,
            std::ptr::null_mut(),
        ))
    }
}

/// Closes every fd but `keep`.
fn close_all_but(keep: RawFd) {
    let keep = keep as libc::c_uint;
    // SAFETY: close_range on fd numbers; falls back to closing one by one on old kernels.
    unsafe {
        let below = if keep > 0 {
            libc::syscall(libc::SYS_close_range, 0u32, keep - 1, 0u32)
        } else {
            0
        };
        let above = libc::syscall(libc::SYS_close_range, keep + 1, u32::MAX, 0u32);
        if below != 0 || above != 0 {
            for fd in 0..4096 {
                if fd != keep {
                    libc::close(fd as libc::c_int);
                }
            }
        }
    }
}

/// Writes `bytes` to the file `path` (one write: these /proc files want the whole line).
fn write_file(path: &CStr, bytes: &[u8]) -> io::Result<()> {
    // SAFETY: a NUL-terminated path, a live buffer of that length, the fd closed after.
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        syscall_result(fd)?;
        let written = libc::write(fd, bytes.as_ptr().cast(), bytes.len());
        let error = io::Error::last_os_error();
        libc::close(fd);
        if written != bytes.len() as isize {
            return Err(error);
        }
    }
    Ok(())
}

/// Brings up `lo` in the new network namespace.
fn loopback_up() -> io::Result<()> {
    // SAFETY: a socket used for two ioctls on a zeroed `ifreq` naming "lo", then closed.
    unsafe {
        let socket = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        syscall_result(socket)?;
        let mut request: libc::ifreq = std::mem::zeroed();
        request.ifr_name[0] = b'l' as libc::c_char;
        request.ifr_name[1] = b'o' as libc::c_char;
        let mut result = libc::ioctl(socket, libc::SIOCGIFFLAGS as _, &mut request);
        if result == 0 {
            request.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
            result = libc::ioctl(socket, libc::SIOCSIFFLAGS as _, &request);
        }
        let error = io::Error::last_os_error();
        libc::close(socket);
        if result != 0 {
            return Err(error);
        }
    }
    Ok(())
}

/// `Err(errno)` for a -1 return.
fn syscall_result(result: libc::c_int) -> io::Result<()> {
    if result == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Reports `step` to the parent through the step pipe; returns `error` for std to report.
fn fail(plan: &Plan, step: Step, error: io::Error) -> io::Error {
    let byte = [step as u8];
    // SAFETY: writes one byte from a live array to the step pipe.
    unsafe { libc::write(plan.step, byte.as_ptr().cast(), 1) };
    error
}
