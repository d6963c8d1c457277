//! Running child processes, and surviving ctrl-c long enough to clean up after them.
//!
//! On ctrl-c the terminal signals the whole foreground process group: the test runner or the
//! suite gets SIGINT by itself. xtask only notes the interrupt, waits for its child to wind
//! down, and then stops the servers it started. The servers run in their own process group,
//! so the terminal's SIGINT never reaches them and they stay up until we stop them in order.

use std::{
    ffi::OsStr,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Output, Stdio},
    sync::{
        OnceLock,
        atomic::{AtomicBool, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

/// How long an interrupted child gets to exit on its own (it got the terminal's SIGINT too)
/// before we ask it with SIGTERM: a signal sent only to xtask (CI's SIGTERM) reaches no child.
const INTERRUPT_GRACE: Duration = Duration::from_secs(5);
/// How long a child gets after our SIGTERM before SIGKILL.
const TERMINATE_GRACE: Duration = Duration::from_secs(15);

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Catches SIGINT, SIGTERM and SIGHUP for the rest of the run: instead of dying, xtask
/// remembers the interrupt, so every exit path still runs the servers' `Drop`.
pub(crate) fn catch_interrupts() -> Result<()> {
    ctrlc::set_handler(|| {
        if !INTERRUPTED.swap(true, Ordering::SeqCst) {
            eprintln!("xtask: interrupted, stopping");
        }
    })
    .context("installing the signal handler")
}

/// Whether ctrl-c (or SIGTERM/SIGHUP) arrived.
pub(crate) fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Turns a pending interrupt into an error, so `?` unwinds through the cleanup guards.
pub(crate) fn bail_if_interrupted() -> Result<()> {
    if interrupted() {
        bail!("interrupted");
    }
    Ok(())
}

/// Blocks until ctrl-c.
pub(crate) fn wait_for_interrupt() {
    while !interrupted() {
        thread::sleep(Duration::from_millis(200));
    }
}

/// Polls `ready` every 100 ms until it holds or `timeout` passes.
pub(crate) fn poll_until(timeout: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if ready() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// Whether xtask runs as root (then Postgres must run as another user).
pub(crate) fn is_root() -> bool {
    static ROOT: OnceLock<bool> = OnceLock::new();
    *ROOT.get_or_init(|| {
        Command::new("id").arg("-u").output().is_ok_and(|out| out.status.success() && out.stdout.trim_ascii() == b"0")
    })
}

/// Finds an executable on `PATH`.
pub(crate) fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|candidate| candidate.is_file())
}

/// `program`, run as `user` via `runuser` when given (we are root then).
pub(crate) fn command_as(user: Option<&str>, program: impl AsRef<OsStr>) -> Command {
    match user {
        Some(user) => {
            let mut command = Command::new("runuser");
            command.args(["-u", user, "--"]).arg(program);
            command
        }
        None => Command::new(program),
    }
}

/// Runs a command with inherited stdio and fails unless it succeeds.
pub(crate) fn run(command: &mut Command, what: &str) -> Result<()> {
    let status = command.stdin(Stdio::null()).status().with_context(|| format!("starting {what}"))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}

/// Runs a command quietly and returns its output; on failure the error carries its output,
/// which is the only place the reason is written.
pub(crate) fn capture(command: &mut Command, what: &str) -> Result<Output> {
    let output = command.stdin(Stdio::null()).output().with_context(|| format!("starting {what}"))?;
    if !output.status.success() {
        bail!(
            "{what} failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(output)
}

/// Whether a command runs and exits 0; all its output is discarded.
pub(crate) fn succeeds(command: &mut Command) -> bool {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Waits for a foreground child (tests, the suite). After an interrupt it gets a grace period
/// to exit on its own, then SIGTERM, then SIGKILL.
pub(crate) fn wait(mut child: Child, what: &str) -> Result<ExitStatus> {
    let mut interrupted_at = None;
    let mut terminated_at = None;
    loop {
        if let Some(status) = child.try_wait().with_context(|| format!("waiting for {what}"))? {
            return Ok(status);
        }
        if interrupted() {
            let since = *interrupted_at.get_or_insert_with(Instant::now);
            if terminated_at.is_none() && since.elapsed() >= INTERRUPT_GRACE {
                eprintln!("xtask: {what} still running, sending SIGTERM");
                signal(child.id(), "TERM");
                terminated_at = Some(Instant::now());
            }
            if terminated_at.is_some_and(|at| at.elapsed() >= TERMINATE_GRACE) {
                eprintln!("xtask: {what} still running, killing it");
                child.kill().with_context(|| format!("killing {what}"))?;
                return child.wait().with_context(|| format!("waiting for {what}"));
            }
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// Sends a signal by name through kill(1): std can only SIGKILL its own children.
pub(crate) fn signal(pid: u32, name: &str) -> bool {
    succeeds(Command::new("kill").args(["-s", name, &pid.to_string()]))
}

/// Removes a directory tree, reporting (not failing) on error: used from `Drop`.
pub(crate) fn remove_dir(dir: &Path) {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => eprintln!("xtask: could not remove {}: {err}", dir.display()),
    }
}
