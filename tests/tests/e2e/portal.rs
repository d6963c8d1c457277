//! What a portal does first: generate a client from the contracts with `buf generate` and
//! the example template (`examples/buf.gen.yaml`), with buf and the protoc-gen-es plugin
//! from npm under `target/` (`node.rs`), no other network.

use std::{path::Path, process::Command};

use crate::node;

#[test]
fn buf_generate_with_the_example_template_writes_a_typescript_client_for_every_service() {
    let packages = node::packages();
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace root");
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("buf-generate-{}", uuid::Uuid::new_v4()));
    let bin = packages.join("node_modules/.bin");
    let path = std::env::join_paths(
        std::iter::once(bin.clone()).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())),
    )
    .expect("a PATH");

    let generated = Command::new(bin.join("buf"))
        .args(["generate", "--template", "examples/buf.gen.yaml", "--output"])
        .arg(&out)
        .current_dir(workspace)
        // protoc-gen-es is found on the PATH, as `local: protoc-gen-es` says.
        .env("PATH", path)
        .output()
        .expect("running buf");
    assert!(
        generated.status.success(),
        "buf generate failed ({}):\n{}{}",
        generated.status,
        String::from_utf8_lossy(&generated.stdout),
        String::from_utf8_lossy(&generated.stderr)
    );

    for (file, service) in [
        ("minhu/roster/v1/roster_pb.ts", "RosterService"),
        ("minhu/dispatch/v1/dispatch_pb.ts", "DispatchService"),
        ("minhu/appraisal/v1/appraisal_pb.ts", "AppraisalService"),
    ] {
        let path = out.join("gen/es").join(file);
        let source =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{} was not generated: {e}", path.display()));
        assert!(source.contains(&format!("export const {service}")), "{file} describes {service}");
    }
    let common = out.join("gen/es/minhu/common/v1/common_pb.ts");
    assert!(common.is_file(), "the shared types too");
    let _ = std::fs::remove_dir_all(&out);
}
