//! Redis: the caller's server, the one on 127.0.0.1:6379, or a throwaway `redis-server` child
//! without persistence.

use std::{
    fs::{self, File},
    io::{Read, Write},
    net::{Ipv4Addr, SocketAddr, TcpStream},
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use anyhow::{Context, Result, bail};

use crate::{
    infra::{self, env_url},
    process,
};

const STANDARD_PORT: u16 = 6379;

/// A Redis server reachable with a URL.
pub(crate) struct Redis {
    url: String,
    /// Set when we started the server: dropping it stops the server.
    _server: Option<Server>,
}

impl Redis {
    /// Uses `$var`, else the standard server, else starts a throwaway one.
    pub(crate) fn ensure(var: &str, force_local: bool, scratch: &Path) -> Result<Self> {
        if !force_local {
            if let Some(url) = env_url(var) {
                eprintln!("xtask: redis: using ${var}");
                return Ok(Self { url, _server: None });
            }
            if ping(STANDARD_PORT) {
                eprintln!("xtask: redis: using 127.0.0.1:{STANDARD_PORT}");
                return Ok(Self { url: url(STANDARD_PORT), _server: None });
            }
            eprintln!("xtask: redis: no PONG from 127.0.0.1:{STANDARD_PORT}");
        }
        let server = Server::start(scratch)?;
        Ok(Self { url: url(server.port), _server: Some(server) })
    }

    pub(crate) fn url(&self) -> &str {
        &self.url
    }
}

fn url(port: u16) -> String {
    format!("redis://127.0.0.1:{port}")
}

/// A throwaway `redis-server`; dropping it shuts the server down and removes its directory.
struct Server {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Server {
    fn start(scratch: &Path) -> Result<Self> {
        let redis_server = match process::which("redis-server") {
            Some(path) => path,
            None => {
                infra::install_servers("redis-server")?;
                process::which("redis-server").context("redis-server not found even after installing it")?
            }
        };
        let port = infra::free_port()?;
        let dir = scratch.join("redis");
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let log = File::create(dir.join("redis.log")).context("creating redis.log")?;
        eprintln!("xtask: starting throwaway redis on 127.0.0.1:{port}");
        let child = Command::new(redis_server)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--daemonize", "no", "--dir"])
            .arg(&dir)
            // The pid file lets a later run stop this server should xtask die without cleaning up.
            .arg("--pidfile")
            .arg(dir.join("redis.pid"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().context("opening redis.log")?)
            .stderr(log)
            // Its own process group: the terminal's ctrl-c is for the tests, not for Redis,
            // which we stop ourselves once they are done.
            .process_group(0)
            .spawn()
            .context("starting redis-server")?;
        let mut server = Self { child, port, dir };
        let up = process::poll_until(Duration::from_secs(10), || {
            ping(port) || matches!(server.child.try_wait(), Ok(Some(_)) | Err(_))
        });
        if !up || !ping(port) {
            let log = fs::read_to_string(server.dir.join("redis.log")).unwrap_or_default();
            bail!("redis-server did not answer PING on port {port}; its log:\n{log}");
        }
        Ok(server)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            eprintln!("xtask: stopping throwaway redis on 127.0.0.1:{}", self.port);
            // SHUTDOWN closes the connection instead of answering; a kill is the fallback.
            let _ = command(self.port, "SHUTDOWN NOSAVE");
            let exited = process::poll_until(Duration::from_secs(5), || !matches!(self.child.try_wait(), Ok(None)));
            if !exited {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
        process::remove_dir(&self.dir);
    }
}

/// Stops a server left behind by a dead run, found by its pid file (the caller removes the
/// directory). The pid is checked to still be a redis-server: pids get reused.
pub(crate) fn stop_stale(run_dir: &Path) {
    let Ok(pid) = fs::read_to_string(run_dir.join("redis/redis.pid")) else { return };
    let pid = pid.trim();
    let is_redis = fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|comm| comm.starts_with("redis-server"));
    if let (true, Ok(pid)) = (is_redis, pid.parse()) {
        process::signal(pid, "KILL");
    }
}

/// Whether a Redis server on `port` answers PING.
fn ping(port: u16) -> bool {
    command(port, "PING").is_ok_and(|reply| reply.starts_with("+PONG"))
}

/// Sends one inline command and returns the first reply bytes. Redis speaks plain text
/// inline commands, so this needs no client library.
fn command(port: u16, command: &str) -> std::io::Result<String> {
    let timeout = Duration::from_secs(1);
    let mut stream = TcpStream::connect_timeout(&SocketAddr::from((Ipv4Addr::LOCALHOST, port)), timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    stream.write_all(format!("{command}\r\n").as_bytes())?;
    let mut reply = [0; 64];
    let len = stream.read(&mut reply)?;
    Ok(String::from_utf8_lossy(&reply[..len]).into_owned())
}
