//! The Python the interop test runs: a venv under the target directory with pinned
//! `grpcio`, `grpcio-tools`, `protobuf` and `googleapis-common-protos` from PyPI, made on
//! first use and reused while it still imports them.
//!
//! Several test processes may get here at once (two `cargo nextest` runs, a retry): the
//! venv is built under a lock directory (`mkdir` is atomic), and one finished by another
//! process is taken as it is.

use std::{
    io::ErrorKind,
    path::{Path, PathBuf},
    process::{Command, Output},
    time::{Duration, Instant, SystemTime},
};

/// Versions pip resolves together for CPython 3.11 (grpcio-tools 1.85.1 needs protobuf
/// >= 7.35.1, < 8; googleapis-common-protos 1.76 accepts protobuf 6.33.5 to < 8).
const PACKAGES: [&str; 4] =
    ["grpcio==1.85.3", "grpcio-tools==1.85.1", "protobuf==7.36.2", "googleapis-common-protos==1.76.0"];

/// What the script imports; a venv where this fails is rebuilt.
const IMPORTS: &str =
    "import grpc, grpc_tools.protoc, google.protobuf, google.rpc.status_pb2, google.rpc.error_details_pb2";

/// Written last into a finished venv: the packages it was made with.
const MARKER: &str = "minhu-e2e-packages.txt";

/// A lock older than this was left by a process that died without removing it.
const STALE_LOCK: Duration = Duration::from_secs(15 * 60);

/// How long to wait for another process's build before giving up.
const LOCK_WAIT: Duration = Duration::from_secs(10 * 60);

/// `target/` (or `CARGO_TARGET_DIR`): the parent of this test's `CARGO_TARGET_TMPDIR`.
pub(crate) fn target_dir() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().unwrap_or(tmp).to_path_buf()
}

/// The venv's interpreter, creating the venv first if it is missing or broken.
///
/// # Panics
///
/// When `python3` is not installed (with how to install it), or the venv or the packages
/// cannot be installed (with the tool's output).
pub(crate) fn interpreter() -> PathBuf {
    let started = Instant::now();
    let target = target_dir();
    let venv = target.join("e2e-python-venv");
    let python = venv.join("bin").join("python");
    if ready(&venv, &python) {
        eprintln!("python venv: reused {} in {:.1?}", venv.display(), started.elapsed());
        return python;
    }
    std::fs::create_dir_all(&target).expect("creating the target directory");
    let _lock = DirLock::acquire(target.join("e2e-python-venv.lock"));
    if ready(&venv, &python) {
        eprintln!("python venv: made by another process, waited {:.1?}", started.elapsed());
        return python;
    }
    create(&venv, &python);
    eprintln!("python venv: created {} in {:.1?}", venv.display(), started.elapsed());
    python
}

/// True when `venv` was finished with today's `PACKAGES` and still imports them.
fn ready(venv: &Path, python: &Path) -> bool {
    std::fs::read_to_string(venv.join(MARKER)).is_ok_and(|made_with| made_with == PACKAGES.join("\n"))
        && Command::new(python).args(["-c", IMPORTS]).output().is_ok_and(|out| out.status.success())
}

fn create(venv: &Path, python: &Path) {
    let version = Command::new("python3").arg("--version").output();
    match version {
        Err(e) if e.kind() == ErrorKind::NotFound => panic!(
            "python3 is not installed, and the interop test runs a Python gRPC client: install it \
             (Debian/Ubuntu: `apt-get install python3 python3-venv`) and run the test again"
        ),
        Err(e) => panic!("running python3 --version: {e}"),
        Ok(out) => succeeded("python3 --version", &out),
    }
    if venv.exists() {
        std::fs::remove_dir_all(venv).unwrap_or_else(|e| panic!("removing the stale venv {}: {e}", venv.display()));
    }
    let made = Command::new("python3").arg("-m").arg("venv").arg(venv).output().expect("running python3 -m venv");
    if !made.status.success() {
        panic!(
            "python3 -m venv {} failed; on Debian/Ubuntu the venv module is the package python3-venv \
             (`apt-get install python3-venv`):\n{}",
            venv.display(),
            String::from_utf8_lossy(&made.stderr)
        );
    }
    let installed = Command::new(python)
        .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-input"])
        .args(PACKAGES)
        .output()
        .expect("running pip");
    succeeded(&format!("pip install {}", PACKAGES.join(" ")), &installed);
    let imported = Command::new(python).args(["-c", IMPORTS]).output().expect("running the venv's python");
    succeeded("importing the installed packages", &imported);
    std::fs::write(venv.join(MARKER), PACKAGES.join("\n")).expect("marking the venv finished");
}

fn succeeded(what: &str, output: &Output) {
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A lock held by the existence of a directory, removed on drop (the Node packages of
/// `node.rs` are installed under one too).
pub(crate) struct DirLock(PathBuf);

impl DirLock {
    pub(crate) fn acquire(path: PathBuf) -> Self {
        let give_up = Instant::now() + LOCK_WAIT;
        loop {
            match std::fs::create_dir(&path) {
                Ok(()) => {
                    // Who holds it, so a waiter can tell a crashed holder from a slow one.
                    let _ = std::fs::write(path.join("pid"), std::process::id().to_string());
                    return Self(path);
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                    if is_stale(&path) {
                        eprintln!("breaking the stale lock {}", path.display());
                        let _ = std::fs::remove_dir_all(&path);
                        continue;
                    }
                    assert!(Instant::now() < give_up, "{} was held for more than {LOCK_WAIT:?}", path.display());
                    // Another process is building the venv; std offers no cross-process
                    // wake-up (File::lock is newer than our MSRV), so look again shortly.
                    std::thread::sleep(Duration::from_millis(250));
                }
                Err(e) => panic!("creating the lock {}: {e}", path.display()),
            }
        }
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The holder is gone (its pid no longer runs) or the lock is older than any build takes.
fn is_stale(lock: &Path) -> bool {
    let holder_gone = std::fs::read_to_string(lock.join("pid"))
        .ok()
        .and_then(|pid| pid.trim().parse::<u32>().ok())
        // Only where /proc lists the running processes (Linux); elsewhere age alone decides.
        .is_some_and(|pid| Path::new("/proc/self").exists() && !Path::new(&format!("/proc/{pid}")).exists());
    let too_old = std::fs::metadata(lock)
        .and_then(|m| m.modified())
        .is_ok_and(|at| SystemTime::now().duration_since(at).unwrap_or_default() > STALE_LOCK);
    holder_gone || too_old
}
