//! A client nobody here wrote: `tests/python/interop.py`, Python's grpcio with stubs that
//! grpcio-tools generates from `proto/`, drives intake → triage → call → watch → sign
//! against the running suite and reads a rich error's `grpc-status-details-bin`.

use std::{path::Path, process::Stdio, time::Duration};

use minhu_e2e::{STREET, Suite};
use minhu_testkit::tokens;

use crate::python;

/// The script's own waits are 15 s each; this bounds the whole run, stub generation included.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread")]
async fn a_python_grpcio_client_follows_an_appeal_from_intake_to_a_watched_sign_and_reads_bad_request_details() {
    // The venv (slow only the first time) is made while the services start.
    let (python, suite) = tokio::join!(tokio::task::spawn_blocking(python::interpreter), Suite::start());
    let python = python.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));

    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace root");
    let run = tokio::process::Command::new(&python)
        .arg(workspace.join("tests/python/interop.py"))
        .current_dir(workspace)
        .env_remove("PYTHONPATH")
        .env_remove("PYTHONHOME")
        .env("PYTHONUNBUFFERED", "1")
        .env("MINHU_E2E_DISPATCH_ADDR", suite.dispatch_service().addr().to_string())
        .env("MINHU_E2E_PROTO_DIR", workspace.join("proto"))
        .env("MINHU_E2E_STREET_TOKEN", tokens::token(&tokens::street_dispatcher(STREET)))
        .env("MINHU_E2E_DEPARTMENT_TOKEN", tokens::token(&tokens::department_dispatcher("gongan")))
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(SCRIPT_TIMEOUT, run)
        .await
        .unwrap_or_else(|_| panic!("interop.py did not finish within {SCRIPT_TIMEOUT:?}"))
        .expect("running interop.py");

    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    println!("{stdout}");
    assert!(
        output.status.success(),
        "interop.py failed ({}):\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
        output.status
    );
    assert!(stdout.contains("interop: all checks passed"), "interop.py exited 0 without finishing:\n{stdout}");
    suite.stop().await;
}
