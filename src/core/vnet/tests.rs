//! Network template tests: RANGED and FIXED parsing, normalisation and
//! every validation error. The pool itself (authorization, leases, the
//! write path's promises, concurrency) is tested on the real store in
//! `crate::store` (`store/vnets/tests.rs`): a hand-written fake store here
//! would break each time another pool adds a store method.

use super::*;

fn lan(name: &str, extra: &str) -> String {
    format!("NAME = {name}\nBRIDGE = br0\nNETWORK_ADDRESS = 192.168.0.0\nNETWORK_SIZE = C\n{extra}")
}

const FIXED: &str = "NAME = fixed\nTYPE = FIXED\nBRIDGE = br1\n\
     LEASES = [ IP = 10.0.0.5, MAC = 02:00:0A:00:00:05 ]\n\
     LEASES = [ IP = 10.0.0.3 ]\n\
     LEASES = [ IP = 10.0.0.4, MAC = 00:16:3e:aa:bb:cc ]";

fn parse(text: &str) -> Result<VirtualNetwork> {
    VirtualNetwork::from_template(
        1,
        Template::parse(text).expect("template"),
        &Settings::default(),
    )
}

fn invalid_field(text: &str) -> String {
    match parse(text) {
        Err(Error::Invalid { field, .. }) => field,
        other => panic!("{text}\nexpected Invalid, got {other:?}"),
    }
}

// ---- templates ----------------------------------------------------------

#[test]
fn ranged_template_is_parsed_and_normalised() {
    let net = parse(&lan("lan", "PUBLIC = yes\nDESCRIPTION = \"the lab\"")).expect("parsed");
    assert_eq!(
        (net.name.as_str(), net.bridge.as_str(), net.public),
        ("lan", "br0", true)
    );
    assert_eq!(net.kind(), NetworkType::Ranged);
    assert_eq!(net.size(), 254);
    let t = &net.template;
    assert_eq!(t.get("TYPE"), Some("RANGED"));
    assert_eq!(t.get("PUBLIC"), Some("YES"));
    assert_eq!(t.get("NETWORK_MASK"), Some("255.255.255.0"));
    assert_eq!(t.get("NETWORK_SIZE"), Some("C"));
    assert_eq!(
        t.get("DESCRIPTION"),
        Some("the lab"),
        "other attributes are kept"
    );

    let cidr = parse("NAME = n\nBRIDGE = br0\nNETWORK_ADDRESS = 10.0.0.0/16").expect("cidr");
    assert_eq!(cidr.template.get("NETWORK_ADDRESS"), Some("10.0.0.0"));
    assert_eq!(cidr.template.get("NETWORK_MASK"), Some("255.255.0.0"));
    assert_eq!(
        cidr.template.get("TYPE"),
        Some("RANGED"),
        "TYPE follows NETWORK_ADDRESS"
    );
    assert_eq!(cidr.template.get("PUBLIC"), Some("NO"));
    // The normalised template reads back as the same network.
    let again = VirtualNetwork::from_template(1, cidr.template.clone(), &Settings::default())
        .expect("again");
    assert_eq!(again, cidr);
}

#[test]
fn fixed_template_lists_leases_in_ip_order_with_macs() {
    let net = parse(FIXED).expect("parsed");
    assert_eq!(net.kind(), NetworkType::Fixed);
    let Addresses::Fixed(leases) = &net.addresses else {
        panic!("not fixed: {net:?}")
    };
    let shown: Vec<(String, String)> = leases
        .iter()
        .map(|l| (l.ip.to_string(), l.mac.to_string()))
        .collect();
    assert_eq!(
        shown,
        [
            ("10.0.0.3".to_string(), "02:00:0a:00:00:03".to_string()),
            ("10.0.0.4".to_string(), "00:16:3e:aa:bb:cc".to_string()),
            ("10.0.0.5".to_string(), "02:00:0a:00:00:05".to_string()),
        ]
    );
    assert_eq!(net.template.vectors("LEASES").count(), 3);
    assert_eq!(
        net.template
            .vectors("LEASES")
            .next()
            .and_then(|v| v.get("MAC")),
        Some("02:00:0a:00:00:03")
    );
    // TYPE follows LEASES when absent, and any case is accepted.
    let implied = parse("NAME = f\nBRIDGE = br0\nLEASES = [ IP = 10.0.0.1 ]").expect("implied");
    assert_eq!(implied.kind(), NetworkType::Fixed);
    let lower = parse("NAME = f\nTYPE = fixed\nBRIDGE = br0\nLEASES = [ IP = 10.0.0.1 ]");
    assert_eq!(lower.expect("lower").template.get("TYPE"), Some("FIXED"));
}

#[test]
fn the_mac_prefix_comes_from_the_settings() {
    let settings = Settings {
        mac_prefix: [0x00, 0x03],
        ..Settings::default()
    };
    let t = Template::parse("NAME = f\nBRIDGE = br0\nLEASES = [ IP = 192.168.0.5 ]").expect("t");
    let net = VirtualNetwork::from_template(1, t, &settings).expect("net");
    let Addresses::Fixed(leases) = net.addresses else {
        panic!("not fixed")
    };
    assert_eq!(leases[0].mac.to_string(), "00:03:c0:a8:00:05");
}

#[test]
fn every_validation_error_names_its_attribute() {
    let cases = [
        ("BRIDGE = br0\nNETWORK_ADDRESS = 10.0.0.0", "NAME"),
        ("NAME = \"\"\nBRIDGE = br0\nNETWORK_ADDRESS = 10.0.0.0", "NAME"),
        ("NAME = 42\nBRIDGE = br0\nNETWORK_ADDRESS = 10.0.0.0", "NAME"),
        ("NAME = lan\nNETWORK_ADDRESS = 10.0.0.0", "BRIDGE"),
        ("NAME = lan\nBRIDGE = \"br 0\"\nNETWORK_ADDRESS = 10.0.0.0", "BRIDGE"),
        ("NAME = lan\nBRIDGE = \"br0;reboot\"\nNETWORK_ADDRESS = 10.0.0.0", "BRIDGE"),
        ("NAME = lan\nBRIDGE = br0\nPUBLIC = maybe\nNETWORK_ADDRESS = 10.0.0.0", "PUBLIC"),
        ("NAME = lan\nBRIDGE = br0\nTYPE = VLAN\nNETWORK_ADDRESS = 10.0.0.0", "TYPE"),
        ("NAME = lan\nBRIDGE = br0", "TYPE"),
        ("NAME = lan\nBRIDGE = br0\nTYPE = RANGED", "NETWORK_ADDRESS"),
        ("NAME = lan\nBRIDGE = br0\nNETWORK_ADDRESS = 10.0.0.0\nNETWORK_SIZE = X", "NETWORK_SIZE"),
        ("NAME = lan\nBRIDGE = br0\nNETWORK_ADDRESS = 10.0.0.0\nLEASES = [ IP = 10.0.0.1 ]", "LEASES"),
        ("NAME = f\nBRIDGE = br0\nTYPE = FIXED", "LEASES"),
        ("NAME = f\nBRIDGE = br0\nTYPE = FIXED\nNETWORK_ADDRESS = 10.0.0.0\nLEASES = [ IP = 10.0.0.1 ]", "NETWORK_ADDRESS"),
        ("NAME = f\nBRIDGE = br0\nLEASES = 10.0.0.1", "LEASES"),
        ("NAME = f\nBRIDGE = br0\nLEASES = [ MAC = 02:00:00:00:00:01 ]", "LEASES/IP"),
        ("NAME = f\nBRIDGE = br0\nLEASES = [ IP = 10.0.0.256 ]", "LEASES/IP"),
        ("NAME = f\nBRIDGE = br0\nLEASES = [ IP = 10.0.0.1, MAC = 02:00 ]", "LEASES/MAC"),
        ("NAME = f\nBRIDGE = br0\nLEASES = [ IP = 10.0.0.1 ]\nLEASES = [ IP = 10.0.0.1 ]", "LEASES/IP"),
        (
            "NAME = f\nBRIDGE = br0\nLEASES = [ IP = 10.0.0.1 ]\nLEASES = [ IP = 10.0.0.2, MAC = 02:00:0a:00:00:01 ]",
            "LEASES/MAC",
        ),
    ];
    for (text, field) in cases {
        assert_eq!(invalid_field(text), field, "{text}");
    }
    let e = parse("NAME = f\nBRIDGE = br0\nLEASES = [ IP = 10.0.0.1 ]\nLEASES = [ IP = 10.0.0.1 ]")
        .expect_err("twice");
    assert_eq!(e.to_string(), "LEASES/IP: 10.0.0.1 is listed twice");
}
