//! The kernel sandbox every `bash` command runs in.
//!
//! A model's tool calls may be an attacker's, so a shell command must not be able to read
//! the user's files, the host's secrets or the network, nor leave processes behind. This
//! module confines each command with facilities of the Linux kernel itself — no helper
//! binary — and refuses to run it when the kernel cannot.
//!
//! # What a confined command may do
//!
//! | | allowed | refused |
//! |---|---|---|
//! | read + execute | `/usr`, `/bin`, `/sbin`, `/lib*`, `/opt`, `/etc` minus secrets, [`Sandbox::allow_read`] paths | home directories, `/root`, `/tmp`, `/var`, `/run`, everything else |
//! | read | `/proc` (the command's own PID namespace), `/sys` | |
//! | write | the workspace, a private temporary directory (`$TMPDIR` = `$HOME`, mode 0700, removed when the command ends), `/dev/null` and friends, [`Sandbox::allow_write`] paths | everything else |
//! | network | loopback inside the command only, unless [`Network::On`] | every other host, servers outside the command, the host's Unix sockets under `/run` (an empty tmpfs hides them) |
//! | other processes | its own | seeing the host's, `/proc/<pid>/{environ,mem,fd,…}` of any other, signals to them |
//! | environment | `PATH`, `LANG`, `LC_*`, `TERM`, `TZ`, `USER`, `LOGNAME`, `SHELL`, [`Sandbox::pass_env`] names | everything else (API keys included) |
//!
//! `/etc` is granted entry by entry: only subtrees whose every entry is world-readable, and
//! never `shadow`, `gshadow`, `sudoers*`, ssh host keys, `*.key` or `private/` (Landlock
//! only allows, so a secret inside a granted directory could not be taken back out).
//!
//! # How
//!
//! Each command is `bash -c <command>` started through [`std::process::Command`] with a
//! `pre_exec` step. The parent builds everything that allocates first — the Landlock ruleset
//! (with the [`landlock`] crate: opened paths and their rights), the uid/gid map lines, the
//! environment — because between `fork` and `exec` a multithreaded process may only make
//! async-signal-safe calls. The forked child (call it *C*) then makes raw syscalls only:
//!
//! 1. `unshare(CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS [| CLONE_NEWNET])`: a user
//!    namespace (so an unprivileged process may create the others; this fails in a
//!    multithreaded process but works in this single-threaded child), a PID namespace, a
//!    mount namespace (made private), and, with the network off, a network namespace with
//!    only a loopback interface (brought up, so servers the command starts itself are
//!    reachable);
//! 2. identity uid/gid maps, so files keep their owners and `id` its answer;
//! 3. `PR_SET_NO_NEW_PRIVS` (no setuid escalation);
//! 4. `fork`: the grandchild *G* is PID 1 of the new PID namespace. G mounts a `/proc` of
//!    that namespace over the host's (so the command sees its own processes only, not the
//!    host's command lines) and, with the network off, an empty tmpfs over `/run` (the
//!    host's Unix sockets: Docker, D-Bus, databases; Landlock before ABI 8 does not check
//!    `connect` on a socket's path), adds `/proc` to the ruleset, then calls `landlock_restrict_self`
//!    (after the mount: a Landlock domain may not mount). The domain also scopes signals
//!    and abstract Unix sockets (ABI 6+) and, in every ABI, forbids ptrace-class access
//!    (which `/proc/<pid>/environ`, `mem` and `fd` need) to any process outside it.
//! 5. G forks bash (*B*, PID 2), reaps every orphan, and when B ends hands B's wait status
//!    to C through a pipe and exits. When PID 1 of a namespace exits, the kernel kills every
//!    other process in it — `setsid -f`, double forks and `nohup` included — and C exits
//!    with B's status (re-raising its signal). G is PID 1, not bash, because the kernel
//!    ignores signals sent to a namespace's init from inside it: `kill -9 $$` must work.
//!
//! C reports G's host pid to the parent, which opens a pidfd on it: once bash has ended or
//! been killed, the `bash` tool kills G and waits for that pidfd, which the kernel signals
//! only after every process of the namespace is gone. So when a call returns — normally,
//! on timeout or on cancellation — nothing it started is left.
//!
//! C and G never run anything but syscalls, never `exec`, and are not dumpable, so their
//! copy of the host's memory cannot be read through `/proc`; C is outside the Landlock
//! domain (it only waits), so the command cannot ptrace it either. The host process itself
//! is made not dumpable ([`PR_SET_DUMPABLE`] = 0) the first time a confined command runs:
//! no core dumps, and `/proc/<host pid>/*` becomes owned by root, which keeps its
//! environment and memory from other processes of the same user. **This affects the whole
//! host process** (a debugger must attach as root).
//!
//! The whole tree shares C's process group, which the `bash` tool kills on timeout or
//! cancellation; G also has `PR_SET_PDEATHSIG = SIGKILL`, so killing C alone is enough.
//!
//! Where a container forbids mounting `/proc` (one with masked `/proc` paths), the host's
//! `/proc` stays visible: other processes' command lines can be read, their environment,
//! memory and fds still cannot (Landlock's ptrace scoping).
//!
//! # When the kernel cannot
//!
//! Without Landlock (Linux < 5.13, or not enabled at boot), without unprivileged user
//! namespaces (`user.max_user_namespaces = 0`, Debian's `kernel.unprivileged_userns_clone
//! = 0`, AppArmor's `kernel.apparmor_restrict_unprivileged_userns = 1`), or on another OS,
//! the `bash` tool refuses with an error of kind [`ErrorKind::Config`](crate::ErrorKind)
//! naming the missing [`Facility`] and the opt-out. It never runs a command unconfined on
//! its own. The opt-out, for trusted work, is [`Sandbox::unconfined`] (in Markdown front
//! matter: `sandbox: off`): the command then runs as the host does, in a process group of
//! its own (killed with the run), with the provider keys and secret-looking variables
//! removed from its environment — nothing more.
//!
//! [`PR_SET_DUMPABLE`]: https://man7.org/linux/man-pages/man2/PR_SET_DUMPABLE.2const.html

#[cfg(target_os = "linux")]
mod linux;
mod policy;

use std::fmt;
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::error::Error;

/// Whether a command may reach the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Network {
    /// Only the loopback interface of the command's own network namespace: connections to
    /// other hosts fail with "Network is unreachable", name lookups fail, and servers
    /// outside the command (on the host's loopback too) cannot be reached. The default.
    #[default]
    Off,
    /// The host's network, as the host sees it.
    On,
}

impl Network {
    /// `on` or `off`.
    pub fn as_str(self) -> &'static str {
        match self {
            Network::Off => "off",
            Network::On => "on",
        }
    }

    /// Reads `on`/`off` (also `true`/`false`, `yes`/`no`); `None` for anything else.
    pub fn parse(value: &str) -> Option<Network> {
        match value.trim().to_ascii_lowercase().as_str() {
            "on" | "true" | "yes" => Some(Network::On),
            "off" | "false" | "no" => Some(Network::Off),
            _ => None,
        }
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A kernel facility the sandbox needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Facility {
    /// Landlock (Linux 5.13+, enabled at boot): the filesystem rules and ptrace scoping.
    Landlock,
    /// Unprivileged user namespaces: needed to create the PID and network namespaces.
    UserNamespaces,
    /// Linux itself: the sandbox is built from Linux facilities only.
    Linux,
}

impl Facility {
    fn describe(self) -> &'static str {
        match self {
            Facility::Landlock => {
                "Landlock (Linux 5.13 or later with `landlock` in the `lsm=` boot parameter)"
            }
            Facility::UserNamespaces => {
                "unprivileged user namespaces (sysctls `user.max_user_namespaces` > 0, \
                 `kernel.unprivileged_userns_clone` = 1, \
                 `kernel.apparmor_restrict_unprivileged_userns` = 0)"
            }
            Facility::Linux => "Linux (Landlock and namespaces)",
        }
    }
}

impl fmt::Display for Facility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Facility::Landlock => "Landlock",
            Facility::UserNamespaces => "user namespaces",
            Facility::Linux => "Linux",
        })
    }
}

/// How the `bash` tool confines the commands of a run: a value you can print and test,
/// built once per run (from the subagent type and the `task` call) and applied to each
/// command between fork and exec. See the [module docs](self) for what it allows.
///
/// ```
/// use subtask::sandbox::{Network, Sandbox};
///
/// let sandbox = Sandbox::new().network(Network::On).allow_read("/opt/toolchains");
/// assert!(sandbox.is_confined());
/// assert_eq!(sandbox.network_access(), Network::On);
/// assert!(!Sandbox::unconfined().is_confined());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sandbox {
    confined: bool,
    network: Network,
    read_paths: Vec<PathBuf>,
    write_paths: Vec<PathBuf>,
    pass_env: Vec<String>,
    /// A facility to behave as if the kernel lacked (tests of the refusal).
    simulate_missing: Option<Facility>,
}

impl Default for Sandbox {
    fn default() -> Sandbox {
        Sandbox::new()
    }
}

impl Sandbox {
    /// Confined, network off, no extra paths or variables.
    pub const fn new() -> Sandbox {
        Sandbox {
            confined: true,
            network: Network::Off,
            read_paths: Vec::new(),
            write_paths: Vec::new(),
            pass_env: Vec::new(),
            simulate_missing: None,
        }
    }

    /// No sandbox: commands run as the host does, in a process group of their own, with
    /// the provider keys and secret-looking variables (`*KEY*`, `*TOKEN*`, `*SECRET*`,
    /// `*PASSWORD*`, `*CREDENTIAL*`) removed from their environment. For trusted work only:
    /// such a command can read and write whatever the host can, reach the network, and
    /// leave processes behind (`setsid`) when the run ends.
    pub fn unconfined() -> Sandbox {
        Sandbox {
            confined: false,
            network: Network::On,
            ..Sandbox::new()
        }
    }

    /// Sets network access. Defaults to [`Network::Off`].
    pub fn network(mut self, network: Network) -> Sandbox {
        self.network = network;
        self
    }

    /// Lets commands read and execute beneath `path` too (a toolchain in a home directory,
    /// say). Paths that do not exist are skipped. Defaults to none.
    pub fn allow_read(mut self, path: impl Into<PathBuf>) -> Sandbox {
        self.read_paths.push(path.into());
        self
    }

    /// Lets commands write beneath `path` too (a shared cache, say). Paths that do not exist
    /// are skipped. Defaults to none.
    pub fn allow_write(mut self, path: impl Into<PathBuf>) -> Sandbox {
        self.write_paths.push(path.into());
        self
    }

    /// Passes the host's variable `name` to commands (when set). Defaults to none beyond
    /// the fixed list in the [module docs](self).
    pub fn pass_env(mut self, name: impl Into<String>) -> Sandbox {
        self.pass_env.push(name.into());
        self
    }

    /// For tests of the refusal path: behave as if the kernel lacked `facility`, exactly as
    /// when it really does (a confined sandbox then refuses every command).
    pub fn simulate_missing(mut self, facility: Facility) -> Sandbox {
        self.simulate_missing = Some(facility);
        self
    }

    /// Whether commands are confined (not [`unconfined`](Self::unconfined)).
    pub fn is_confined(&self) -> bool {
        self.confined
    }

    /// The network setting (always [`Network::On`] for an unconfined sandbox).
    pub fn network_access(&self) -> Network {
        if self.confined {
            self.network
        } else {
            Network::On
        }
    }

    /// Checks that this system can confine commands as this sandbox says (at once, rather
    /// than at the first `bash` call). An unconfined sandbox always can.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) naming the missing [`Facility`] and
    /// the opt-out.
    pub fn check(&self) -> Result<(), Error> {
        if !self.confined {
            return Ok(());
        }
        if let Some(facility) = self.simulate_missing {
            return Err(missing(facility, "simulated by Sandbox::simulate_missing"));
        }
        #[cfg(target_os = "linux")]
        {
            linux::check_support()
        }
        #[cfg(not(target_os = "linux"))]
        {
            Err(missing(Facility::Linux, std::env::consts::OS))
        }
    }

    /// The command that runs `script` with `bash -c` in `workspace`, confined as this
    /// sandbox says; the returned value must live until the command has ended (it owns the
    /// private temporary directory).
    pub(crate) fn command(&self, workspace: &Path, script: &str) -> Result<Prepared, Error> {
        let mut command = Command::new("bash");
        command.arg("-c").arg(script).current_dir(workspace);
        if !self.confined {
            policy::scrub_env(&mut command, &self.pass_env);
            return Ok(Prepared {
                command: Some(command),
                #[cfg(target_os = "linux")]
                confinement: None,
            });
        }
        self.check()?;
        #[cfg(target_os = "linux")]
        {
            let confinement = linux::Confinement::new(self, workspace, &mut command)?;
            Ok(Prepared {
                command: Some(command),
                confinement: Some(confinement),
            })
        }
        #[cfg(not(target_os = "linux"))]
        {
            unreachable!("check() refuses confinement off Linux")
        }
    }
}

/// A command ready to spawn, and what its confinement owns until it ends.
pub(crate) struct Prepared {
    /// `bash -c <script>` with its environment, directory and `pre_exec` step set; taken
    /// (and dropped, closing the parent's copies of its stdio) by `spawn`.
    command: Option<Command>,
    #[cfg(target_os = "linux")]
    confinement: Option<linux::Confinement>,
}

impl Prepared {
    /// Whether the command is confined (and so all its processes end with it).
    pub(crate) fn is_confined(&self) -> bool {
        #[cfg(target_os = "linux")]
        {
            self.confinement.is_some()
        }
        #[cfg(not(target_os = "linux"))]
        {
            false
        }
    }

    /// Starts the command with an empty stdin and `output` as its stdout and stderr, in a
    /// process group of its own (led by the returned child).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) when the kernel refused a sandbox
    /// step that needs a missing facility; [`ErrorKind::Tool`](crate::ErrorKind::Tool)
    /// for any other failure to start.
    pub(crate) fn spawn(&mut self, output: OwnedFd) -> Result<Child, Error> {
        let Some(mut command) = self.command.take() else {
            return Err(Error::tool("bash was started already"));
        };
        let stderr = output
            .try_clone()
            .map_err(|error| Error::tool(format!("bash could not be started: {error}")))?;
        command
            .stdin(Stdio::null())
            .stdout(Stdio::from(output))
            .stderr(Stdio::from(stderr))
            .process_group(0);
        let spawned = command.spawn();
        // The parent's copies of the output pipe's write end close here, so the pipe ends
        // when the command's processes are gone.
        drop(command);
        match spawned {
            Ok(child) => {
                self.spawned();
                Ok(child)
            }
            Err(error) => Err(self.spawn_error(error)),
        }
    }

    /// For a confined command whose bash has ended (or been killed): kills what is left of
    /// its PID namespace and waits until the kernel has ended every process in it. Call it
    /// once the child has exited; a no-op for an unconfined command.
    pub(crate) fn end(&mut self) {
        #[cfg(target_os = "linux")]
        if let Some(confinement) = &mut self.confinement {
            confinement.end_namespace();
        }
    }

    /// The error for a failed spawn: which sandbox step failed, if one did.
    fn spawn_error(&mut self, error: std::io::Error) -> Error {
        #[cfg(target_os = "linux")]
        if let Some(confinement) = &mut self.confinement {
            return confinement.spawn_error(error);
        }
        Error::tool(format!("bash could not be started: {error}"))
    }

    /// Drops what the parent keeps only until the spawn (the ruleset, the step pipe).
    fn spawned(&mut self) {
        #[cfg(target_os = "linux")]
        if let Some(confinement) = &mut self.confinement {
            confinement.spawned();
        }
    }
}

impl fmt::Debug for Prepared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Prepared")
            .field("command", &self.command)
            .field("confined", &self.is_confined())
            .finish()
    }
}

/// The refusal when `facility` is missing.
fn missing(facility: Facility, detail: &str) -> Error {
    Error::config(format!(
        "bash is refused: its sandbox needs {}, which this system lacks ({detail}). Commands \
         are never run unconfined without an opt-out. For trusted work, turn the sandbox off \
         for the subagent type (`sandbox: off` in its front matter, or `Sandbox::unconfined()` \
         in code); the file tools (read, write, edit, ls, glob, grep) work either way",
        facility.describe()
    ))
}
