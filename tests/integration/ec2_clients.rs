//! Real EC2 clients, unmodified, against the real server (STYLE.md §4,
//! spec/EC2.md §9): boto3 with SigV4 and SigV2, the aws CLI, and
//! libcloud's EC2 driver with signature versions 2 and 4 (including
//! `create_node` in a location from `list_locations`), each running
//! its script under `tests/clients/` with a user and an image of its own;
//! and the golden response files checked against botocore's model.
//!
//! The clients come from the virtualenv `.ci/setup` creates (`.venv`). A
//! missing client skips these tests, except under CI (`CI` set), where it
//! fails them.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::ec2::Client;
use crate::harness::{assert_script_ok, venv_python, Server};

/// The virtualenv's Python, if it has boto3, the aws CLI and libcloud.
fn python() -> Option<PathBuf> {
    venv_python(
        "import boto3, awscli, libcloud.compute.drivers.ec2",
        "boto3, awscli or libcloud",
    )
}

/// Runs `script` with `args` as a fresh user owning a registered image.
fn run(server: &Server, script: &str, args: &[&str]) {
    let Some(python) = python() else {
        return;
    };
    let user = Client::new(server, "ec2c");
    let image = user.image();
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/clients")
        .join(script);
    let out = Command::new(&python)
        .arg(&path)
        .args(args)
        .env("CLOUDGATE_URL", server.base())
        .env("EC2_USER", &user.user)
        .env("EC2_SECRET", &user.secret)
        .env("EC2_IMAGE", &image)
        .output()
        .expect("run python");
    assert_script_ok(&format!("{script} {args:?}"), &out, Some(server));
}

#[test]
fn ec2_boto3_sigv4_runs_every_action_and_waiter() {
    run(Server::shared(), "ec2_boto3.py", &["v4"]);
}

#[test]
fn ec2_boto3_sigv2_runs_every_action_and_waiter() {
    run(Server::shared(), "ec2_boto3.py", &["v2"]);
}

#[test]
fn ec2_aws_cli_runs_its_commands_and_waiters() {
    run(Server::shared(), "ec2_awscli.py", &[]);
}

#[test]
fn ec2_libcloud_sigv2_lists_creates_and_destroys() {
    run(Server::shared(), "ec2_libcloud.py", &["2"]);
}

#[test]
fn ec2_libcloud_sigv4_lists_creates_and_destroys() {
    run(Server::shared(), "ec2_libcloud.py", &["4"]);
}

/// The golden responses use only names botocore's model of EC2 knows
/// (`tests/clients/ec2_golden_shapes.py`): boto3 drops a misnamed element
/// silently, so no client flow above would notice one.
#[test]
fn ec2_golden_files_match_botocores_model() {
    let Some(python) = python() else {
        return;
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(&python)
        .arg(root.join("tests/clients/ec2_golden_shapes.py"))
        .arg(root.join("tests/data/ec2"))
        .output()
        .expect("run python");
    assert_script_ok("ec2_golden_shapes.py", &out, None);
}
