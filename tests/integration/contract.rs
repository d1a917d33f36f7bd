//! The contract checks itself (STYLE.md §4): `tests/clients/openapi_contract.py`
//! makes real `/v1` calls (health, users, hosts, vnets, images, VMs, with
//! their 4xx errors) and checks every answer's status and body against
//! `openapi/cloudgate.yaml`, as firecracker's `swagger_validator.py` does.
//!
//! The validator (jsonschema, PyYAML) comes from the virtualenv
//! `.ci/setup` creates (`.venv`); without it the test is skipped, except
//! under CI (`CI` set), where it fails.

use std::path::Path;
use std::process::Command;

use crate::harness::{assert_script_ok, unique, venv_python, Server, ADMIN_PASSWORD};

#[test]
fn v1_answers_match_the_openapi_document() {
    let Some(python) = venv_python(
        "import jsonschema, referencing, yaml",
        "jsonschema or PyYAML",
    ) else {
        return;
    };
    let server = Server::shared();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(&python)
        .arg(root.join("tests/clients/openapi_contract.py"))
        .env("CLOUDGATE_URL", server.base())
        .env("CLOUDGATE_ADMIN_USER", "oneadmin")
        .env("CLOUDGATE_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("CLOUDGATE_SPEC", root.join("openapi/cloudgate.yaml"))
        .env("CLOUDGATE_PREFIX", unique("ct"))
        .output()
        .expect("run python");
    assert_script_ok("openapi_contract.py", &out, Some(server));
}
