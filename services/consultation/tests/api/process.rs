//! The binary itself: a bad configuration stops it before it binds, naming the variable.

use tokio::process::Command;

fn binary() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_minhu-consultation"));
    command.env_clear().env("PATH", std::env::var("PATH").unwrap_or_default());
    command
}

#[tokio::test]
async fn a_missing_database_url_or_service_token_stops_the_binary_naming_the_variable() {
    let output = binary().env("MINHU_AUTH_DEV", "true").output().await.unwrap();
    assert_eq!(output.status.code(), Some(64), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("MINHU_CONSULTATION_DATABASE_URL"), "{output:?}");

    let output =
        binary().env("MINHU_CONSULTATION_DATABASE_URL", "postgres://nobody@127.0.0.1:1/none").output().await.unwrap();
    assert_eq!(output.status.code(), Some(64), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("MINHU_CONSULTATION_SERVICE_TOKEN"), "{output:?}");

    let output = binary()
        .env("MINHU_AUTH_DEV", "true")
        .env("MINHU_CONSULTATION_DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
        .env("MINHU_CONSULTATION_CALENDAR", "{\"weekend\": [\"Someday\"]}")
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(64), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("MINHU_CONSULTATION_CALENDAR"), "{output:?}");
}
