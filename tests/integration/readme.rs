//! The README's walkthrough, run as pasted: every `sh` block of "First
//! steps", "OCCI" and "EC2" after the one that starts the server, in one
//! shell, against a fresh server. Only the server address (in the text and
//! as `CLOUDGATE_URL`) and the binary's path are substituted, so a README edit that breaks the walkthrough
//! breaks this test.

use std::path::Path;
use std::process::Command;

use super::harness::Server;

/// The `sh` code blocks between two headings of the README.
fn sh_blocks(readme: &str, from: &str, to: &str) -> Vec<String> {
    let start = readme
        .find(from)
        .unwrap_or_else(|| panic!("README has no {from:?}"));
    let end = readme[start..].find(to).map_or(readme.len(), |e| start + e);
    let mut blocks = Vec::new();
    let mut rest = &readme[start..end];
    while let Some(open) = rest.find("```sh\n") {
        let body = &rest[open + "```sh\n".len()..];
        let close = body.find("```").expect("unterminated code block");
        blocks.push(body[..close].to_string());
        rest = &body[close + 3..];
    }
    blocks
}

#[test]
fn the_walkthrough_works_as_pasted() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let mut blocks = sh_blocks(&readme, "## First steps", "## Configuration");
    // The first block builds and starts the server: the harness does that.
    assert!(blocks[0].contains("cloudgate serve"), "{}", blocks[0]);
    blocks.remove(0);
    let aws = root.join(".venv/bin/aws");
    if !aws.is_file() {
        assert!(
            std::env::var_os("CI").is_none(),
            "no aws CLI in .venv: run .ci/setup"
        );
        eprintln!("EC2 block skipped: no aws CLI in .venv (run .ci/setup)");
        blocks.retain(|b| !b.contains("aws --endpoint-url"));
    }

    let server = Server::start();
    let script = format!(
        "set -e -o pipefail\nshopt -s expand_aliases\nexport PATH={venv}:$PATH\n{body}",
        venv = root.join(".venv/bin").display(),
        body = blocks
            .join("\n")
            .replace("http://127.0.0.1:4567", server.base())
            .replace(
                "./target/release/cloudgate",
                env!("CARGO_BIN_EXE_cloudgate")
            ),
    );
    // The harness runs the server in the data dir's parent, as a user runs
    // it from the repository root: the CLI finds var/one_auth there.
    let dir = server.data_dir().parent().expect("parent");
    let out = Command::new("timeout")
        .args(["300", "bash", "-c", &script])
        .current_dir(dir)
        .env_remove("CLOUDGATE_AUTH")
        .env_remove("ONE_AUTH")
        // The walkthrough's server listens on the default address; this
        // one is on a free port.
        .env("CLOUDGATE_URL", server.base())
        .output()
        .expect("run bash");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the walkthrough failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}\n--- server\n{}",
        out.status,
        server.log()
    );
    // What the README says the commands print.
    assert!(stdout.contains("ID: 1"), "{stdout}");
    assert!(stdout.contains("<COMPUTE"), "{stdout}");
}
