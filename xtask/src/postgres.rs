//! Postgres: the caller's server, the one on 127.0.0.1:5432, or a throwaway cluster of ours.
//!
//! The throwaway cluster trades durability for speed (no fsync) and lives in a directory of
//! its own that is removed when it stops. Postgres refuses to run as root, so under root
//! (CI, containers) `initdb` and `pg_ctl` run as the `postgres` user via `runuser`.

use std::{
    fs,
    net::{Ipv4Addr, SocketAddr, TcpStream},
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use anyhow::{Context, Result, bail};

use crate::{
    infra::{self, env_url},
    process::{self, command_as},
};

/// Name prefix of the cluster directory used when the postgres user cannot reach `target/`.
pub(crate) const TMP_PREFIX: &str = "minhu-xtask-";
/// The OS user that runs the cluster when xtask runs as root.
const OS_USER: &str = "postgres";
/// The server developers (and this project's machines) run on the standard port, trust auth.
const STANDARD_PORT: u16 = 5432;
const STANDARD_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
/// Settings for a cluster whose data nobody needs after the run: no Unix socket (TCP only, so
/// no clash with a system server's socket and no socket path length limit), no durability,
/// and room for many test pools at once.
const SERVER_OPTIONS: &str = "-c listen_addresses=127.0.0.1 -k '' -c fsync=off -c synchronous_commit=off \
     -c full_page_writes=off -c max_connections=300";

/// A Postgres server reachable with an admin URL.
pub(crate) struct Postgres {
    url: String,
    /// Set when we started the server: dropping it stops the server.
    _cluster: Option<Cluster>,
}

impl Postgres {
    /// Uses `$var`, else the standard server, else starts a throwaway cluster.
    pub(crate) fn ensure(var: &str, force_local: bool, scratch: &Path) -> Result<Self> {
        if !force_local {
            if let Some(url) = env_url(var) {
                eprintln!("xtask: postgres: using ${var}");
                return Ok(Self { url, _cluster: None });
            }
            if standard_server_usable() {
                eprintln!("xtask: postgres: using 127.0.0.1:{STANDARD_PORT}");
                return Ok(Self { url: STANDARD_URL.to_owned(), _cluster: None });
            }
        }
        let cluster = Cluster::start(scratch)?;
        Ok(Self { url: cluster.url(), _cluster: Some(cluster) })
    }

    /// The admin URL: database `postgres`, a user that may create databases.
    pub(crate) fn admin_url(&self) -> &str {
        &self.url
    }

    /// The URL of `database` on this server, as the same user.
    pub(crate) fn database_url(&self, database: &str) -> String {
        with_database(&self.url, database)
    }

    /// Creates the databases that do not exist yet.
    pub(crate) fn create_databases(&self, names: &[String]) -> Result<()> {
        let psql = find_psql()?;
        for name in names {
            // The names are ours (minhu_<service>): nothing to escape.
            let exists = psql_query(&psql, &self.url, &format!("SELECT 1 FROM pg_database WHERE datname = '{name}'"))
                .with_context(|| format!("checking for database {name}"))?;
            if exists.trim() != "1" {
                eprintln!("xtask: postgres: creating database {name}");
                psql_query(&psql, &self.url, &format!("CREATE DATABASE \"{name}\""))
                    .with_context(|| format!("creating database {name}"))?;
            }
        }
        Ok(())
    }
}

/// Whether a server on the standard port accepts `postgres` without a password and lets it
/// create databases. Each check that needs a missing tool is skipped.
fn standard_server_usable() -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, STANDARD_PORT));
    if TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err() {
        eprintln!("xtask: postgres: nothing listens on {addr}");
        return false;
    }
    if let Some(pg_isready) = find_tool("pg_isready") {
        let port = STANDARD_PORT.to_string();
        if !process::succeeds(Command::new(pg_isready).args(["-q", "-h", "127.0.0.1", "-p", &port])) {
            eprintln!("xtask: postgres: {addr} is open but not accepting connections (pg_isready)");
            return false;
        }
    }
    if let Some(psql) = find_tool("psql") {
        let sql = "SELECT rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user";
        if !psql_query(&psql, STANDARD_URL, sql).is_ok_and(|out| out.trim() == "t") {
            eprintln!(
                "xtask: postgres: {addr} answers, but user postgres cannot log in without a password or create \
                 databases (set DATABASE_URL / MINHU_TEST_DATABASE_URL to use it)"
            );
            return false;
        }
    }
    true
}

/// A throwaway cluster; dropping it stops the server and removes its directory.
struct Cluster {
    bin: PathBuf,
    /// Owned by the cluster's OS user: `data/` and `postgres.log`.
    dir: PathBuf,
    port: u16,
    user: Option<&'static str>,
}

impl Cluster {
    fn start(scratch: &Path) -> Result<Self> {
        let bin = match debian_bin_dir() {
            Some(bin) => bin,
            None => {
                infra::install_servers("postgres (initdb)")?;
                debian_bin_dir()
                    .context("no initdb under /usr/lib/postgresql/*/bin even after installing postgresql")?
            }
        };
        let user = if process::is_root() {
            ensure_os_user()?;
            Some(OS_USER)
        } else {
            None
        };
        let port = infra::free_port()?;
        let dir = cluster_dir(scratch, user)?;
        eprintln!("xtask: starting throwaway postgres on 127.0.0.1:{port} ({})", dir.display());
        // From here on, dropping `cluster` cleans up whatever got done.
        let cluster = Self { bin, dir, port, user };
        cluster.initdb()?;
        process::bail_if_interrupted()?;
        cluster.pg_ctl_start()?;
        Ok(cluster)
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// A command run as the cluster's user, from its directory (so the postgres user is never
    /// left in a working directory it cannot read), in a process group of its own (so a second
    /// ctrl-c cannot kill a stop in progress, and the server never sees the terminal's SIGINT).
    fn command(&self, tool: &str) -> Command {
        let mut command = command_as(self.user, self.bin.join(tool));
        command.current_dir(&self.dir).process_group(0);
        command
    }

    fn initdb(&self) -> Result<()> {
        // C.UTF-8 ships with glibc; plain C is the fallback for systems without it.
        let mut result = Ok(());
        for locale in ["C.UTF-8", "C"] {
            let mut initdb = self.command("initdb");
            initdb
                .arg("-D")
                .arg(self.data())
                .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"])
                .arg(format!("--locale={locale}"));
            result = process::capture(&mut initdb, "initdb").map(drop);
            if result.is_ok() {
                break;
            }
            process::remove_dir(&self.data());
        }
        result
    }

    fn pg_ctl_start(&self) -> Result<()> {
        let log = self.dir.join("postgres.log");
        let mut pg_ctl = self.command("pg_ctl");
        pg_ctl
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(&log)
            .args(["-w", "-t", "60", "-s", "-o"])
            .arg(format!("-p {} {SERVER_OPTIONS}", self.port))
            .arg("start");
        process::capture(&mut pg_ctl, "pg_ctl start").with_context(|| {
            let log = fs::read_to_string(&log).unwrap_or_default();
            let tail: Vec<_> = log.lines().rev().take(20).collect();
            format!("starting postgres; the end of its log:\n{}", tail.into_iter().rev().collect::<Vec<_>>().join("\n"))
        })?;
        Ok(())
    }

    fn pg_ctl_stop(&self, mode: &str) -> Result<()> {
        let mut pg_ctl = self.command("pg_ctl");
        pg_ctl.arg("-D").arg(self.data()).args(["-m", mode, "-w", "-t", "30", "-s", "stop"]);
        process::capture(&mut pg_ctl, "pg_ctl stop").map(drop)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.data().join("postmaster.pid").exists() {
            eprintln!("xtask: stopping throwaway postgres on 127.0.0.1:{}", self.port);
            if let Err(err) = self.pg_ctl_stop("fast") {
                eprintln!("xtask: {err:#}");
                if let Err(err) = self.pg_ctl_stop("immediate") {
                    eprintln!("xtask: {err:#}");
                }
            }
        }
        process::remove_dir(&self.dir);
    }
}

/// Stops a cluster left behind by a dead run (its directory is removed by the caller).
pub(crate) fn stop_stale(run_dir: &Path) {
    let Some(bin) = debian_bin_dir() else { return };
    let user = process::is_root().then_some(OS_USER);
    for dir in [run_dir.join("pg"), run_dir.to_owned()] {
        // postmaster.pid: pid, data directory, start time, port, ...
        let Ok(pid_file) = fs::read_to_string(dir.join("data/postmaster.pid")) else { continue };
        let port = pid_file.lines().nth(3).and_then(|port| port.trim().parse().ok()).unwrap_or_default();
        // Dropping it stops the server and removes its directory.
        drop(Cluster { bin: bin.clone(), dir, port, user });
    }
}

/// The cluster's directory, writable by `user`. Under root the directory goes to the postgres
/// user, who must also be able to reach it: when `target/` lies below a directory closed to
/// others (say /root), the cluster lives in /tmp instead.
fn cluster_dir(scratch: &Path, user: Option<&str>) -> Result<PathBuf> {
    let in_target = scratch.join("pg");
    fs::create_dir_all(&in_target).with_context(|| format!("creating {}", in_target.display()))?;
    let Some(user) = user else { return Ok(in_target) };
    if hand_over(&in_target, user)? {
        return Ok(in_target);
    }
    process::remove_dir(&in_target);
    let in_tmp = std::env::temp_dir().join(format!("{TMP_PREFIX}{}", std::process::id()));
    eprintln!("xtask: user {user} cannot reach {}; using {}", in_target.display(), in_tmp.display());
    process::remove_dir(&in_tmp);
    fs::create_dir_all(&in_tmp).with_context(|| format!("creating {}", in_tmp.display()))?;
    if !hand_over(&in_tmp, user)? {
        process::remove_dir(&in_tmp);
        bail!("user {user} cannot write to {} either", in_tmp.display());
    }
    Ok(in_tmp)
}

/// Gives `dir` to `user`; true when `user` can then write to it (every parent traversable).
fn hand_over(dir: &Path, user: &str) -> Result<bool> {
    process::capture(Command::new("chown").arg(format!("{user}:")).arg(dir), "chown")?;
    Ok(process::succeeds(command_as(Some(user), "test").arg("-w").arg(dir)))
}

/// Creates the system user `postgres` when it is missing (the Debian package creates it; a
/// bare container with hand-copied binaries may not have it).
fn ensure_os_user() -> Result<()> {
    if process::succeeds(Command::new("id").args(["-u", OS_USER])) {
        return Ok(());
    }
    eprintln!("xtask: creating system user {OS_USER}");
    process::capture(
        Command::new("useradd").args([
            "--system",
            "--user-group",
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
            OS_USER,
        ]),
        "useradd postgres",
    )
    .map(drop)
}

/// Debian's server binaries, newest major version first: `/usr/lib/postgresql/<N>/bin`.
fn debian_bin_dir() -> Option<PathBuf> {
    fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|entry| {
            let version: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .max_by_key(|(version, _)| *version)
        .map(|(_, bin)| bin)
}

/// A client tool, from `PATH` or else from Debian's server binaries.
fn find_tool(name: &str) -> Option<PathBuf> {
    process::which(name).or_else(|| debian_bin_dir().map(|bin| bin.join(name)).filter(|tool| tool.is_file()))
}

fn find_psql() -> Result<PathBuf> {
    if let Some(psql) = find_tool("psql") {
        return Ok(psql);
    }
    infra::install_servers("psql")?;
    find_tool("psql").context("psql not found even after installing postgresql")
}

/// Runs one statement; returns its unaligned, tuples-only output. `-w`: never prompt for a
/// password (there may be no terminal), fail instead.
fn psql_query(psql: &Path, url: &str, sql: &str) -> Result<String> {
    let output = process::capture(
        Command::new(psql)
            .args(["-X", "-w", "-q", "-tA", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql])
            .env("PGCONNECT_TIMEOUT", "5"),
        "psql",
    )?;
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// `url` with its database (the path) replaced, keeping user, host and query.
fn with_database(url: &str, database: &str) -> String {
    let (head, query) = match url.split_once('?') {
        Some((head, query)) => (head, Some(query)),
        None => (url, None),
    };
    let authority = head.find("://").map_or(0, |scheme| scheme + 3);
    let base = head[authority..].find('/').map_or(head, |path| &head[..authority + path]);
    match query {
        Some(query) => format!("{base}/{database}?{query}"),
        None => format!("{base}/{database}"),
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn replaces_the_database() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "minhu_roster"),
            "postgres://postgres@127.0.0.1:5432/minhu_roster"
        );
        assert_eq!(
            with_database("postgres://u:p@db/admin?sslmode=require", "x"),
            "postgres://u:p@db/x?sslmode=require"
        );
    }

    #[test]
    fn adds_a_missing_database() {
        assert_eq!(with_database("postgres://u@db:5433", "x"), "postgres://u@db:5433/x");
        assert_eq!(with_database("postgresql://u@db?sslmode=disable", "x"), "postgresql://u@db/x?sslmode=disable");
    }
}
