//! The machine's own limits, measured by the tools everyone knows: `pgbench` with the
//! scripts in `bench/pgbench/`, `redis-benchmark`, nghttp2's `h2load`, and a bare tonic
//! server (the health service and nothing else) for our own load generator.

use std::{net::SocketAddr, path::PathBuf, process::Command, time::Duration};

use anyhow::{Context, Result, bail};
use tokio::sync::oneshot;

/// The pgbench scripts kept in the repository.
fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("pgbench").join(name)
}

/// Whether `tool` is on the PATH.
pub fn available(tool: &str) -> bool {
    Command::new(tool).arg("--help").output().is_ok()
}

fn run(command: &mut Command, what: &str) -> Result<String> {
    let out = command.output().with_context(|| format!("starting {what}"))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        bail!("{what} failed: {text}");
    }
    Ok(text)
}

/// Creates the baselines' tables in `url` (setup.sql, through psql).
pub fn pgbench_setup(url: &str) -> Result<()> {
    run(
        Command::new("psql").args([url, "-q", "-v", "ON_ERROR_STOP=1", "-f"]).arg(script("setup.sql")),
        "psql setup.sql",
    )?;
    Ok(())
}

/// A pgbench result: transactions per second and average latency (ms).
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Pgbench {
    /// Transactions per second, without connection time.
    pub tps: f64,
    /// Average latency, ms.
    pub latency_ms: f64,
}

/// Runs script `name` with `clients` for `duration` against `url`.
pub fn pgbench(url: &str, name: &str, clients: usize, duration: Duration) -> Result<Pgbench> {
    let text = run(
        Command::new("pgbench")
            .args(["-n", "-M", "prepared", "-c", &clients.to_string(), "-j", &clients.min(4).to_string()])
            .args(["-T", &duration.as_secs().max(1).to_string(), "-f"])
            .arg(script(name))
            .arg(url),
        "pgbench",
    )?;
    let field = |prefix: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse::<f64>().ok())
    };
    Ok(Pgbench {
        tps: field("tps = ").with_context(|| format!("no tps in pgbench's output: {text}"))?,
        latency_ms: field("latency average = ").unwrap_or(0.0),
    })
}

/// `redis-benchmark` ZADD of random members into one sorted set (growing towards `members`
/// distinct ones): requests per second. The set is deleted afterwards.
pub fn redis_zadd(redis_url: &str, requests: u64, members: u64) -> Result<f64> {
    let rest = redis_url.trim_start_matches("redis://");
    let hostport = rest.split(['/', '?']).next().unwrap_or("127.0.0.1:6379");
    let hostport = hostport.rsplit('@').next().unwrap_or(hostport);
    let (host, port) = hostport.split_once(':').unwrap_or((hostport, "6379"));
    let key = format!("minhu-bench:{}:zset", std::process::id());
    let text = run(
        Command::new("redis-benchmark")
            .args(["-h", host, "-p", port, "-n", &requests.to_string(), "-r", &members.to_string(), "--csv"])
            .args(["ZADD", &key, "__rand_int__", "member:__rand_int__"]),
        "redis-benchmark",
    )?;
    let _ = Command::new("redis-cli").args(["-h", host, "-p", port, "DEL", &key]).output();
    text.lines()
        .filter(|l| l.contains("ZADD"))
        .find_map(|l| l.split(',').nth(1).map(|v| v.trim_matches('"').to_owned()))
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("no rate in redis-benchmark's output: {text}"))
}

/// An h2load result.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct H2load {
    /// Requests per second.
    pub per_second: f64,
    /// Mean time per request, ms.
    pub mean_ms: f64,
    /// Failed requests.
    pub failed: u64,
}

/// A unary gRPC call by `h2load`: `requests` POSTs of `message` (encoded protobuf) to
/// `path` on `addr`, `in_flight` at once on one connection.
pub fn h2load(
    addr: SocketAddr,
    path: &str,
    message: &[u8],
    headers: &[(&str, String)],
    requests: u64,
    in_flight: usize,
) -> Result<H2load> {
    let body = std::env::temp_dir().join(format!("minhu-bench-{}-{}.bin", std::process::id(), path.replace('/', "_")));
    let mut framed = vec![0u8];
    framed.extend((message.len() as u32).to_be_bytes());
    framed.extend(message);
    std::fs::write(&body, framed).context("writing h2load's body")?;
    let mut cmd = Command::new("h2load");
    cmd.args(["-n", &requests.to_string(), "-c", "1", "-m", &in_flight.to_string(), "-d"]).arg(&body);
    cmd.args(["-H", "content-type: application/grpc", "-H", "te: trailers"]);
    for (k, v) in headers {
        cmd.args(["-H", &format!("{k}: {v}")]);
    }
    cmd.arg(format!("http://{addr}{path}"));
    let text = run(&mut cmd, "h2load");
    let _ = std::fs::remove_file(&body);
    let text = text?;
    // "finished in 1.00s, 1000.00 req/s, ..." and "time for request:  min  max  mean  sd  +/- sd".
    let per_second = text
        .lines()
        .find(|l| l.starts_with("finished in"))
        .and_then(|l| l.split(',').nth(1))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("no rate in h2load's output: {text}"))?;
    let mean_ms = text
        .lines()
        .find(|l| l.trim_start().starts_with("time for request:"))
        .and_then(|l| l.split_whitespace().nth(5).map(duration_ms))
        .unwrap_or(0.0);
    let failed = text
        .lines()
        .find(|l| l.starts_with("requests:"))
        .and_then(|l| l.split(',').find(|p| p.contains("failed")))
        .and_then(|p| p.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Ok(H2load { per_second, mean_ms, failed })
}

/// "1.23ms", "456us", "1.2s" as milliseconds.
fn duration_ms(v: &str) -> f64 {
    let num = |s: &str| s.parse::<f64>().unwrap_or(0.0);
    if let Some(us) = v.strip_suffix("us") {
        num(us) / 1000.0
    } else if let Some(ms) = v.strip_suffix("ms") {
        num(ms)
    } else if let Some(s) = v.strip_suffix('s') {
        num(s) * 1000.0
    } else {
        num(v)
    }
}

/// A bare tonic server: the health service on `127.0.0.1:0`, nothing of Minhu's stack
/// (no auth, screen, tracing or limits). `nodelay` sets TCP_NODELAY on accepted sockets.
pub async fn echo_server(nodelay: bool) -> Result<(SocketAddr, oneshot::Sender<()>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (_reporter, service) = tonic_health::server::health_reporter();
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(nodelay));
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming_shutdown(incoming, async {
                let _ = rx.await;
            })
            .await;
    });
    Ok((addr, tx))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn h2load_durations_read_in_milliseconds() {
        assert_eq!(duration_ms("44.12ms"), 44.12);
        assert_eq!(duration_ms("900us"), 0.9);
        assert_eq!(duration_ms("1.5s"), 1500.0);
    }
}
