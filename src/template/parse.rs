//! The template parser (`CORE.md` §5.1): text → [`Template`].
//!
//! A hand-written scanner over characters that follows the grammar of the
//! spec and accepts the modern superset (empty file, `A = ""` as the empty
//! string, `[]`). Leniencies beyond the grammar, all harmless for what
//! OpenNebula itself writes: comments are also accepted inside vectors
//! (OpenNebula's lexer skips them there too), a comment or an empty value may
//! end the file without a newline, and a carriage return counts as a blank so
//! that CRLF files read as expected. A value opened with `"` and never closed
//! is an error (OpenNebula would silently read it as a bare value).
//!
//! Uses only `super` (the types in `mod.rs`).

use super::{is_name_char, quoted_char, Template, Value, Vector};

/// A syntax error in template text. Displayed as `{line}:{col}: {message}`
/// (both 1-based, the column counted in characters); the message says what
/// was expected and what was found instead.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{col}: {message}")]
pub struct ParseError {
    /// Line of the offending character, from 1.
    pub line: usize,
    /// Column of the offending character, from 1, in characters.
    pub col: usize,
    /// What was expected and what was found.
    pub message: String,
}

/// Where a top-level attribute starts: the line and column (both 1-based,
/// the column in characters) of its name. Lets callers such as the config
/// loader report `FILE:line:col` for a value that parses but is wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    /// Line of the attribute name, from 1.
    pub line: usize,
    /// Column of the attribute name, from 1, in characters.
    pub col: usize,
}

/// Parses a whole template; with `commas_separate`, a `,` between
/// attributes is one more separator (driver payloads).
pub(super) fn parse(text: &str, commas_separate: bool) -> Result<Template, ParseError> {
    parse_with_positions(text, commas_separate).map(|(template, _)| template)
}

/// Parses a whole template (as [`Template::parse`]) and returns, beside it,
/// the [`Position`] of each top-level attribute, in the order of
/// [`Template::attributes`].
pub fn parse_spanned(text: &str) -> Result<(Template, Vec<Position>), ParseError> {
    parse_with_positions(text, false)
}

/// The parser proper; records where each top-level attribute starts.
fn parse_with_positions(
    text: &str,
    commas_separate: bool,
) -> Result<(Template, Vec<Position>), ParseError> {
    let mut parser = Parser::new(text);
    let mut template = Template::new();
    let mut positions = Vec::new();
    loop {
        parser.skip_separators();
        if commas_separate && parser.peek() == Some(',') {
            parser.bump();
            continue;
        }
        if parser.peek().is_none() {
            return Ok((template, positions));
        }
        positions.push(Position {
            line: parser.line,
            col: parser.col,
        });
        let name = parser.name("expected an attribute name")?;
        parser.skip_blanks();
        parser.expect('=', "expected '=' after attribute name")?;
        parser.skip_blanks();
        let value = match parser.peek() {
            Some('[') => {
                parser.bump();
                Value::Vector(parser.vector_body(&name)?)
            }
            // `A =⏎` (or `A =` at the very end): the empty value.
            Some('\n') | None => Value::Single(String::new()),
            _ => Value::Single(parser.value(&format!("expected a value for '{name}'"))?),
        };
        template.push(&name, value);
    }
}

/// Blanks separate tokens on one line; `\r` is one so CRLF text parses.
fn is_blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r')
}

/// Characters that end a bare value (`forbidden` in the grammar).
pub(super) fn is_forbidden_in_bare(c: char) -> bool {
    is_blank(c) || matches!(c, '\n' | '=' | '#' | ',' | '[' | ']')
}

/// How a character is named in error messages.
fn describe(found: Option<char>) -> String {
    match found {
        None => "end of input".to_owned(),
        Some('\n') => "end of line".to_owned(),
        Some(c) => quoted_char(c),
    }
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
    line: usize,
    col: usize,
}

impl Parser {
    fn new(text: &str) -> Self {
        Parser {
            chars: text.chars().collect(),
            pos: 0,
            line: 1,
            col: 1,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += 1;
        if c == '\n' {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
        Some(c)
    }

    /// An error at the current position: "`expected`, found `<current>`".
    fn error(&self, expected: &str) -> ParseError {
        ParseError {
            line: self.line,
            col: self.col,
            message: format!("{expected}, found {}", describe(self.peek())),
        }
    }

    fn expect(&mut self, wanted: char, expected: &str) -> Result<(), ParseError> {
        if self.peek() == Some(wanted) {
            self.bump();
            Ok(())
        } else {
            Err(self.error(expected))
        }
    }

    fn skip_blanks(&mut self) {
        while self.peek().is_some_and(is_blank) {
            self.bump();
        }
    }

    /// Blanks, newlines and comments (a comment runs to the end of its line
    /// or of the input).
    fn skip_separators(&mut self) {
        while let Some(c) = self.peek() {
            if c == '#' {
                while self.peek().is_some_and(|c| c != '\n') {
                    self.bump();
                }
            } else if is_blank(c) || c == '\n' {
                self.bump();
            } else {
                break;
            }
        }
    }

    /// A name (`[A-Za-z0-9_]+`), upper-cased.
    fn name(&mut self, expected: &str) -> Result<String, ParseError> {
        let mut name = String::new();
        while let Some(c) = self.peek().filter(|&c| is_name_char(c)) {
            name.push(c.to_ascii_uppercase());
            self.bump();
        }
        if name.is_empty() {
            return Err(self.error(expected));
        }
        Ok(name)
    }

    /// A quoted or bare value; the current character must start one.
    fn value(&mut self, expected: &str) -> Result<String, ParseError> {
        match self.peek() {
            Some('"') => self.quoted(),
            Some(c) if !is_forbidden_in_bare(c) => {
                let mut value = String::new();
                while let Some(c) = self.peek().filter(|&c| !is_forbidden_in_bare(c)) {
                    value.push(c);
                    self.bump();
                }
                Ok(value)
            }
            _ => Err(self.error(expected)),
        }
    }

    /// `"..."` with `\"` as the only escape; newlines allowed inside.
    fn quoted(&mut self) -> Result<String, ParseError> {
        let (line, col) = (self.line, self.col);
        self.bump();
        let mut value = String::new();
        loop {
            match self.bump() {
                Some('"') => return Ok(value),
                Some('\\') if self.peek() == Some('"') => {
                    self.bump();
                    value.push('"');
                }
                Some(c) => value.push(c),
                None => {
                    return Err(ParseError {
                        line,
                        col,
                        message: "expected a closing '\"' for the value that starts here, \
                                  found end of input"
                            .to_owned(),
                    })
                }
            }
        }
    }

    /// Everything after the `[` of vector `name`, up to and including `]`.
    fn vector_body(&mut self, name: &str) -> Result<Vector, ParseError> {
        let mut vector = Vector::new();
        self.skip_separators();
        if self.peek() == Some(']') {
            self.bump();
            return Ok(vector);
        }
        loop {
            let key = self.name(&format!("expected a key in vector '{name}'"))?;
            self.skip_blanks();
            self.expect('=', &format!("expected '=' after key '{key}'"))?;
            self.skip_blanks();
            let value = self.value(&format!("expected a value for '{name}/{key}'"))?;
            vector.push(&key, value);
            self.skip_separators();
            match self.peek() {
                Some(',') => {
                    self.bump();
                    self.skip_separators();
                }
                Some(']') => {
                    self.bump();
                    return Ok(vector);
                }
                _ => return Err(self.error(&format!("expected ',' or ']' in vector '{name}'"))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::Attribute;
    use proptest::prelude::*;

    fn parse_ok(text: &str) -> Template {
        match Template::parse(text) {
            Ok(t) => t,
            Err(e) => panic!("{text:?} failed: {e}"),
        }
    }

    fn vector_pairs(t: &Template, name: &str, index: usize) -> Vec<(String, String)> {
        t.vectors(name)
            .nth(index)
            .unwrap_or_else(|| panic!("no vector {name}[{index}]"))
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn names(t: &Template) -> Vec<&str> {
        t.attributes().iter().map(|a| a.name.as_str()).collect()
    }

    #[test]
    fn core_small_vm_example() {
        let t = parse_ok(
            r#"# small VM
NAME   = "web 1"
CPU    = 0.5
MEMORY = 512
DISK   = [ SOURCE = "/srv/images/ttylinux.img", TARGET = hda,
           CLONE = yes ]
DISK   = [ TYPE = swap, SIZE = 1024, TARGET = hdb ]
NIC    = [ NETWORK = "Public LAN", IP = 192.168.0.5 ]
CONTEXT = [ hostname = "$NAME", ip_public = "$NIC[IP, NETWORK=\"Public LAN\"]",
            files = "/srv/ctx/init.sh", target = hdc ]
REQUIREMENTS = "HYPERVISOR = \"kvm\" & FREECPU > 50"
RANK   = FREECPU
"#,
        );
        assert_eq!(
            names(&t),
            [
                "NAME",
                "CPU",
                "MEMORY",
                "DISK",
                "DISK",
                "NIC",
                "CONTEXT",
                "REQUIREMENTS",
                "RANK"
            ]
        );
        assert_eq!(t.get("NAME"), Some("web 1"));
        assert_eq!(t.get("cpu"), Some("0.5"));
        assert_eq!(t.get("MEMORY"), Some("512"));
        assert_eq!(
            vector_pairs(&t, "DISK", 0),
            pairs(&[
                ("SOURCE", "/srv/images/ttylinux.img"),
                ("TARGET", "hda"),
                ("CLONE", "yes")
            ])
        );
        assert_eq!(
            vector_pairs(&t, "DISK", 1),
            pairs(&[("TYPE", "swap"), ("SIZE", "1024"), ("TARGET", "hdb")])
        );
        assert_eq!(
            vector_pairs(&t, "NIC", 0),
            pairs(&[("NETWORK", "Public LAN"), ("IP", "192.168.0.5")])
        );
        assert_eq!(
            vector_pairs(&t, "CONTEXT", 0),
            pairs(&[
                ("HOSTNAME", "$NAME"),
                ("IP_PUBLIC", r#"$NIC[IP, NETWORK="Public LAN"]"#),
                ("FILES", "/srv/ctx/init.sh"),
                ("TARGET", "hdc"),
            ])
        );
        assert_eq!(
            t.get("REQUIREMENTS"),
            Some(r#"HYPERVISOR = "kvm" & FREECPU > 50"#)
        );
        assert_eq!(t.get("RANK"), Some("FREECPU"));
    }

    #[test]
    fn reference_guide_vm_template() {
        // The 1.4 reference guide's VM template sections: OS, DISK, NIC,
        // GRAPHICS, CONTEXT, RAW, each with its usual layout.
        let t = parse_ok(
            r#"#---------------------------------------
# VM definition example
#---------------------------------------
NAME   = vm-example
CPU    = 1
MEMORY = 512

# --- kernel & boot device ---
OS     = [
  kernel   = "/vmlinuz",
  initrd   = "/initrd.img",
  root     = "sda",
  kernel_cmd = "ro console=ttyS0" ]

# --- 2 disks ---
DISK   = [
  source   = "/local/xen/domains/etch/disk.img",
  target   = "sda",
  readonly = "no" ]

DISK   = [
  type     = swap,
  size     = 1024,
  target   = "sdb",
  readonly = "no" ]

# --- 1 NIC ---
NIC    = [ mac="00:ff:72:17:20:27"]
NIC    = [ NETWORK = "Private LAN", MODEL = virtio ]

# --- VNC server ---
GRAPHICS = [
  type    = "vnc",
  listen  = "127.0.0.1",
  port    = "5902"]

CONTEXT = [
  hostname   = "$NAME",
  ip_private = "$NIC[IP, NETWORK=\"Private LAN\"]",
  files      = "/vms_configuration/id_rsa.pub /vms_configuration/init.sh",
  target     = "sdc"
]

RAW = [ type = "kvm",
        data = "<devices><serial type=\"pty\"><source path=\"/dev/pts/5\"/><target port=\"0\"/></serial></devices>" ]
"#,
        );
        assert_eq!(
            names(&t),
            [
                "NAME", "CPU", "MEMORY", "OS", "DISK", "DISK", "NIC", "NIC", "GRAPHICS", "CONTEXT",
                "RAW"
            ]
        );
        assert_eq!(t.get("NAME"), Some("vm-example"));
        let os = t.vector("OS").expect("OS vector");
        assert_eq!(os.get("KERNEL"), Some("/vmlinuz"));
        assert_eq!(os.get("KERNEL_CMD"), Some("ro console=ttyS0"));
        assert_eq!(os.get("ROOT"), Some("sda"));
        assert_eq!(
            vector_pairs(&t, "DISK", 1)[0],
            ("TYPE".to_owned(), "swap".to_owned())
        );
        assert_eq!(
            t.vector("NIC").and_then(|n| n.get("MAC")),
            Some("00:ff:72:17:20:27")
        );
        assert_eq!(
            vector_pairs(&t, "NIC", 1),
            pairs(&[("NETWORK", "Private LAN"), ("MODEL", "virtio")])
        );
        assert_eq!(
            t.vector("GRAPHICS").and_then(|g| g.get("PORT")),
            Some("5902")
        );
        assert_eq!(
            t.vector("CONTEXT").and_then(|c| c.get("FILES")),
            Some("/vms_configuration/id_rsa.pub /vms_configuration/init.sh")
        );
        assert_eq!(
            t.vector("RAW").and_then(|r| r.get("DATA")),
            Some(
                r#"<devices><serial type="pty"><source path="/dev/pts/5"/><target port="0"/></serial></devices>"#
            )
        );
    }

    #[test]
    fn network_templates_ranged_and_fixed() {
        let ranged = parse_ok(
            "NAME            = \"Private LAN\"     # required, unique\n\
             TYPE            = RANGED            # RANGED or FIXED\n\
             BRIDGE          = br0               # host bridge the NICs attach to\n\
             NETWORK_ADDRESS = 192.168.0.0       # RANGED\n\
             NETWORK_SIZE    = C                 # RANGED: number, or A/B/C\n",
        );
        assert_eq!(
            names(&ranged),
            ["NAME", "TYPE", "BRIDGE", "NETWORK_ADDRESS", "NETWORK_SIZE"]
        );
        assert_eq!(ranged.get("NAME"), Some("Private LAN"));
        assert_eq!(ranged.get("TYPE"), Some("RANGED"));
        assert_eq!(ranged.get("NETWORK_SIZE"), Some("C"));

        let fixed = parse_ok(
            "NAME = \"Public LAN\"\nTYPE = FIXED\nBRIDGE = vbr1\n\
             LEASES = [IP=130.10.0.1, MAC=50:20:20:20:20:20]\n\
             LEASES = [IP=130.10.0.2, MAC=50:20:20:20:20:21]\n\
             LEASES = [ IP = 10.0.0.5, MAC = 02:00:0a:00:00:05 ]   # FIXED, repeatable\n\
             LEASES = [IP=130.10.0.4]",
        );
        let leases: Vec<_> = fixed
            .vectors("LEASES")
            .map(|l| (l.get("IP"), l.get("MAC")))
            .collect();
        assert_eq!(
            leases,
            [
                (Some("130.10.0.1"), Some("50:20:20:20:20:20")),
                (Some("130.10.0.2"), Some("50:20:20:20:20:21")),
                (Some("10.0.0.5"), Some("02:00:0a:00:00:05")),
                (Some("130.10.0.4"), None),
            ]
        );
    }

    #[test]
    fn oned_conf_example() {
        let t = parse_ok(
            r#"#*******************************************************************************
# Daemon configuration attributes
#*******************************************************************************
HOST_MONITORING_INTERVAL = 10
VM_POLLING_INTERVAL      = 10
VM_DIR = /local/images
PORT = 2633
DEBUG_LEVEL = 3
NETWORK_SIZE = 254
MAC_PREFIX   = "00:50"

IM_MAD = [
    name       = "im_kvm",
    executable = "one_im_ssh",
    arguments  = "im_kvm/im_kvm.conf" ]

VM_MAD = [
    name       = "vmm_kvm",
    executable = "one_vmm_kvm",
    default    = "vmm_kvm/vmm_kvm.conf",
    type       = "kvm" ]

TM_MAD = [
    name       = "tm_nfs",
    executable = "one_tm",
    arguments  = "tm_nfs/tm_nfs.conf" ]

HM_MAD = [
    executable = "one_hm" ]

VM_HOOK = [
    name      = "mail",
    on        = "running",
    command   = "/usr/local/one/bin/send_mail",
    arguments = "$VMID $NAME",
    remote    = "no" ]
#"#,
        );
        assert_eq!(t.get("HOST_MONITORING_INTERVAL"), Some("10"));
        assert_eq!(t.get("VM_DIR"), Some("/local/images"));
        assert_eq!(t.get("MAC_PREFIX"), Some("00:50"));
        assert_eq!(
            t.vector("IM_MAD").and_then(|v| v.get("executable")),
            Some("one_im_ssh")
        );
        assert_eq!(t.vector("VM_MAD").and_then(|v| v.get("type")), Some("kvm"));
        assert_eq!(
            t.vector("TM_MAD").and_then(|v| v.get("name")),
            Some("tm_nfs")
        );
        assert_eq!(t.vector("HM_MAD").map(|v| v.iter().count()), Some(1));
        assert_eq!(
            t.vector("VM_HOOK").and_then(|v| v.get("arguments")),
            Some("$VMID $NAME")
        );
        assert_eq!(t.attributes().len(), 12);
    }

    #[test]
    fn drivers_conf_vectors_and_default_files() {
        let t = parse_ok(
            r#"IM_MAD  = [ name = "im_kvm",  executable = "one_im_ssh", arguments = "-r 0 -t 15 kvm" ]
VM_MAD  = [ name = "vmm_kvm", executable = "one_vmm_exec", arguments = "-t 15 -r 0 kvm",
            default = "vmm_exec/vmm_exec_kvm.conf", type = "kvm" ]
OS = [ boot = "hd", arch = "i686" ]
FEATURES = [ PAE = "no", ACPI = "yes" ]
DISK = [ driver = "raw", cache = "default" ]
EC2_INSTANCE_TYPE = [ NAME = "m1.small", CPU = "0.2", VCPU = "1", MEMORY = "256",
                      NETWORK = "Public EC2", TEMPLATE = "ec2/m1.small.tmpl" ]
DEFAULT_SCHED = [ policy = 1 ]
"#,
        );
        assert_eq!(
            t.vector("VM_MAD").and_then(|v| v.get("DEFAULT")),
            Some("vmm_exec/vmm_exec_kvm.conf")
        );
        assert_eq!(
            t.vector("FEATURES").and_then(|v| v.get("acpi")),
            Some("yes")
        );
        assert_eq!(
            t.vector("DEFAULT_SCHED").and_then(|v| v.get("POLICY")),
            Some("1")
        );
        let ec2 = t
            .vector("EC2_INSTANCE_TYPE")
            .expect("EC2_INSTANCE_TYPE vector");
        assert_eq!(ec2.get("MEMORY"), Some("256"));
        assert_eq!(ec2.get("TEMPLATE"), Some("ec2/m1.small.tmpl"));
    }

    #[test]
    fn probe_output_key_value_lines() {
        let t = parse_ok(
            "HYPERVISOR=kvm\nTOTALCPU=800\nCPUSPEED=2500\nTOTALMEMORY=8192000\n\
             USEDMEMORY=1024000\nFREEMEMORY=7168000\nFREECPU=795.2\nUSEDCPU=4.8\n\
             NETRX=1180\nNETTX=846\nARCH=x86_64\n\
             MODELNAME=\"Intel(R) Xeon(R) CPU E5420 @ 2.50GHz\"\nHOSTNAME=node1.example.org\n",
        );
        assert_eq!(t.attributes().len(), 13);
        assert_eq!(t.get("FREECPU"), Some("795.2"));
        assert_eq!(
            t.get("MODELNAME"),
            Some("Intel(R) Xeon(R) CPU E5420 @ 2.50GHz")
        );
        assert_eq!(t.get("HOSTNAME"), Some("node1.example.org"));
    }

    #[test]
    fn probe_and_poll_output_on_one_line() {
        let t = parse_ok("STATE=a USEDCPU=12.5 USEDMEMORY=524288 NETRX=1180 NETTX=846");
        assert_eq!(
            names(&t),
            ["STATE", "USEDCPU", "USEDMEMORY", "NETRX", "NETTX"]
        );
        assert_eq!(t.get("USEDCPU"), Some("12.5"));

        // 2.x+ run_probes joins the probe lines with blanks; quoted values
        // keep theirs. Modern poll output may carry vector values.
        let t = parse_ok(
            "HYPERVISOR=kvm TOTALCPU=200 MODELNAME=\"QEMU Virtual CPU, 1.0\" DISK_SIZE=[ID=0,SIZE=10]",
        );
        assert_eq!(t.get("MODELNAME"), Some("QEMU Virtual CPU, 1.0"));
        assert_eq!(
            vector_pairs(&t, "DISK_SIZE", 0),
            pairs(&[("ID", "0"), ("SIZE", "10")])
        );
    }

    #[test]
    fn monitoring_payloads_separated_by_commas() {
        // 1.4 probes and the dummy drivers join items with commas; a quoted
        // value keeps its own.
        let t = Template::parse_monitoring(
            "HYPERVISOR=dummy,TOTALCPU=800,MODELNAME=\"QEMU Virtual CPU, 1.0\",\
             DISK=[ID=0,SIZE=10] , NETRX=5 NETTX=6\nARCH=x86_64,",
        )
        .expect("valid payload");
        assert_eq!(
            names(&t),
            [
                "HYPERVISOR",
                "TOTALCPU",
                "MODELNAME",
                "DISK",
                "NETRX",
                "NETTX",
                "ARCH"
            ]
        );
        assert_eq!(t.get("MODELNAME"), Some("QEMU Virtual CPU, 1.0"));
        assert_eq!(
            vector_pairs(&t, "DISK", 0),
            pairs(&[("ID", "0"), ("SIZE", "10")])
        );
        // A token without `=` is an error (3.x discards the whole answer).
        let e = Template::parse_monitoring("STATE=a garbage USEDCPU=1").expect_err("no '='");
        assert_eq!(
            e.to_string(),
            "1:17: expected '=' after attribute name, found 'U'"
        );
        // Templates proper keep commas out of the top level.
        let e = Template::parse("A=1,B=2").expect_err("comma");
        assert_eq!(e.to_string(), "1:4: expected an attribute name, found ','");
    }

    #[test]
    fn empty_forms() {
        assert_eq!(parse_ok(""), Template::new());
        assert_eq!(parse_ok("  \n\n# only a comment"), Template::new());
        let t = parse_ok("A = \"\"\nB =\nC = []\nD = [\n]\nE =");
        assert_eq!(t.get("A"), Some(""));
        assert_eq!(t.get("B"), Some(""));
        assert_eq!(t.vector("C").map(Vector::is_empty), Some(true));
        assert_eq!(t.vector("D").map(Vector::is_empty), Some(true));
        assert_eq!(t.get("E"), Some(""));
        assert_eq!(
            parse_ok("A = [ K = \"\" ]")
                .vector("A")
                .and_then(|v| v.get("K")),
            Some("")
        );
    }

    #[test]
    fn case_comments_and_blanks() {
        let t = parse_ok("name = Web # a comment\n  # another\nmemory=512#tight\n\tcpu\t=\t1");
        assert_eq!(t.get("NAME"), Some("Web"));
        assert_eq!(t.get("MEMORY"), Some("512"));
        assert_eq!(t.get("CPU"), Some("1"));
        let t = parse_ok("A = \"has # inside\" # but this is a comment");
        assert_eq!(t.get("A"), Some("has # inside"));
        let t =
            parse_ok("DISK = [ # the OS disk\n  SOURCE = a , # comment\n TARGET = hda # last\n ]");
        assert_eq!(
            vector_pairs(&t, "DISK", 0),
            pairs(&[("SOURCE", "a"), ("TARGET", "hda")])
        );
    }

    #[test]
    fn quoted_values_escapes_and_newlines() {
        let t = parse_ok(
            r#"A = "say \"hi\"" B = "C:\dir\n\\x" C = "two
lines""#,
        );
        assert_eq!(t.get("A"), Some(r#"say "hi""#));
        assert_eq!(t.get("B"), Some(r"C:\dir\n\\x"));
        assert_eq!(t.get("C"), Some("two\nlines"));
        // A quote inside a bare value is just a character, as in OpenNebula.
        assert_eq!(parse_ok(r#"A = a"b"#).get("A"), Some(r#"a"b"#));
    }

    #[test]
    fn crlf_and_repeated_vector_keys() {
        let t = parse_ok("A = 1\r\nB =\r\nV = [ K = 1,\r\n K = 2 ]\r\n");
        assert_eq!(t.get("A"), Some("1"));
        assert_eq!(t.get("B"), Some(""));
        assert_eq!(t.vector("V").and_then(|v| v.get("K")), Some("1"));
        assert_eq!(t.vector("V").map(|v| v.iter().count()), Some(2));
    }

    #[test]
    fn attributes_need_no_newline_between_them() {
        let t = parse_ok(r#"A="x"B=y C = [ K = v ]D=1"#);
        assert_eq!(
            t.attributes(),
            [
                Attribute {
                    name: "A".into(),
                    value: Value::Single("x".into())
                },
                Attribute {
                    name: "B".into(),
                    value: Value::Single("y".into())
                },
                Attribute {
                    name: "C".into(),
                    value: Value::Vector({
                        let mut v = Vector::new();
                        v.push("K", "v");
                        v
                    })
                },
                Attribute {
                    name: "D".into(),
                    value: Value::Single("1".into())
                },
            ]
        );
    }

    #[test]
    fn error_positions_and_messages() {
        let cases: &[(&str, &str)] = &[
            (
                "A\"= 1",
                "1:2: expected '=' after attribute name, found '\"'",
            ),
            (
                "A = 1\nB",
                "2:2: expected '=' after attribute name, found end of input",
            ),
            (
                "A = 1\nB\n= 2",
                "2:2: expected '=' after attribute name, found end of line",
            ),
            ("= 1", "1:1: expected an attribute name, found '='"),
            ("A =\n\"x\"", "2:1: expected an attribute name, found '\"'"),
            ("A = ,", "1:5: expected a value for 'A', found ','"),
            ("A = #x", "1:5: expected a value for 'A', found '#'"),
            ("V = [ A = ]", "1:11: expected a value for 'V/A', found ']'"),
            (
                "V = [ A = 1,\n  B ]",
                "2:5: expected '=' after key 'B', found ']'",
            ),
            (
                "V = [ A = 1, ]",
                "1:14: expected a key in vector 'V', found ']'",
            ),
            (
                "V = [ A = 1 B = 2 ]",
                "1:13: expected ',' or ']' in vector 'V', found 'B'",
            ),
            (
                "V = [ A = 1",
                "1:12: expected ',' or ']' in vector 'V', found end of input",
            ),
            (
                "V = [ A = [ B = 1 ] ]",
                "1:11: expected a value for 'V/A', found '['",
            ),
            (
                "V = [ A =\n 1 ]",
                "1:10: expected a value for 'V/A', found end of line",
            ),
            (
                "V = [ -A = 1 ]",
                "1:7: expected a key in vector 'V', found '-'",
            ),
            (
                "A = 1\n  B = \"open\nstill open",
                "2:7: expected a closing '\"' for the value that starts here, found end of input",
            ),
            ("A = 1 ]", "1:7: expected an attribute name, found ']'"),
            (
                "A\t-> 1",
                "1:3: expected '=' after attribute name, found '-'",
            ),
            ("NAME = é]", "1:9: expected an attribute name, found ']'"),
        ];
        for (text, expected) in cases {
            match Template::parse(text) {
                Ok(t) => panic!("{text:?} parsed as {t:?}"),
                Err(e) => assert_eq!(e.to_string(), *expected, "for {text:?}"),
            }
        }
    }

    proptest! {
        #[test]
        fn any_text_parses_or_fails_cleanly(text in "(\\PC|[ \t\r\n\"\\\\#=,\\[\\]A-C])*") {
            // Whatever parses prints back to the same template.
            for t in [Template::parse(&text), Template::parse_monitoring(&text)].into_iter().flatten() {
                prop_assert_eq!(Template::parse(&t.to_string()), Ok(t));
            }
        }
    }

    #[test]
    fn error_fields() {
        let e = Template::parse("A = 1\nB \"").expect_err("broken");
        assert_eq!((e.line, e.col), (2, 3));
        assert_eq!(e.message, "expected '=' after attribute name, found '\"'");
    }

    #[test]
    fn spanned_positions_point_at_each_attribute_name() {
        let text = "# c\nA = 1\n  DISK = [ S = x,\n    T = y ]\tB = \"q\nq\" C =\n\t D = 2";
        let (t, positions) = parse_spanned(text).expect("valid");
        assert_eq!(t, parse_ok(text));
        assert_eq!(names(&t), ["A", "DISK", "B", "C", "D"]);
        let at: Vec<(usize, usize)> = positions.iter().map(|p| (p.line, p.col)).collect();
        assert_eq!(at, [(2, 1), (3, 3), (4, 13), (5, 4), (6, 3)]);
        assert_eq!(parse_spanned(""), Ok((Template::new(), vec![])));
        assert_eq!(
            parse_spanned("A = 1\nB"),
            Err(Template::parse("A = 1\nB").expect_err("broken"))
        );
    }
}
