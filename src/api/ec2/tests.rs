//! Every EC2 response document and the error document, rendered from
//! fixed values and compared with its golden file under `tests/data/ec2/`
//! (STYLE.md §1.11; `CLOUDGATE_REGENERATE=1 cargo test --lib api::ec2`
//! rewrites them — review the diff before committing it).

use std::path::PathBuf;

use super::action::Action;
use super::error::Ec2Error;
use super::ids::Resource;
use super::xml::*;
use crate::core::{self, Kind};

/// A fixed request id, so that the files do not change from run to run.
const ID: &str = "0b5c4e9a-6a3e-4c52-9a53-2f1f3e0f2a11";

/// 2010-01-15T10:20:30Z.
const T: i64 = 1_263_550_830;

fn golden(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/ec2")
        .join(format!("{name}.xml"));
    if std::env::var_os("CLOUDGATE_REGENERATE").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, actual).expect("write golden file");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; create it with CLOUDGATE_REGENERATE=1 cargo test --lib api::ec2",
            path.display()
        )
    });
    assert_eq!(
        actual,
        expected,
        "{} differs; if the change is intended: CLOUDGATE_REGENERATE=1 cargo test --lib api::ec2 \
         and review the diff",
        path.display()
    );
}

fn modern() -> Namespace {
    Namespace::for_version(Some("2016-11-15"))
}

fn check(name: &str, doc: &dyn Document, ns: &Namespace) {
    golden(name, &render(doc, ns, ID));
}

fn tag(key: &str, value: &str) -> Tag {
    Tag {
        key: key.into(),
        value: value.into(),
    }
}

fn instance(id: u64, state: InstanceState, ip: &str) -> Instance {
    Instance {
        id,
        image_id: "ami-00000005".into(),
        state,
        ip: ip.into(),
        key_name: Some("default".into()),
        launch_index: 0,
        instance_type: "m1.small".into(),
        launch_time: T,
        zone: "default".into(),
        client_token: Some("9f3c1e4e-token".into()),
        reason: String::new(),
        tags: Vec::new(),
    }
}

#[test]
fn register_image() {
    // econe-upload's version: the namespace echoes it.
    check(
        "register_image",
        &ImageIdResponse { image_id: 5 },
        &Namespace::for_version(Some("2008-12-01")),
    );
}

#[test]
fn return_true_documents() {
    for (name, action) in [
        ("deregister_image", Action::DeregisterImage),
        ("reboot_instances", Action::RebootInstances),
        ("delete_key_pair", Action::DeleteKeyPair),
        ("create_tags", Action::CreateTags),
        ("delete_tags", Action::DeleteTags),
    ] {
        check(name, &ReturnResponse { action }, &modern());
    }
}

#[test]
fn describe_images() {
    let images = vec![
        ImageItem {
            id: 5,
            location: "ubuntu".into(),
            state: "available",
            owner: "alice".into(),
            public: false,
            architecture: "x86_64".into(),
            name: "ubuntu".into(),
            description: None,
            created: T,
            tags: vec![tag("Name", "web base")],
        },
        ImageItem {
            id: 6,
            location: "debian & co".into(),
            state: "pending",
            owner: "oneadmin".into(),
            public: true,
            architecture: "i386".into(),
            name: "debian & co".into(),
            description: Some("<shared>".into()),
            created: T + 60,
            tags: Vec::new(),
        },
    ];
    check("describe_images", &ImagesResponse { images }, &modern());
    check(
        "describe_images_empty",
        &ImagesResponse { images: Vec::new() },
        &modern(),
    );
}

#[test]
fn run_instances() {
    let mut second = instance(8, InstanceState::Pending, "");
    second.launch_index = 1;
    let doc = RunResponse {
        reservation: Reservation {
            id: "r-0000002a".into(),
            owner: "alice".into(),
            instances: vec![instance(7, InstanceState::Pending, "192.168.0.10"), second],
        },
    };
    check("run_instances", &doc, &modern());
}

#[test]
fn describe_instances() {
    let mut tagged = instance(7, InstanceState::Running, "192.168.0.10");
    tagged.tags = vec![tag("Name", "web"), tag("env", "")];
    let mut other = instance(9, InstanceState::Terminated, "");
    other.key_name = None;
    other.client_token = None;
    let doc = InstancesResponse {
        reservations: vec![
            Reservation {
                id: "r-0000002a".into(),
                owner: "alice".into(),
                instances: vec![tagged],
            },
            Reservation {
                id: "default".into(),
                owner: "alice".into(),
                instances: vec![other],
            },
        ],
        next_token: Some("9".into()),
    };
    check("describe_instances", &doc, &modern());
    check(
        "describe_instances_empty",
        &InstancesResponse {
            reservations: Vec::new(),
            next_token: None,
        },
        &modern(),
    );
    // econe's tools (2009-11-30) get one empty `default` reservation.
    check(
        "describe_instances_legacy_empty",
        &InstancesResponse {
            reservations: vec![Reservation {
                id: "default".into(),
                owner: "alice".into(),
                instances: Vec::new(),
            }],
            next_token: None,
        },
        &Namespace::for_version(Some("2009-11-30")),
    );
}

#[test]
fn state_changes() {
    let change = |current, previous| StateChange {
        id: 7,
        current,
        previous,
    };
    check(
        "terminate_instances",
        &StateChangesResponse {
            action: Action::TerminateInstances,
            changes: vec![
                change(InstanceState::ShuttingDown, InstanceState::Running),
                StateChange {
                    id: 8,
                    current: InstanceState::Terminated,
                    previous: InstanceState::Pending,
                },
            ],
        },
        &modern(),
    );
    check(
        "stop_instances",
        &StateChangesResponse {
            action: Action::StopInstances,
            changes: vec![change(InstanceState::Stopping, InstanceState::Running)],
        },
        &modern(),
    );
    check(
        "start_instances",
        &StateChangesResponse {
            action: Action::StartInstances,
            changes: vec![change(InstanceState::Pending, InstanceState::Stopped)],
        },
        &modern(),
    );
}

#[test]
fn regions_zones_addresses() {
    check(
        "describe_regions",
        &RegionsResponse {
            name: "opennebula".into(),
            endpoint: "http://cloud.example.org:4567/".into(),
        },
        &modern(),
    );
    check(
        "describe_availability_zones",
        &ZonesResponse {
            zones: vec!["default".into()],
            region: "opennebula".into(),
        },
        &modern(),
    );
    check("describe_addresses", &AddressesResponse, &modern());
}

fn key(id: u64, name: &str) -> KeyPairItem {
    KeyPairItem {
        id,
        name: name.into(),
        fingerprint: "SHA256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb".into(),
        key_type: "ed25519".into(),
        created: T,
        tags: Vec::new(),
    }
}

#[test]
fn key_pairs() {
    check(
        "create_key_pair",
        &KeyPairResponse {
            action: Action::CreateKeyPair,
            key: KeyPairItem {
                tags: vec![tag("Name", "laptop")],
                ..key(3, "laptop")
            },
            material: Some(
                "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n"
                    .into(),
            ),
        },
        &modern(),
    );
    check(
        "import_key_pair",
        &KeyPairResponse {
            action: Action::ImportKeyPair,
            key: key(4, "imported"),
            material: None,
        },
        &modern(),
    );
    check(
        "describe_key_pairs",
        &KeyPairsResponse {
            keys: vec![
                key(4, "imported"),
                KeyPairItem {
                    tags: vec![tag("Name", "laptop")],
                    ..key(3, "laptop")
                },
            ],
        },
        &modern(),
    );
}

#[test]
fn describe_tags() {
    check(
        "describe_tags",
        &TagsResponse {
            tags: vec![
                TagDescription {
                    resource: Resource::Instance(7),
                    tag: tag("Name", "web"),
                },
                TagDescription {
                    resource: Resource::Image(5),
                    tag: tag("os", "ubuntu"),
                },
                TagDescription {
                    resource: Resource::KeyPair(3),
                    tag: tag("Name", "laptop"),
                },
            ],
        },
        &modern(),
    );
}

#[test]
fn error_documents() {
    golden(
        "error_not_found",
        &Ec2Error::from(core::Error::not_found(Kind::Vm, 42)).document(ID),
    );
    golden(
        "error_auth_failure",
        &Ec2Error::Auth(crate::auth::Error::Invalid).document(ID),
    );
    golden("error_dry_run", &Ec2Error::DryRun.document(ID));
}
