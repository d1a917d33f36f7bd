//! `core::context`: substitution of every reference form, other VMs seen
//! or not, errors, the `context.sh` golden text, and the FILES policy
//! lexically and on disk.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use super::*;

fn alice() -> Caller {
    Caller {
        uid: 5,
        name: "alice".into(),
    }
}

fn admin() -> Caller {
    Caller {
        uid: 0,
        name: "oneadmin".into(),
    }
}

fn settings_with_dir(dir: &Path) -> Settings {
    Settings {
        context_files_dir: Some(dir.to_path_buf()),
        ..Settings::default()
    }
}

/// The VMs other than the one created: 4 is alice's, 9 is bob's (uid 6).
fn others(vmid: u64) -> Option<OtherVm> {
    let (owner, text) = match vmid {
        4 => (
            5,
            "NAME = db\nHOSTNAME = from-template\nCONTEXT = [ HOSTNAME = db.local, IP = 10.0.0.4 ]",
        ),
        9 => (6, "NAME = secret\nCONTEXT = [ TOKEN = s3cr3t ]"),
        _ => return None,
    };
    Some(OtherVm {
        owner,
        template: Template::parse(text).expect("other VM template"),
    })
}

/// Networks and images as the pools would answer them, access included:
/// network 1 "Private LAN" is alice's, 3 "Public LAN" oneadmin's and
/// public, 8 "Private LAN" bob's (uid 6) and private; image 2 "debian" is
/// alice's, 6 "secret" bob's and private.
struct Objects;

impl Objects {
    fn find(
        owner: u64,
        key: ObjectKey<'_>,
        all: &[(u64, &str, u64, bool, &str)],
    ) -> Option<Template> {
        let usable = |(_, _, uid, public, _): &&(u64, &str, u64, bool, &str)| {
            owner == 0 || *uid == owner || *public
        };
        let found = match key {
            ObjectKey::Id(id) => all.iter().find(|o| o.0 == id)?,
            ObjectKey::Name(name) => all
                .iter()
                .filter(|o| o.1 == name)
                .find(|o| o.2 == owner)
                .or_else(|| all.iter().find(|o| o.1 == name && usable(o)))?,
        };
        if !usable(&found) {
            return None;
        }
        let mut t = Template::parse(found.4).expect("object template");
        t.set("ID", found.0.to_string());
        t.set("NAME", found.1);
        Some(t)
    }
}

impl ObjectLookup for Objects {
    fn network(&self, owner: u64, key: ObjectKey<'_>) -> Option<Template> {
        Objects::find(
            owner,
            key,
            &[
                (
                    1,
                    "Private LAN",
                    5,
                    false,
                    "GATEWAY = 10.0.0.1\nBRIDGE = br1",
                ),
                (
                    3,
                    "Public LAN",
                    0,
                    true,
                    "GATEWAY = 192.168.0.1\nDNS = 8.8.8.8",
                ),
                (8, "Private LAN", 6, false, "GATEWAY = 172.16.0.1"),
            ],
        )
    }

    fn image(&self, owner: u64, key: ObjectKey<'_>) -> Option<Template> {
        Objects::find(
            owner,
            key,
            &[
                (2, "debian", 5, false, "DESCRIPTION = \"Debian 6\""),
                (6, "secret", 6, false, "DESCRIPTION = hidden"),
            ],
        )
    }
}

/// Substitutes with no other VM, network or image and default settings.
fn alone(t: &mut Template, vmid: u64, caller: &Caller) -> Result<()> {
    substitute_context(t, vmid, caller, &NoVms, &NoObjects, &Settings::default())
}

/// A template as the pool has it at creation: NAME set, NICs leased.
fn vm_template(context: &str) -> Template {
    Template::parse(&format!(
        r#"NAME = "web 1"
NIC = [ NETWORK = "Private LAN", IP = 10.0.0.7, MAC = "02:00:0a:00:00:07", NETWORK_ID = 1 ]
NIC = [ NETWORK = "Public LAN", IP = 192.168.0.5, MAC = "02:00:c0:a8:00:05", NETWORK_ID = 3 ]
DISK = [ IMAGE = debian, IMAGE_ID = 2, DISK_ID = 0 ]
{context}
"#
    ))
    .expect("vm template")
}

/// Substitutes `CONTEXT = [ X = "<text>" ]` for VM 7 created by `caller`;
/// the value of X.
fn one(text: &str, caller: &Caller) -> String {
    let mut t = vm_template(&format!("CONTEXT = [ X = \"{text}\" ]"));
    substitute_context(&mut t, 7, caller, &others, &Objects, &Settings::default())
        .unwrap_or_else(|e| panic!("{text:?}: {e}"));
    t.vector(CONTEXT)
        .and_then(|c| c.get("X"))
        .expect("X")
        .to_owned()
}

#[test]
fn every_reference_form_of_the_vm_itself() {
    let a = alice();
    assert_eq!(one("$NAME", &a), "web 1");
    assert_eq!(one("$NIC[IP]", &a), "10.0.0.7", "the first NIC");
    assert_eq!(
        one(r#"$NIC[IP, NETWORK=\"Public LAN\"]"#, &a),
        "192.168.0.5"
    );
    assert_eq!(one("$nic[mac, network_id=3]", &a), "02:00:c0:a8:00:05");
    assert_eq!(one("one-$VMID", &a), "one-7");
    assert_eq!(one("$ID", &a), "7");
    assert_eq!(one("$UID:$UNAME", &a), "5:alice");
    assert_eq!(one("<$MISSING><$NIC[GATEWAY]>", &a), "<><>");
    assert_eq!(one("cost $$5", &a), "cost $5");
}

#[test]
fn special_names_win_over_template_attributes() {
    let mut t = vm_template("VMID = 99\nUID = 99\nCONTEXT = [ X = \"$VMID $UID\" ]");
    alone(&mut t, 7, &alice()).expect("substitutes");
    assert_eq!(t.vector(CONTEXT).and_then(|c| c.get("X")), Some("7 5"));
}

#[test]
fn groups_are_opennebulas_defaults() {
    assert_eq!(one("$GID $GNAME", &alice()), "1 users");
    assert_eq!(one("$GID $GNAME", &admin()), "0 oneadmin");
}

#[test]
fn user_gives_the_owner_and_nothing_secret() {
    let a = alice();
    assert_eq!(one("$USER[NAME]/$USER[ID]", &a), "alice/5");
    assert_eq!(one("$USER[GNAME]", &a), "users");
    assert_eq!(one("<$USER[PASSWORD]>", &a), "<>");
    assert_eq!(
        one("<$USER[NAME, ID=5]>", &a),
        "<alice>",
        "a condition is ignored"
    );
}

#[test]
fn network_by_name_by_id_and_of_the_first_nic() {
    let a = alice();
    assert_eq!(
        one(r#"$NETWORK[GATEWAY, NETWORK=\"Public LAN\"]"#, &a),
        "192.168.0.1"
    );
    assert_eq!(one("$NETWORK[DNS, NETWORK_ID=3]", &a), "8.8.8.8");
    assert_eq!(one("$NETWORK[NAME, NETWORK_ID=1]", &a), "Private LAN");
    // Two networks are named "Private LAN": alice's own is hers.
    assert_eq!(
        one(r#"$NETWORK[BRIDGE, NETWORK=\"Private LAN\"]"#, &a),
        "br1"
    );
    // Without a condition: the network of the first NIC (NETWORK_ID = 1).
    assert_eq!(one("$NETWORK[GATEWAY]", &a), "10.0.0.1");
    // The condition is on the network, not on the VM's NICs.
    assert_eq!(one("$NETWORK[ID, NETWORK_ID=3]", &a), "3");
}

#[test]
fn network_refused_or_unknown_is_empty() {
    let a = alice();
    assert_eq!(one("<$NETWORK[GATEWAY, NETWORK_ID=8]>", &a), "<>", "bob's");
    assert_eq!(one("<$NETWORK[GATEWAY, NETWORK_ID=42]>", &a), "<>");
    assert_eq!(one(r#"<$NETWORK[GATEWAY, NETWORK=\"nope\"]>"#, &a), "<>");
    assert_eq!(one("<$NETWORK[GATEWAY, NETWORK_ID=x]>", &a), "<>");
    assert_eq!(one("<$NETWORK[GATEWAY, BRIDGE=br1]>", &a), "<>");
    assert_eq!(one("<$NETWORK[NOSUCH, NETWORK_ID=1]>", &a), "<>");
    // oneadmin may use every network.
    assert_eq!(
        one("$NETWORK[GATEWAY, NETWORK_ID=8]", &admin()),
        "172.16.0.1"
    );
}

#[test]
fn image_by_name_by_id_and_of_the_first_disk() {
    let a = alice();
    assert_eq!(one("$IMAGE[NAME, IMAGE_ID=2]", &a), "debian");
    assert_eq!(one("$IMAGE[DESCRIPTION, IMAGE=debian]", &a), "Debian 6");
    assert_eq!(one("$IMAGE[ID]", &a), "2", "the first DISK's image");
}

#[test]
fn image_refused_or_unknown_is_empty() {
    let a = alice();
    assert_eq!(one("<$IMAGE[NAME, IMAGE_ID=6]>", &a), "<>", "bob's");
    assert_eq!(one("<$IMAGE[NAME, IMAGE=secret]>", &a), "<>", "bob's");
    assert_eq!(one("<$IMAGE[NAME, IMAGE_ID=99]>", &a), "<>");
    assert_eq!(one("<$IMAGE[NAME, IMAGE=nope]>", &a), "<>");
    assert_eq!(one("$IMAGE[DESCRIPTION, IMAGE_ID=6]", &admin()), "hidden");
}

#[test]
fn template_is_the_vm_xml_in_base64() {
    use base64::Engine as _;
    let encoded = one("$TEMPLATE", &alice());
    let xml = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .expect("base64");
    let xml = String::from_utf8(xml).expect("utf-8");
    assert!(
        xml.starts_with("<TEMPLATE><NAME><![CDATA[web 1]]></NAME>"),
        "{xml}"
    );
    assert!(
        xml.contains("<NIC><NETWORK><![CDATA[Private LAN]]></NETWORK>"),
        "{xml}"
    );
    assert!(xml.ends_with("</TEMPLATE>"), "{xml}");
}

#[test]
fn without_lookups_networks_and_images_are_empty() {
    let mut t = vm_template("CONTEXT = [ X = \"<$NETWORK[GATEWAY]$IMAGE[NAME]>\" ]");
    alone(&mut t, 7, &alice()).expect("substitutes");
    assert_eq!(t.vector(CONTEXT).and_then(|c| c.get("X")), Some("<>"));
}

#[test]
fn other_vms_are_seen_by_their_owner_and_oneadmin_only() {
    // alice owns 4: its CONTEXT first, then its template.
    assert_eq!(one("$4.HOSTNAME", &alice()), "db.local");
    assert_eq!(one("$4.$IP", &alice()), "10.0.0.4", "the seed's spelling");
    assert_eq!(one("$4.NAME", &alice()), "db", "not in CONTEXT: template");
    // bob's VM 9 is empty for alice, exactly like a VM that does not exist.
    assert_eq!(one("<$9.TOKEN>", &alice()), "<>");
    assert_eq!(one("<$12.TOKEN>", &alice()), "<>");
    assert_eq!(one("$9.TOKEN", &admin()), "s3cr3t");
}

#[test]
fn the_spec_example_gives_the_spec_context_file() {
    // CORE.md §5.1 example template, §5.2 context file.
    let mut t = Template::parse(
        r#"NAME   = "web 1"
NIC    = [ NETWORK = "Public LAN", IP = 192.168.0.5 ]
CONTEXT = [ hostname = "$NAME", ip_public = "$NIC[IP, NETWORK=\"Public LAN\"]",
            files = "/srv/ctx/init.sh", target = hdc ]
"#,
    )
    .expect("spec template");
    alone(&mut t, 0, &admin()).expect("substitutes");
    let context = t.vector(CONTEXT).expect("CONTEXT");
    assert_eq!(
        render(context),
        "# Context variables generated by OpenNebula\n\
         FILES=\"/srv/ctx/init.sh\"\n\
         HOSTNAME=\"web 1\"\n\
         IP_PUBLIC=\"192.168.0.5\"\n\
         TARGET=\"hdc\"\n"
    );
}

#[test]
fn render_sorts_keeps_first_of_a_repeated_key_and_does_not_escape() {
    let mut v = Vector::new();
    v.push("b", "2");
    v.push("A_1", "say \"hi\" $HOME");
    v.push("B", "later");
    v.push("A", "");
    assert_eq!(
        render(&v),
        "# Context variables generated by OpenNebula\nA=\"\"\nA_1=\"say \"hi\" $HOME\"\nB=\"2\"\n"
    );
    assert_eq!(
        render(&Vector::new()),
        "# Context variables generated by OpenNebula\n"
    );
}

#[test]
fn syntax_errors_fail_creation_with_the_parser_message() {
    let mut t = vm_template("CONTEXT = [ GOOD = \"$NAME\", PRICE = \"cost $ 5\" ]");
    let before = t.clone();
    let err = alone(&mut t, 7, &alice()).expect_err("syntax error");
    let Error::Invalid { field, reason } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(field, "CONTEXT");
    assert_eq!(
        reason,
        "PRICE at column 7: expected a name after '$' (write '$$' for a literal '$'), found ' '"
    );
    assert_eq!(t, before, "the template is untouched on error");

    let mut t = vm_template("CONTEXT = \"$NAME\"");
    let err = alone(&mut t, 7, &alice()).expect_err("not a vector");
    assert_eq!(
        err.to_string(),
        "CONTEXT: must be a vector, CONTEXT = [ KEY = value, ... ]"
    );
}

#[test]
fn without_context_nothing_changes_and_only_the_first_context_counts() {
    let mut t = vm_template("");
    let before = t.clone();
    alone(&mut t, 7, &alice()).expect("no context");
    assert_eq!(t, before);

    let mut t = vm_template("CONTEXT = [ A = \"$VMID\" ]\nCONTEXT = [ B = 2 ]");
    alone(&mut t, 7, &alice()).expect("substitutes");
    let contexts: Vec<_> = t.vectors(CONTEXT).collect();
    assert_eq!(contexts.len(), 1);
    assert_eq!(contexts[0].iter().collect::<Vec<_>>(), [("A", "7")]);
}

fn context_files(files: &str) -> Vector {
    let mut v = Vector::new();
    v.push("FILES", files);
    v
}

fn refusal(files: &str, uid: u64, settings: &Settings) -> String {
    match super::files(&context_files(files), uid, settings) {
        Ok(ok) => panic!("{files:?} accepted: {ok:?}"),
        Err(Error::Invalid { field, reason }) if field == CONTEXT => reason,
        Err(other) => panic!("{other:?}"),
    }
}

#[test]
fn files_policy_for_oneadmin() {
    let s = Settings::default();
    let ok = super::files(
        &context_files("  /srv/ctx/init.sh\thttp://web/boot.sh?v=2  https://x/y/key.pub "),
        0,
        &s,
    )
    .expect("admin files");
    assert_eq!(
        ok,
        [
            ContextFile::Path("/srv/ctx/init.sh".into()),
            ContextFile::Url("http://web/boot.sh?v=2".into()),
            ContextFile::Url("https://x/y/key.pub".into()),
        ]
    );
    let names: Vec<_> = ok.iter().map(ContextFile::name).collect();
    assert_eq!(names, ["init.sh", "boot.sh", "key.pub"]);
    assert!(super::files(&Vector::new(), 5, &s)
        .expect("no FILES")
        .is_empty());

    for (files, reason) in [
        (
            "init.sh",
            "FILES: init.sh: expected an absolute front-end path or an http(s):// URL",
        ),
        (
            "ftp://x/a",
            "FILES: ftp://x/a: expected an absolute front-end path or an http(s):// URL",
        ),
        (
            "/srv/../etc/shadow",
            "FILES: /srv/../etc/shadow: '.' and '..' are not allowed in paths",
        ),
        (
            "/srv/./a",
            "FILES: /srv/./a: '.' and '..' are not allowed in paths",
        ),
        ("/srv/ctx/", "FILES: /srv/ctx/: names no file"),
        ("http://web/", "FILES: http://web/: names no file"),
        ("http://web", "FILES: http://web: names no file"),
        ("https://web?x=/a", "FILES: https://web?x=/a: names no file"),
        (
            "HTTP://web/a",
            "FILES: HTTP://web/a: expected an absolute front-end path or an http(s):// URL",
        ),
        (
            "/tmp/context.sh",
            "FILES: /tmp/context.sh: the CD's context.sh is the generated one",
        ),
        (
            "/a/x.sh /b/x.sh",
            "FILES: two files are named x.sh, and the CD holds them side by side",
        ),
        (
            "/a/x.sh http://w/x.sh?1",
            "FILES: two files are named x.sh, and the CD holds them side by side",
        ),
    ] {
        assert_eq!(refusal(files, 0, &s), reason, "for {files:?}");
    }
}

#[test]
fn files_policy_for_users() {
    let s = settings_with_dir(Path::new("/srv/ctx"));
    let ok = super::files(&context_files("/srv/ctx/init.sh /srv/ctx/sub/motd"), 5, &s)
        .expect("inside the directory");
    assert_eq!(ok.len(), 2);
    for files in ["/etc/passwd", "/srv/ctx2/init.sh", "/srv/ctx", "/srv"] {
        assert_eq!(
            refusal(files, 5, &s),
            format!(
                "FILES: {files}: only files of the context files directory may be named \
                 (oneadmin may name any)"
            ),
        );
    }
    assert_eq!(
        refusal("/srv/ctx/../../etc/passwd", 5, &s),
        "FILES: /srv/ctx/../../etc/passwd: '.' and '..' are not allowed in paths"
    );
    assert_eq!(
        refusal("http://169.254.169.254/latest", 5, &s),
        "FILES: http://169.254.169.254/latest: only oneadmin may name URLs (the front-end \
         would fetch them)"
    );
    // Without a directory, users may name no file.
    let none = Settings::default();
    assert!(refusal("/srv/ctx/init.sh", 5, &none).contains("only files of the context"));
}

#[test]
fn files_are_checked_when_the_vm_is_created() {
    let settings = settings_with_dir(Path::new("/srv/ctx"));
    let mut t = vm_template("CONTEXT = [ FILES = \"/etc/shadow\" ]");
    let err = substitute_context(&mut t, 7, &alice(), &NoVms, &NoObjects, &settings)
        .expect_err("refused");
    assert!(
        err.to_string()
            .starts_with("CONTEXT: FILES: /etc/shadow: only files"),
        "{err}"
    );
    // A substituted value is what is checked.
    let mut t = vm_template("PATH = /etc/shadow\nCONTEXT = [ FILES = \"$PATH\" ]");
    assert!(substitute_context(&mut t, 7, &alice(), &NoVms, &NoObjects, &settings).is_err());
    let mut t = vm_template("CONTEXT = [ FILES = \"/srv/ctx/$UNAME.sh\" ]");
    substitute_context(&mut t, 7, &alice(), &NoVms, &NoObjects, &settings).expect("inside");
    assert_eq!(
        t.vector(CONTEXT).and_then(|c| c.get("FILES")),
        Some("/srv/ctx/alice.sh")
    );
}

/// A data dir with `files/` (the context files directory) holding
/// `init.sh`, a link to a file outside, a sub-directory, and `outside/`.
struct Disk {
    _tmp: tempfile::TempDir,
    files: PathBuf,
    outside: PathBuf,
    vm_dir: PathBuf,
}

fn disk() -> Disk {
    let tmp = tempfile::tempdir().expect("tempdir");
    let files = tmp.path().join("files");
    let outside = tmp.path().join("outside");
    fs::create_dir_all(files.join("dir")).expect("files dir");
    fs::create_dir_all(&outside).expect("outside dir");
    fs::write(files.join("init.sh"), "echo hi\n").expect("init.sh");
    fs::write(outside.join("secret"), "server secret\n").expect("secret");
    symlink(outside.join("secret"), files.join("link")).expect("symlink");
    let vm_dir = tmp.path().join("7");
    Disk {
        files,
        outside,
        vm_dir,
        _tmp: tmp,
    }
}

#[test]
fn prolog_writes_context_sh_and_lists_the_files() {
    let d = disk();
    let s = settings_with_dir(&d.files);
    let init = d.files.join("init.sh").display().to_string();
    let mut context = context_files(&init);
    context.push("TARGET", "hdc");
    let list = prepare_prolog(&context, 5, &s, &d.vm_dir).expect("prolog");
    let context_sh = d.vm_dir.join("context.sh");
    assert_eq!(list, [context_sh.display().to_string(), init.clone()]);
    assert_eq!(
        fs::read_to_string(&context_sh).expect("context.sh"),
        format!("{HEADER}\nFILES=\"{init}\"\nTARGET=\"hdc\"\n")
    );
    // Without FILES: only context.sh.
    let list = prepare_prolog(&Vector::new(), 5, &s, &d.vm_dir).expect("prolog");
    assert_eq!(list, [context_sh.display().to_string()]);
}

#[test]
fn prolog_refuses_missing_files_directories_and_links_out() {
    let d = disk();
    let s = settings_with_dir(&d.files);
    let prolog = |path: &Path, uid: u64| {
        prepare_prolog(
            &context_files(&path.display().to_string()),
            uid,
            &s,
            &d.vm_dir,
        )
    };
    let gone = d.files.join("gone.sh");
    let err = prolog(&gone, 5).expect_err("missing");
    assert_eq!(
        err.to_string(),
        format!(
            "CONTEXT: FILES: {} does not exist or cannot be read",
            gone.display()
        )
    );
    assert!(
        !d.vm_dir.join("context.sh").exists(),
        "nothing is written when a check fails"
    );
    let link = d.files.join("link");
    let err = prolog(&link, 5).expect_err("link out");
    assert_eq!(
        err.to_string(),
        format!(
            "CONTEXT: FILES: {} leads outside the context files directory",
            link.display()
        )
    );
    assert!(
        !err.to_string().contains("secret"),
        "the link's target is not revealed"
    );
    let dir = d.files.join("dir");
    let err = prolog(&dir, 5).expect_err("directory");
    assert_eq!(
        err.to_string(),
        format!("CONTEXT: FILES: {} is not a regular file", dir.display())
    );
    // oneadmin may follow the link and name files anywhere.
    prolog(&link, 0).expect("admin: link");
    prolog(&d.outside.join("secret"), 0).expect("admin: any file");
    assert!(prolog(&dir, 0).is_err(), "directories for nobody");
}
