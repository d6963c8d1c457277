//! Postgres and Redis for a task: bring your own, use the ones on the standard ports, or we
//! start throwaway ones and stop them again when the task ends, however it ends.

use std::{
    fs,
    net::{Ipv4Addr, TcpListener},
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result, bail};

use crate::{postgres::Postgres, process, redis::Redis};

/// Skips the environment's URLs and the probes of 5432/6379: always start throwaway servers.
const FORCE_LOCAL: &str = "MINHU_XTASK_FORCE_LOCAL";
/// The one command that installs what the throwaway servers need.
const INSTALL_HINT: &str = "sudo apt-get install -y postgresql redis-server";

/// Where a caller's own servers are named.
#[derive(Clone, Copy)]
pub(crate) struct Sources {
    /// Variable with an admin URL to a Postgres server (a user that may CREATE DATABASE).
    pub(crate) postgres: &'static str,
    /// Variable with a Redis URL.
    pub(crate) redis: &'static str,
}

/// Running Postgres and Redis; dropping it stops whatever xtask started.
pub(crate) struct Infra {
    pub(crate) postgres: Postgres,
    pub(crate) redis: Redis,
    // Last: fields drop in order, so the servers are stopped before their directory goes.
    _scratch: Scratch,
}

impl Infra {
    pub(crate) fn ensure(sources: Sources) -> Result<Self> {
        let scratch = Scratch::create()?;
        let force_local = std::env::var_os(FORCE_LOCAL).is_some_and(|value| !value.is_empty() && value != "0");
        if force_local {
            eprintln!("xtask: {FORCE_LOCAL} is set: starting throwaway servers");
        }
        let postgres = Postgres::ensure(sources.postgres, force_local, &scratch.dir)?;
        process::bail_if_interrupted()?;
        let redis = Redis::ensure(sources.redis, force_local, &scratch.dir)?;
        process::bail_if_interrupted()?;
        Ok(Self { postgres, redis, _scratch: scratch })
    }
}

/// This run's directory for throwaway servers: `target/xtask/run-<pid>`.
struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    fn create() -> Result<Self> {
        let parent = crate::workspace_root().join("target/xtask");
        sweep_stale(&parent);
        let dir = parent.join(format!("run-{}", std::process::id()));
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Self { dir })
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        process::remove_dir(&self.dir);
    }
}

/// The value of an environment variable, if set and not empty.
pub(crate) fn env_url(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.trim().is_empty())
}

/// A port nobody listens on right now. The OS may hand it out again before the server binds
/// it, but only to someone else asking for port 0 in the same instant.
pub(crate) fn free_port() -> Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("finding a free port")?;
    Ok(listener.local_addr().context("finding a free port")?.port())
}

/// Installs the Postgres and Redis packages when we are root (CI, containers); otherwise says
/// how and fails: a developer's machine is theirs to change.
pub(crate) fn install_servers(missing: &str) -> Result<()> {
    if !process::is_root() {
        eprintln!("xtask: {missing} is not installed; install Postgres and Redis with:\n  {INSTALL_HINT}");
        bail!("{missing} is not installed");
    }
    eprintln!("xtask: {missing} is not installed; installing postgresql and redis-server with apt-get");
    process::run(Command::new("apt-get").arg("update"), "apt-get update")?;
    process::run(
        Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends", "postgresql", "redis-server"])
            .env("DEBIAN_FRONTEND", "noninteractive"),
        "apt-get install postgresql redis-server",
    )
}

/// Stops the servers of earlier runs that died without cleaning up (SIGKILL, a crash) and
/// removes their directories. A run is dead when its pid is; without `/proc` we cannot tell,
/// and leave everything alone.
fn sweep_stale(parent: &Path) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let tmp = std::env::temp_dir();
    let runs = scratch_dirs(parent, "run-").chain(scratch_dirs(&tmp, crate::postgres::TMP_PREFIX));
    for (dir, pid) in runs {
        if xtask_alive(pid) {
            continue;
        }
        eprintln!("xtask: cleaning up after dead run {pid}: {}", dir.display());
        crate::postgres::stop_stale(&dir);
        crate::redis::stop_stale(&dir);
        process::remove_dir(&dir);
    }
}

/// Whether `pid` is a live xtask. A zombie is dead (a killed run can linger unreaped), and a
/// pid reused by another program means the run is gone.
fn xtask_alive(pid: u32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
    // "<pid> (<comm>) <state> ...": comm may contain spaces and parentheses, state follows the last ')'.
    let Some((head, tail)) = stat.rsplit_once(')') else { return false };
    let comm = head.split_once('(').map_or("", |(_, comm)| comm);
    comm == "xtask" && !tail.trim_start().starts_with(['Z', 'X'])
}

/// Directories in `parent` named `<prefix><pid>`, with their pid.
fn scratch_dirs(parent: &Path, prefix: &'static str) -> impl Iterator<Item = (PathBuf, u32)> + use<> {
    fs::read_dir(parent).into_iter().flatten().flatten().filter_map(move |entry| {
        let pid = entry.file_name().to_str()?.strip_prefix(prefix)?.parse().ok()?;
        Some((entry.path(), pid))
    })
}
