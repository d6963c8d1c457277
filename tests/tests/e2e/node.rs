//! The Node.js packages the gRPC-Web and `buf generate` tests run, installed with npm into
//! `target/e2e-node` (never globally) from a fixed `package.json`, on first use, and reused
//! while that `package.json` is unchanged. Built under the same kind of lock directory as
//! the Python venv (`python.rs`), since several test processes may get here at once.

use std::{io::ErrorKind, path::PathBuf, process::Command, time::Instant};

use crate::python::{DirLock, target_dir};

/// Exact versions: a Connect client with its gRPC-Web transport for Node, the protobuf
/// runtime it builds messages with (from the descriptors, no generated code), and buf with
/// the protoc-gen-es plugin for the portal code-generation example.
const PACKAGE_JSON: &str = r#"{
  "name": "minhu-e2e-node",
  "private": true,
  "type": "module",
  "dependencies": {
    "@bufbuild/buf": "1.75.0",
    "@bufbuild/protobuf": "2.17.0",
    "@bufbuild/protoc-gen-es": "2.17.0",
    "@connectrpc/connect": "2.3.0",
    "@connectrpc/connect-node": "2.3.0"
  }
}
"#;

/// Written last into a finished install: the `package.json` it was made from.
const MARKER: &str = "minhu-e2e-installed.json";

/// The directory whose `node_modules` holds the packages, installing them first if needed.
///
/// # Panics
///
/// When `node` or `npm` is missing (with how to install them), or npm fails (with its
/// output).
pub(crate) fn packages() -> PathBuf {
    let started = Instant::now();
    let target = target_dir();
    let dir = target.join("e2e-node");
    if ready(&dir) {
        return dir;
    }
    std::fs::create_dir_all(&target).expect("creating the target directory");
    let _lock = DirLock::acquire(target.join("e2e-node.lock"));
    if ready(&dir) {
        return dir;
    }
    for tool in ["node", "npm"] {
        match Command::new(tool).arg("--version").output() {
            Err(e) if e.kind() == ErrorKind::NotFound => panic!(
                "{tool} is not installed, and the gRPC-Web test runs a Node.js client: install Node.js 18 or \
                 newer (Debian/Ubuntu: `apt-get install nodejs npm`) and run the test again"
            ),
            Err(e) => panic!("running {tool} --version: {e}"),
            Ok(_) => {}
        }
    }
    std::fs::create_dir_all(&dir).expect("creating target/e2e-node");
    std::fs::write(dir.join("package.json"), PACKAGE_JSON).expect("writing package.json");
    let installed = Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--loglevel=error", "--no-package-lock"])
        .current_dir(&dir)
        .output()
        .expect("running npm install");
    assert!(
        installed.status.success(),
        "npm install in {} failed ({}):\n{}{}",
        dir.display(),
        installed.status,
        String::from_utf8_lossy(&installed.stdout),
        String::from_utf8_lossy(&installed.stderr)
    );
    std::fs::write(dir.join(MARKER), PACKAGE_JSON).expect("marking the install finished");
    eprintln!("node packages: installed into {} in {:.1?}", dir.display(), started.elapsed());
    dir
}

fn ready(dir: &std::path::Path) -> bool {
    std::fs::read_to_string(dir.join(MARKER)).is_ok_and(|made_from| made_from == PACKAGE_JSON)
        && dir.join("node_modules/@connectrpc/connect-node/package.json").is_file()
}
