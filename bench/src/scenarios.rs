//! The run: baselines first, then the suite's scenarios, in the order of issue #13's table.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use minhu_harness::{DispatchClient, STREET, Suite};
use minhu_proto::{
    common::v1 as common,
    dispatch::v1::{self as pb, dispatch_service_client::DispatchServiceClient},
};
use minhu_testkit::{TestDatabase, tokens};
use prost::Message as _;
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use crate::{
    Options, Report, Row,
    load::{Load, Stats},
    tools,
};

/// The seed's pump room in 中南路街道: the intakes scatter around it.
const PUMP_ROOM: (f64, f64) = (30.5335, 114.3378);
/// The storm's one place, 500 m north of it.
const STORM: (f64, f64) = (30.5380, 114.3378);
const CATEGORY: &str = "城市管理/违法建设";

async fn connections(addr: std::net::SocketAddr, n: usize) -> Result<Vec<Channel>> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(Endpoint::from_shared(format!("http://{addr}"))?.tcp_nodelay(true).connect().await?);
    }
    Ok(out)
}

fn street_clients(channels: &[Channel]) -> Vec<DispatchClient> {
    let principal = tokens::street_dispatcher(STREET);
    channels.iter().map(|c| DispatchServiceClient::with_interceptor(c.clone(), tokens::bearer(&principal))).collect()
}

/// A deterministic scatter of request `n` over ±0.003° (about ±330 m) around the pump room.
fn scatter(n: u64) -> (f64, f64) {
    let h = n.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let a = (h >> 11) as f64 / (1u64 << 53) as f64;
    let h2 = (h ^ (h >> 31)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    let b = (h2 >> 11) as f64 / (1u64 << 53) as f64;
    (PUMP_ROOM.0 + (a - 0.5) * 0.006, PUMP_ROOM.1 + (b - 0.5) * 0.006)
}

fn intake((lat, lng): (f64, f64)) -> pb::CreateCaseRequest {
    pb::CreateCaseRequest {
        case: Some(pb::Case {
            channel: pb::Channel::GridWorker as i32,
            category: CATEGORY.into(),
            title: "水泵房被违规占用".into(),
            description: "水泵房被改成商铺，墙体被打通".into(),
            place: Some(pb::Place {
                address: "中南路街海运宿舍".into(),
                location: Some(common::GeoPoint { latitude: lat, longitude: lng }),
            }),
            urgency: pb::Urgency::Normal as i32,
            reporter: Some(pb::Reporter { name: "张三".into(), phone: "13812341234".into(), ..Default::default() }),
            ..Default::default()
        }),
        request_id: uuid::Uuid::now_v7().to_string(),
        ..Default::default()
    }
}

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).map(str::to_owned))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<f64>().ok()))
        .map_or(0.0, |kb| kb / 1024.0)
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cpu}, {cores} cores")
}

fn ms(x: f64) -> String {
    format!("{x:.2} ms")
}

fn rate(s: &Stats) -> String {
    format!("{:.0} req/s, p50 {:.2} / p99 {:.2} / p999 {:.2} ms", s.per_second, s.p50_ms, s.p99_ms, s.p999_ms)
}

async fn echo_load(addr: std::net::SocketAddr, load: Load) -> Result<Stats> {
    let clients: Vec<_> =
        connections(addr, load.in_flight.clamp(1, 4)).await?.into_iter().map(HealthClient::new).collect();
    Ok(load
        .run(&clients, |mut c, _| async move { c.check(HealthCheckRequest { service: String::new() }).await.map(drop) })
        .await)
}

async fn intake_load(clients: &[DispatchClient], load: Load) -> Stats {
    load.run(clients, |mut c, n| async move { c.create_case(intake(scatter(n))).await.map(drop) }).await
}

pub(crate) async fn run(o: Options) -> Result<Report> {
    let mode = if o.storm >= 1000 {
        "full"
    } else if o.storm >= 200 {
        "quick"
    } else {
        "tiny"
    };
    let mut report = Report { machine: machine(), mode: mode.into(), rows: Vec::new() };
    let rows = &mut report.rows;
    let window = |in_flight| Load { in_flight, warmup: o.warmup, duration: o.duration };

    // ---- Baselines: Postgres, Redis, a bare tonic server.
    let pg = TestDatabase::create("bench").await;
    let mut insert = Vec::new();
    let pgbench_ok = tools::available("pgbench") && tools::available("psql");
    if pgbench_ok {
        tools::pgbench_setup(pg.url())?;
        for clients in [1, 8, 32] {
            let r = tools::pgbench(pg.url(), "insert.sql", clients, o.duration)?;
            rows.push(Row::info(
                &format!("pgbench single-row INSERT, 3 indexes, {clients} clients"),
                format!("{:.0} tps, avg {}", r.tps, ms(r.latency_ms)),
                String::new(),
                None,
            ));
            insert.push((clients, r));
        }
    } else {
        rows.push(Row::not_measured("pgbench baselines", "", "pgbench/psql not on PATH"));
    }
    let case_rows = if pgbench_ok { Some(tools::pgbench(pg.url(), "case_rows.sql", 8, o.duration)?) } else { None };
    if let Some(r) = case_rows {
        rows.push(Row::info(
            "pgbench case + three department rows (one transaction), 8 clients",
            format!("{:.0} tps, avg {}", r.tps, ms(r.latency_ms)),
            String::new(),
            None,
        ));
    }
    let select = if pgbench_ok { Some(tools::pgbench(pg.url(), "select.sql", 32, o.duration)?) } else { None };
    if let Some(r) = select {
        rows.push(Row::info(
            "pgbench select by primary key, 32 clients",
            format!("{:.0} tps, avg {}", r.tps, ms(r.latency_ms)),
            String::new(),
            None,
        ));
    }
    drop(pg);
    let redis_url = std::env::var("MINHU_TEST_REDIS_URL").unwrap_or_else(|_| minhu_testkit::DEFAULT_REDIS_URL.into());
    let zadd = if tools::available("redis-benchmark") {
        let requests = (o.duration.as_secs_f64() * 40_000.0) as u64;
        match tools::redis_zadd(&redis_url, requests.max(1000), 1_000_000) {
            Ok(r) => {
                rows.push(Row::info(
                    "redis-benchmark ZADD, random members of ~1M",
                    format!("{r:.0}/s"),
                    String::new(),
                    None,
                ));
                Some(r)
            }
            Err(e) => {
                rows.push(Row::not_measured("redis-benchmark ZADD", "", &format!("{e:#}")));
                None
            }
        }
    } else {
        rows.push(Row::not_measured("redis-benchmark ZADD", "", "redis-benchmark not on PATH"));
        None
    };
    let _ = zadd;

    let (echo_addr, echo_stop) = tools::echo_server(true).await?;
    let (nagle_addr, nagle_stop) = tools::echo_server(false).await?;
    let echo1 = echo_load(echo_addr, window(1)).await?;
    let echo32 = echo_load(echo_addr, window(32)).await?;
    let nagle1 = echo_load(nagle_addr, window(1)).await?;
    rows.push(Row::info(
        "bare tonic server (health Check), 1 in flight, TCP_NODELAY",
        rate(&echo1),
        String::new(),
        None,
    ));
    rows.push(Row::info("bare tonic server, 32 in flight over 4 connections", rate(&echo32), String::new(), None));
    rows.push(Row::info(
        "bare tonic server, 1 in flight, no TCP_NODELAY (our client)",
        rate(&nagle1),
        String::new(),
        None,
    ));
    let h2load_ok = tools::available("h2load");
    let h2_requests = (o.duration.as_secs_f64() * 200.0).max(20.0) as u64;
    let health_body = HealthCheckRequest { service: String::new() }.encode_to_vec();
    if h2load_ok {
        for (addr, label) in [(echo_addr, "TCP_NODELAY"), (nagle_addr, "no TCP_NODELAY")] {
            let r = tools::h2load(addr, "/grpc.health.v1.Health/Check", &health_body, &[], h2_requests, 1)?;
            rows.push(Row::info(
                &format!("h2load → bare tonic server, 1 in flight, {label}"),
                format!("{:.0} req/s, mean {}, {} failed", r.per_second, ms(r.mean_ms), r.failed),
                String::new(),
                None,
            ));
        }
    } else {
        rows.push(Row::not_measured("h2load checks", "", "h2load not on PATH (apt-get install nghttp2-client)"));
    }
    let _ = nagle_stop.send(());

    // ---- The suite, in this process.
    let suite = Suite::start().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_idle = rss_mib();
    let dispatch_addr = suite.dispatch_service().addr();
    let clients = street_clients(&connections(dispatch_addr, 4).await?);
    let one = street_clients(&connections(dispatch_addr, 1).await?);
    let pool = suite.dispatch_pool().clone();

    // Intake at 1 / 8 / 32 in flight, against the same-run INSERT.
    let intake1 = intake_load(&one, window(1)).await;
    rows.push(Row::target(
        "CreateCase (intake) 1 in flight",
        rate(&intake1),
        String::new(),
        None,
        "p50 ≤ 2 ms",
        intake1.p50_ms <= 2.0,
    ));
    for in_flight in [8, 32] {
        let s = intake_load(&clients, window(in_flight)).await;
        let base = insert.iter().find(|(c, _)| *c == in_flight).map(|(_, r)| *r);
        let ratio = base.map(|b| s.per_second / b.tps);
        let met = base.is_some_and(|b| s.per_second >= 0.7 * b.tps && s.p99_ms <= 3.0 * b.latency_ms);
        rows.push(Row::target(
            &format!("CreateCase (intake) {in_flight} in flight"),
            rate(&s),
            base.map(|b| format!("INSERT {:.0} tps, avg {}", b.tps, ms(b.latency_ms))).unwrap_or_default(),
            ratio,
            "≥ 0.7 × INSERT tps; p99 ≤ 3 × its avg latency",
            met,
        ));
    }
    if h2load_ok {
        // The call that showed the 44 ms floor, by a neutral client at one in flight.
        let token = tokens::token(&tokens::street_dispatcher(STREET));
        let fresh = clients[0].clone().create_case(intake(scatter(u64::MAX - 1))).await?.into_inner();
        let get = pb::GetCaseRequest { case_id: fresh.id.clone() }.encode_to_vec();
        let r = tools::h2load(
            dispatch_addr,
            "/minhu.dispatch.v1.DispatchService/GetCase",
            &get,
            &[("authorization", format!("Bearer {token}"))],
            h2_requests,
            1,
        )?;
        rows.push(Row::info(
            "h2load → GetCase, 1 in flight (the stack sets TCP_NODELAY)",
            format!("{:.0} req/s, mean {}, {} failed", r.per_second, ms(r.mean_ms), r.failed),
            String::new(),
            None,
        ));
        // CreateCase without a request_id: no idempotency key, so every request is a new case.
        let mut create = intake(scatter(u64::MAX - 2));
        create.request_id.clear();
        let r = tools::h2load(
            dispatch_addr,
            "/minhu.dispatch.v1.DispatchService/CreateCase",
            &create.encode_to_vec(),
            &[("authorization", format!("Bearer {token}"))],
            h2_requests.min(400),
            1,
        )?;
        rows.push(Row::target(
            "h2load → CreateCase, 1 in flight",
            format!("{:.0} req/s, mean {}, {} failed", r.per_second, ms(r.mean_ms), r.failed),
            format!("our client: p50 {}", ms(intake1.p50_ms)),
            None,
            "no 44 ms floor (mean < 40 ms)",
            r.mean_ms < 40.0 && r.failed == 0,
        ));
    }

    // GetCase through the whole stack against the bare server.
    let fresh = clients[0].clone().create_case(intake(scatter(u64::MAX))).await?.into_inner();
    let id = fresh.id.clone();
    let get = window(32)
        .run(&clients, move |mut c, _| {
            let id = id.clone();
            async move { c.get_case(pb::GetCaseRequest { case_id: id }).await.map(drop) }
        })
        .await;
    rows.push(Row::target(
        "GetCase of a fresh case, 32 in flight",
        rate(&get),
        format!("bare tonic {}", rate(&echo32)),
        Some(get.per_second / echo32.per_second.max(1e-9)),
        "≥ 0.75 × echo; p99 ≤ 1.5 × echo p99",
        get.per_second >= 0.75 * echo32.per_second && get.p99_ms <= 1.5 * echo32.p99_ms,
    ));

    // The storm: appeals one after another at one place.
    let (links_before,): (i64,) = sqlx::query_as("SELECT count(*) FROM case_links").fetch_one(&pool).await?;
    let mut lat = Vec::with_capacity(o.storm);
    let mut lead = String::new();
    for _ in 0..o.storm {
        let t = Instant::now();
        let c = one[0].clone().create_case(intake(STORM)).await.context("a storm intake")?.into_inner();
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
        if lead.is_empty() {
            lead = c.id;
        }
    }
    let k = (o.storm / 10).max(1);
    let median = |xs: &[f64]| {
        let mut v = xs.to_vec();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (first, last) = (median(&lat[1..=k.min(lat.len() - 1)]), median(&lat[lat.len() - k..]));
    let (members, links_after): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM cases WHERE lead_case_id = $1::uuid), (SELECT count(*) FROM case_links)",
    )
    .bind(&lead)
    .fetch_one(&pool)
    .await?;
    rows.push(Row::target(
        &format!("storm: {} appeals at one place, one at a time", o.storm),
        format!("last {k}: median {}", ms(last)),
        format!("first {k} (after the lead): median {}", ms(first)),
        Some(last / first.max(1e-9)),
        "last within 1.2 × first",
        last <= 1.2 * first,
    ));
    rows.push(Row::target(
        "storm: rows stored",
        format!("{} cases in one cluster, {} link rows", members + 1, links_after - links_before),
        format!("{} appeals", o.storm),
        Some((members + 1) as f64 / o.storm as f64),
        "linear (one row per appeal)",
        members + 1 == o.storm as i64 && links_after == links_before,
    ));

    // Intake as the month grows: the same street and category, loaded by SQL.
    sqlx::query(
        "INSERT INTO cases (id, street_id, channel, source_reference, category, urgency, state, overdue, search_text, \
         latitude, longitude, reporter_sealed, doc, trail_length, trail_head, created_at, updated_at) \
         SELECT gen_random_uuid(), street_id, channel, NULL, category, urgency, state, overdue, search_text, \
         $2 + (random() - 0.5) * 0.024, $3 + (random() - 0.5) * 0.024, reporter_sealed, doc, trail_length, trail_head, \
         created_at, updated_at FROM cases, generate_series(1, $4) WHERE id = $1::uuid",
    )
    .bind(&fresh.id)
    .bind(PUMP_ROOM.0)
    .bind(PUMP_ROOM.1)
    .bind(o.month as i32)
    .execute(&pool)
    .await?;
    sqlx::query("ANALYZE cases").execute(&pool).await?;
    let grown = intake_load(&one, window(1)).await;
    rows.push(Row::target(
        &format!("CreateCase 1 in flight with {} more cases in the street and category", o.month),
        rate(&grown),
        format!("same, before: p50 {}", ms(intake1.p50_ms)),
        Some(grown.p50_ms / intake1.p50_ms.max(1e-9)),
        "p50 within 1.2 × the empty month",
        grown.p50_ms <= 1.2 * intake1.p50_ms,
    ));

    let rss_loaded = rss_mib();
    rows.push(Row::info(
        "memory: RSS of the five services and this load generator, one process",
        format!("idle {rss_idle:.0} MiB, after the run {rss_loaded:.0} MiB"),
        String::new(),
        None,
    ));
    rows.push(Row::not_measured(
        "memory per service",
        "≤ 50 MiB idle, ≤ 250 MiB loaded",
        "the suite runs in one process",
    ));
    for (scenario, target) in [
        ("a call to three departments with sign deadlines armed", "≥ 1.0 × case + three rows"),
        ("the full lifecycle", "cases/s ≥ 0.6 × (INSERT tps ÷ commits per case)"),
        ("deadlines: arming, burst of 1M, steady 2,000/s", "arming ≥ 0.5 × ZADD; burst ≥ 70,000/s; p99 lateness ≤ 1 s"),
        ("appraisal over 1M call records", "recompute ≤ 2 s; league table p99 ≤ 10 ms"),
        ("1,000 WatchCases streams", "every event, p99 lag ≤ 100 ms"),
    ] {
        rows.push(Row::not_measured(scenario, target, "not built in this harness yet"));
    }
    let _ = echo_stop.send(());
    suite.stop().await;
    Ok(report)
}
