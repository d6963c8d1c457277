//! Statement counts per RPC, from Postgres' own `pg_stat_statements`. Ignored: it needs a
//! server started with `shared_preload_libraries=pg_stat_statements` (see the README's
//! figures), pointed at with `MINHU_TEST_DATABASE_URL`; run it with `--run-ignored only`.

use sqlx::{Connection as _, PgConnection};

use crate::helpers::{TestApp, intake, request_id};

/// Statements the dispatch database ran during `rpc`.
async fn statements<F: Future>(app: &TestApp, rpc: F) -> (F::Output, i64, Vec<(String, i64)>) {
    let url = std::env::var("MINHU_TEST_DATABASE_URL").expect("MINHU_TEST_DATABASE_URL");
    let mut admin = PgConnection::connect(&url).await.unwrap();
    let (db,): (sqlx::postgres::types::Oid,) =
        sqlx::query_as("SELECT oid FROM pg_database WHERE datname = current_database()")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    sqlx::query("SELECT pg_stat_statements_reset(0, $1, 0)").bind(db).execute(&mut admin).await.unwrap();
    let out = rpc.await;
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT query, calls FROM pg_stat_statements WHERE dbid = $1 AND query NOT LIKE '%event_counter' \
         AND query NOT LIKE '%pg_stat_statements%' ORDER BY calls DESC",
    )
    .bind(db)
    .fetch_all(&mut admin)
    .await
    .unwrap();
    (out, rows.iter().map(|r| r.1).sum(), rows)
}

#[tokio::test]
#[ignore = "needs pg_stat_statements"]
async fn statements_per_sign_call_and_create_case() {
    let app = TestApp::spawn().await;
    let (_, create, rows) = statements(&app, app.street().create_case(intake(&request_id()))).await;
    eprintln!("CreateCase: {create} statements");
    for r in &rows {
        eprintln!("  {:>3} {}", r.1, r.0.chars().take(110).collect::<String>());
    }
    let (_, calls) = app.called_case(&["chengguan", "fangguan", "gongan"]).await;
    let (_, sign, rows) = statements(&app, app.sign(&calls[0])).await;
    eprintln!("SignCall (three calls in the case): {sign} statements");
    for r in &rows {
        eprintln!("  {:>3} {}", r.1, r.0.chars().take(110).collect::<String>());
    }
}
