//! OCCI XML, both ways, with quick-xml (spec/OCCI.md §4, §5, §8.3).
//!
//! Reading: a request body becomes an [`Element`] tree, leniently (any
//! element order, whitespace, attribute quotes, an optional `<?xml?>`
//! line, no namespace needed, tag names in any case), and then one typed
//! request per route ([`ComputeCreate`], [`ComputeUpdate`],
//! [`NetworkCreate`], [`NetworkUpdate`], [`StorageCreate`],
//! [`StorageUpdate`]) that accepts the union of every dialect's shapes and
//! remembers which dialect the shape betrayed.
//!
//! Writing: one typed struct per response document ([`Pool`],
//! [`ComputeDoc`], [`NetworkDoc`], [`StorageDoc`], [`InstanceTypeDoc`]),
//! rendered per [`Dialect`] through a small [`Node`] tree: upper-case
//! tags, no namespace, every text and attribute escaped by quick-xml.
//! The renderings are golden-tested against `tests/data/occi/`.
//!
//! May use: `super` (dialect, errors). No core types: the handlers build
//! these structs from the core's objects.

use std::net::Ipv4Addr;

use quick_xml::escape::escape;
use quick_xml::events::{BytesEnd, BytesStart, BytesText, Event};
use quick_xml::{Reader, Writer};

use super::dialect::Dialect;
use super::error::OcciError;
use super::href::last_segment;

// ---------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------

/// Deepest element nesting accepted: OCCI documents are three levels
/// deep; the bound keeps a hostile body from costing deep recursion.
const MAX_DEPTH: usize = 16;

/// One element of a request body.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Element {
    /// The local name, upper-cased (`COMPUTE`).
    pub name: String,
    /// Attributes in order, local names lower-cased (`href`).
    pub attributes: Vec<(String, String)>,
    /// The element's own text, unescaped and trimmed.
    pub text: String,
    /// Child elements in order.
    pub children: Vec<Element>,
}

impl Element {
    /// Parses a request body. Errors are 400s naming what is wrong.
    pub fn parse(body: &[u8]) -> Result<Element, OcciError> {
        let text =
            std::str::from_utf8(body).map_err(|_| OcciError::bad("the OCCI XML is not UTF-8"))?;
        // A byte-order mark some editors write.
        let text = text.trim_start_matches('\u{feff}');
        if text.trim().is_empty() {
            return Err(OcciError::bad("no OCCI XML in the request body"));
        }
        let malformed = |e: &dyn std::fmt::Display| OcciError::bad(format!("malformed XML: {e}"));
        let mut reader = Reader::from_str(text);
        reader.config_mut().trim_text(true);
        let mut stack: Vec<Element> = Vec::new();
        let mut root: Option<Element> = None;
        loop {
            let event = reader.read_event().map_err(|e| malformed(&e))?;
            match event {
                Event::Start(start) => {
                    Self::check_room(&stack, &root)?;
                    stack.push(Self::open(&start).map_err(|e| malformed(&e))?);
                }
                Event::Empty(start) => {
                    Self::check_room(&stack, &root)?;
                    let element = Self::open(&start).map_err(|e| malformed(&e))?;
                    Self::close(element, &mut stack, &mut root);
                }
                Event::End(_) => {
                    // quick-xml has checked that the names match.
                    let element = stack
                        .pop()
                        .ok_or_else(|| OcciError::bad("malformed XML: unexpected end tag"))?;
                    Self::close(element, &mut stack, &mut root);
                }
                Event::Text(text) => {
                    let text = text.unescape().map_err(|e| malformed(&e))?;
                    Self::add_text(&mut stack, &text)?;
                }
                Event::CData(data) => {
                    let data = data.into_inner();
                    let text = std::str::from_utf8(&data)
                        .map_err(|_| OcciError::bad("the OCCI XML is not UTF-8"))?;
                    Self::add_text(&mut stack, text)?;
                }
                // Declarations, comments, processing instructions and a
                // DOCTYPE carry nothing OCCI reads; quick-xml expands no
                // entity a DOCTYPE could declare.
                Event::Decl(_) | Event::Comment(_) | Event::PI(_) | Event::DocType(_) => {}
                Event::Eof => break,
            }
        }
        if !stack.is_empty() {
            return Err(OcciError::bad(
                "malformed XML: the document ends inside an element",
            ));
        }
        root.ok_or_else(|| OcciError::bad("malformed XML: no root element"))
    }

    /// Refuses a second root and nesting past [`MAX_DEPTH`].
    fn check_room(stack: &[Element], root: &Option<Element>) -> Result<(), OcciError> {
        if root.is_some() && stack.is_empty() {
            Err(OcciError::bad("malformed XML: more than one root element"))
        } else if stack.len() >= MAX_DEPTH {
            Err(OcciError::bad("malformed XML: nested too deep"))
        } else {
            Ok(())
        }
    }

    fn open(start: &BytesStart<'_>) -> Result<Element, quick_xml::Error> {
        let name = String::from_utf8_lossy(start.local_name().as_ref()).to_ascii_uppercase();
        let mut attributes = Vec::new();
        for attribute in start.attributes() {
            let attribute = attribute?;
            let key =
                String::from_utf8_lossy(attribute.key.local_name().as_ref()).to_ascii_lowercase();
            let value = attribute.unescape_value()?.trim().to_string();
            attributes.push((key, value));
        }
        Ok(Element {
            name,
            attributes,
            ..Element::default()
        })
    }

    fn close(element: Element, stack: &mut [Element], root: &mut Option<Element>) {
        match stack.last_mut() {
            Some(parent) => parent.children.push(element),
            None => *root = Some(element),
        }
    }

    fn add_text(stack: &mut [Element], text: &str) -> Result<(), OcciError> {
        match stack.last_mut() {
            Some(element) => {
                element.text.push_str(text);
                let trimmed = element.text.trim();
                if trimmed.len() != element.text.len() {
                    element.text = trimmed.to_string();
                }
                Ok(())
            }
            None if text.trim().is_empty() => Ok(()),
            None => Err(OcciError::bad(
                "malformed XML: text outside the root element",
            )),
        }
    }

    /// The first child named `name` (upper case).
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// Every child named `name` (upper case), in order.
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// An attribute's value (lower-case name).
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The text of the first child named `name`, `None` when the child is
    /// missing or empty (libcloud sends `<NAME />`).
    pub fn text_of(&self, name: &str) -> Option<&str> {
        self.child(name)
            .map(|c| c.text.as_str())
            .filter(|t| !t.is_empty())
    }

    /// Refuses a document whose root is none of `names`.
    fn expect_root(&self, names: &[&str]) -> Result<(), OcciError> {
        if names.contains(&self.name.as_str()) {
            Ok(())
        } else {
            Err(OcciError::bad(format!(
                "the OCCI XML root must be {}, not {}",
                names.join(" or "),
                self.name
            )))
        }
    }
}

/// `YES`/`NO` (any case; `true`/`false` too) of element `field`.
fn yes_no(field: &str, text: &str) -> Result<bool, OcciError> {
    match text.to_ascii_lowercase().as_str() {
        "yes" | "true" => Ok(true),
        "no" | "false" => Ok(false),
        _ => Err(OcciError::bad(format!(
            "{field} must be YES or NO, not {text}"
        ))),
    }
}

/// A whole number of megabytes, at least 1, in element or attribute
/// `field`.
fn megabytes(field: &str, text: &str) -> Result<u64, OcciError> {
    match text.trim().parse::<u64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(OcciError::bad(format!(
            "{field} must be a whole number of megabytes, not {text}"
        ))),
    }
}

/// A disk target (`dev`, `TARGET`) or file system format: it reaches
/// driver scripts, so letters and digits only (`sda1`, `hdb`, `ext3`).
fn word(field: &str, text: &str) -> Result<String, OcciError> {
    if !text.is_empty() && text.len() <= 32 && text.chars().all(|c| c.is_ascii_alphanumeric()) {
        Ok(text.to_string())
    } else {
        Err(OcciError::bad(format!(
            "{field} must be letters and digits (like sda1 or ext3), not {text}"
        )))
    }
}

/// An id given as an id or as an href.
fn id_from(reference: &str) -> Option<u64> {
    last_segment(reference).and_then(|s| s.parse().ok())
}

/// A disk asked for in a `POST /compute`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DiskRequest {
    /// A disk from a registered image.
    Image {
        /// The image's id.
        image: u64,
        /// The target device, if given (`dev`, 2.x `TARGET`).
        target: Option<String>,
    },
    /// A volatile swap disk.
    Swap {
        /// Its size in MB.
        size_mb: u64,
        /// The target device, if given.
        target: Option<String>,
    },
    /// A volatile formatted disk.
    Fs {
        /// Its size in MB.
        size_mb: u64,
        /// The file system (`ext3`); `None` takes the default.
        format: Option<String>,
        /// The target device, if given.
        target: Option<String>,
    },
}

/// A NIC asked for in a `POST /compute`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NicRequest {
    /// The network's id.
    pub network: u64,
    /// The address wished for (libcloud sends the network's own address;
    /// the handler decides what to do with it).
    pub ip: Option<Ipv4Addr>,
}

/// `POST /compute` (spec/OCCI.md §4.1), any dialect.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ComputeCreate {
    /// `NAME`; `None` when missing or empty (libcloud ≥ 2.8 sends it
    /// empty).
    pub name: Option<String>,
    /// `INSTANCE_TYPE` (or its `href`'s last segment, or the seed prose's
    /// `TYPE`).
    pub instance_type: Option<String>,
    /// 2.2 `custom` type: `CPU`.
    pub cpu: Option<f64>,
    /// 2.2 `custom` type: `MEMORY` in MB.
    pub memory_mb: Option<u64>,
    /// Disks in document order.
    pub disks: Vec<DiskRequest>,
    /// NICs in document order.
    pub nics: Vec<NicRequest>,
    /// `CONTEXT` children: upper-case name and text.
    pub context: Vec<(String, String)>,
    /// The dialect the document's shape shows, if it shows one.
    pub shape: Option<Dialect>,
}

impl ComputeCreate {
    /// Reads a `COMPUTE` document: 1.4's `STORAGE`/`DISKS` and `NETWORK`
    /// wrappers with `DISK image=`, `SWAP`, `FS` and `NIC network= ip=`,
    /// and 2.x's top-level `DISK` (with `STORAGE href=`) and `NIC` (with
    /// `NETWORK href=` and `IP`), in any mix.
    pub fn parse(doc: &Element) -> Result<Self, OcciError> {
        doc.expect_root(&["COMPUTE"])?;
        let mut out = ComputeCreate {
            name: doc.text_of("NAME").map(str::to_string),
            ..ComputeCreate::default()
        };
        out.instance_type = match doc.child("INSTANCE_TYPE") {
            Some(t) if !t.text.is_empty() => Some(t.text.clone()),
            Some(t) => t
                .attribute("href")
                .and_then(last_segment)
                .map(str::to_string),
            None => doc.text_of("TYPE").map(str::to_string),
        };
        if let Some(cpu) = doc.text_of("CPU") {
            out.cpu = Some(
                cpu.parse::<f64>()
                    .ok()
                    .filter(|c| c.is_finite() && *c > 0.0)
                    .ok_or_else(|| {
                        OcciError::bad(format!("CPU must be a positive number, not {cpu}"))
                    })?,
            );
        }
        if let Some(memory) = doc.text_of("MEMORY") {
            out.memory_mb = Some(megabytes("MEMORY", memory)?);
        }
        let mut shape = None;
        for child in &doc.children {
            match child.name.as_str() {
                // 1.4: the 1.4 server reads STORAGE, the seed writes DISKS.
                "STORAGE" | "DISKS" => {
                    shape = Some(Dialect::V1_4);
                    for disk in &child.children {
                        if let Some(disk) = Self::wrapped_disk(disk)? {
                            out.disks.push(disk);
                        }
                    }
                }
                "NETWORK" => {
                    shape = Some(Dialect::V1_4);
                    for nic in child.children_named("NIC") {
                        out.nics.push(Self::nic(nic)?);
                    }
                }
                "DISK" => {
                    shape.get_or_insert(Dialect::V2);
                    if let Some(disk) = Self::top_level_disk(child)? {
                        out.disks.push(disk);
                    }
                }
                "NIC" => {
                    shape.get_or_insert(Dialect::V2);
                    out.nics.push(Self::nic(child)?);
                }
                "CONTEXT" => {
                    for var in &child.children {
                        if !is_tag(&var.name) {
                            return Err(OcciError::bad(format!(
                                "CONTEXT/{} is not a valid variable name",
                                var.name
                            )));
                        }
                        out.context.push((var.name.clone(), var.text.clone()));
                    }
                }
                _ => {}
            }
        }
        out.shape = shape;
        Ok(out)
    }

    /// A disk inside 1.4's `STORAGE`/`DISKS`: `DISK image=` (or `href=`),
    /// `SWAP size=`, `FS size= format=`.
    fn wrapped_disk(disk: &Element) -> Result<Option<DiskRequest>, OcciError> {
        let target = disk
            .attribute("dev")
            .filter(|d| !d.is_empty())
            .map(|d| word("dev", d))
            .transpose()?;
        let size = |what: &str| {
            disk.attribute("size")
                .ok_or_else(|| OcciError::bad(format!("{what} needs a size attribute (MB)")))
                .and_then(|s| megabytes(&format!("{what} size"), s))
        };
        Ok(Some(match disk.name.as_str() {
            "DISK" => {
                let reference = disk
                    .attribute("image")
                    .or_else(|| disk.attribute("href"))
                    .ok_or_else(|| OcciError::bad("DISK needs an image attribute"))?;
                let image = id_from(reference).ok_or_else(|| invalid_image(reference))?;
                DiskRequest::Image { image, target }
            }
            "SWAP" => DiskRequest::Swap {
                size_mb: size("SWAP")?,
                target,
            },
            "FS" => DiskRequest::Fs {
                size_mb: size("FS")?,
                format: disk
                    .attribute("format")
                    .filter(|f| !f.is_empty())
                    .map(|f| word("FS format", f))
                    .transpose()?,
                target,
            },
            _ => return Ok(None),
        }))
    }

    /// 2.x's top-level `DISK`: `STORAGE href=` names the image; without
    /// one, a `TYPE` of `swap` or `fs` with a `SIZE` is a volatile disk
    /// (cloudgate's reading); anything else is ignored, as 2.x did.
    fn top_level_disk(disk: &Element) -> Result<Option<DiskRequest>, OcciError> {
        let target = disk
            .text_of("TARGET")
            .map(|t| word("TARGET", t))
            .transpose()?;
        if let Some(href) = disk.child("STORAGE").and_then(|s| s.attribute("href")) {
            let image = id_from(href).ok_or_else(|| invalid_image(href))?;
            return Ok(Some(DiskRequest::Image { image, target }));
        }
        let size = || {
            disk.text_of("SIZE")
                .ok_or_else(|| OcciError::bad("a volatile DISK needs a SIZE (MB)"))
                .and_then(|s| megabytes("DISK/SIZE", s))
        };
        Ok(
            match disk.text_of("TYPE").map(str::to_ascii_lowercase).as_deref() {
                Some("swap") => Some(DiskRequest::Swap {
                    size_mb: size()?,
                    target,
                }),
                Some("fs") => Some(DiskRequest::Fs {
                    size_mb: size()?,
                    format: disk
                        .text_of("FORMAT")
                        .map(|f| word("DISK/FORMAT", f))
                        .transpose()?,
                    target,
                }),
                _ => None,
            },
        )
    }

    /// A `NIC`: 1.4 `network=`/`href=` and `ip=` attributes, or 2.x
    /// `NETWORK href=` and `IP` children.
    fn nic(nic: &Element) -> Result<NicRequest, OcciError> {
        let reference = nic
            .attribute("network")
            .or_else(|| nic.attribute("href"))
            .or_else(|| nic.child("NETWORK").and_then(|n| n.attribute("href")))
            .ok_or_else(|| {
                OcciError::bad("NIC needs a network (attribute network or NETWORK href)")
            })?;
        let network = id_from(reference).ok_or_else(invalid_network)?;
        let ip = match nic
            .attribute("ip")
            .filter(|i| !i.is_empty())
            .or_else(|| nic.text_of("IP"))
        {
            Some(ip) => Some(
                ip.parse::<Ipv4Addr>()
                    .map_err(|_| OcciError::bad(format!("NIC ip {ip} is not an IPv4 address")))?,
            ),
            None => None,
        };
        Ok(NicRequest { network, ip })
    }
}

/// The 1.4 server's text for an unusable image reference.
pub fn invalid_image(reference: impl std::fmt::Display) -> OcciError {
    OcciError::bad(format!("Invalid image ({reference}) referred"))
}

/// The 1.4 server's text for an unusable network reference.
pub fn invalid_network() -> OcciError {
    OcciError::bad("Invalid network referred")
}

/// Whether `name` can be both a template attribute and an XML tag:
/// letters, digits and `_`, not starting with a digit (CONTEXT variables
/// go both ways).
fn is_tag(name: &str) -> bool {
    name.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `PUT /compute/{id}` (spec/OCCI.md §4.2). The body's `ID` is ignored:
/// the URL names the VM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ComputeUpdate {
    /// `STATE`, as sent.
    pub state: Option<String>,
    /// 2.2 `DISK id= / SAVE_AS name=` requests, in document order.
    pub save_as: Vec<DiskSaveAs>,
    /// The dialect the document's shape shows, if it shows one.
    pub shape: Option<Dialect>,
}

/// One `DISK` with a `SAVE_AS name=` in a `PUT /compute/{id}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiskSaveAs {
    /// `DISK@id`, as sent: the disk's index in the VM (2.2), or the
    /// image's id (libcloud 3.0's bug, spec/OCCI.md §4.2).
    pub disk_id: String,
    /// The id in the `STORAGE href` child, if there is one: the image
    /// the disk was made from, which names the disk better than `id`.
    pub image: Option<u64>,
    /// The new image's name.
    pub name: String,
}

impl ComputeUpdate {
    /// Reads a `COMPUTE` update.
    pub fn parse(doc: &Element) -> Result<Self, OcciError> {
        doc.expect_root(&["COMPUTE"])?;
        let save_as = doc
            .children_named("DISK")
            .filter_map(|disk| {
                let name = disk.child("SAVE_AS")?.attribute("name")?;
                let image = disk
                    .child("STORAGE")
                    .and_then(|s| s.attribute("href"))
                    .map(|href| id_from(href).ok_or_else(|| invalid_image(href)))
                    .transpose();
                Some(image.map(|image| DiskSaveAs {
                    disk_id: disk.attribute("id").unwrap_or_default().to_string(),
                    image,
                    name: name.to_string(),
                }))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ComputeUpdate {
            state: doc.text_of("STATE").map(str::to_string),
            shape: (!save_as.is_empty()).then_some(Dialect::V2),
            save_as,
        })
    }
}

/// `POST /network` (spec/OCCI.md §4.3), root `NETWORK` or released 1.4's
/// `NIC`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkCreate {
    /// `NAME`.
    pub name: String,
    /// `ADDRESS`: the network's base address.
    pub address: String,
    /// `SIZE`: a number of addresses or a class letter; `None` takes the
    /// default (`C`, the seed's).
    pub size: Option<String>,
    /// 2.2 `DESCRIPTION`.
    pub description: Option<String>,
    /// 2.2 `PUBLIC`.
    pub public: Option<bool>,
    /// The dialect the document's shape shows, if it shows one.
    pub shape: Option<Dialect>,
}

impl NetworkCreate {
    /// Reads a `NETWORK` (or `NIC`) document.
    pub fn parse(doc: &Element) -> Result<Self, OcciError> {
        doc.expect_root(&["NETWORK", "NIC"])?;
        let required = |name: &str| {
            doc.text_of(name)
                .map(str::to_string)
                .ok_or_else(|| OcciError::bad(format!("NETWORK/{name} is missing")))
        };
        Ok(NetworkCreate {
            name: required("NAME")?,
            address: required("ADDRESS")?,
            size: doc.text_of("SIZE").map(str::to_string),
            description: doc.text_of("DESCRIPTION").map(str::to_string),
            public: doc
                .text_of("PUBLIC")
                .map(|p| yes_no("PUBLIC", p))
                .transpose()?,
            shape: (doc.name == "NIC").then_some(Dialect::V1_4),
        })
    }
}

/// `PUT /network/{id}` (2.2): publish or unpublish.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkUpdate {
    /// `PUBLIC`.
    pub public: bool,
}

impl NetworkUpdate {
    /// Reads a `NETWORK` update.
    pub fn parse(doc: &Element) -> Result<Self, OcciError> {
        doc.expect_root(&["NETWORK"])?;
        let public = doc
            .text_of("PUBLIC")
            .ok_or_else(|| OcciError::bad("NETWORK/PUBLIC is missing: nothing to change"))?;
        Ok(NetworkUpdate {
            public: yes_no("PUBLIC", public)?,
        })
    }
}

/// The `occixml` of `POST /storage` (spec/OCCI.md §7): 1.4's `DISK` or
/// 2.x's `STORAGE`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StorageCreate {
    /// `NAME` (default: the uploaded file's name).
    pub name: Option<String>,
    /// 1.4 `URL`: where the client read the file; kept as the description.
    pub url: Option<String>,
    /// 2.x `DESCRIPTION`.
    pub description: Option<String>,
    /// 2.x `TYPE` as sent (`OS`, `CDROM`, `DATABLOCK`).
    pub image_type: Option<String>,
    /// 2.x `PUBLIC`.
    pub public: Option<bool>,
    /// 2.x `PERSISTENT`.
    pub persistent: Option<bool>,
    /// 2.x `FSTYPE` (datablocks).
    pub fstype: Option<String>,
    /// 2.x `SIZE` in MB (an empty datablock's size).
    pub size_mb: Option<u64>,
    /// The dialect the root shows.
    pub shape: Option<Dialect>,
}

impl StorageCreate {
    /// Reads the `occixml` document.
    pub fn parse(doc: &Element) -> Result<Self, OcciError> {
        doc.expect_root(&["DISK", "STORAGE"])?;
        let text = |name: &str| doc.text_of(name).map(str::to_string);
        Ok(StorageCreate {
            name: text("NAME"),
            url: text("URL"),
            description: text("DESCRIPTION"),
            image_type: text("TYPE"),
            public: doc
                .text_of("PUBLIC")
                .map(|p| yes_no("PUBLIC", p))
                .transpose()?,
            persistent: doc
                .text_of("PERSISTENT")
                .map(|p| yes_no("PERSISTENT", p))
                .transpose()?,
            fstype: doc
                .text_of("FSTYPE")
                .map(|f| word("FSTYPE", f))
                .transpose()?,
            size_mb: doc
                .text_of("SIZE")
                .map(|s| megabytes("SIZE", s))
                .transpose()?,
            shape: Some(if doc.name == "DISK" {
                Dialect::V1_4
            } else {
                Dialect::V2
            }),
        })
    }
}

/// `PUT /storage/{id}` (2.2): exactly one change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StorageUpdate {
    /// `PERSISTENT` YES or NO.
    Persistent(bool),
    /// `PUBLIC` YES or NO.
    Public(bool),
}

impl StorageUpdate {
    /// Reads a `STORAGE` (or `DISK`) update.
    pub fn parse(doc: &Element) -> Result<Self, OcciError> {
        doc.expect_root(&["STORAGE", "DISK"])?;
        match (doc.text_of("PERSISTENT"), doc.text_of("PUBLIC")) {
            (Some(p), None) => Ok(StorageUpdate::Persistent(yes_no("PERSISTENT", p)?)),
            (None, Some(p)) => Ok(StorageUpdate::Public(yes_no("PUBLIC", p)?)),
            (Some(_), Some(_)) => Err(OcciError::bad(
                "only one change per request: PERSISTENT or PUBLIC",
            )),
            (None, None) => Err(OcciError::bad(
                "nothing to change: give PERSISTENT or PUBLIC",
            )),
        }
    }
}

// ---------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------

/// An element to write.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    name: String,
    attributes: Vec<(&'static str, String)>,
    text: String,
    children: Vec<Node>,
}

impl Node {
    /// An empty element.
    pub fn new(name: impl Into<String>) -> Self {
        Node {
            name: name.into(),
            attributes: Vec::new(),
            text: String::new(),
            children: Vec::new(),
        }
    }

    /// An element with text.
    pub fn text(name: impl Into<String>, text: impl ToString) -> Self {
        Node {
            text: text.to_string(),
            ..Node::new(name)
        }
    }

    /// Adds an attribute.
    pub fn attr(mut self, name: &'static str, value: impl ToString) -> Self {
        self.attributes.push((name, value.to_string()));
        self
    }

    /// Adds a child.
    pub fn child(mut self, child: Node) -> Self {
        self.children.push(child);
        self
    }

    /// Adds a child when there is one.
    pub fn child_opt(self, child: Option<Node>) -> Self {
        match child {
            Some(child) => self.child(child),
            None => self,
        }
    }

    /// Adds children.
    pub fn children(mut self, children: impl IntoIterator<Item = Node>) -> Self {
        self.children.extend(children);
        self
    }

    /// The document: the element, indented by two spaces (clients ignore
    /// the whitespace; people reading curl output do not). No XML
    /// declaration, like OpenNebula's servers: UTF-8 is XML's default, and
    /// lxml refuses a declaration in a string libcloud may hand it.
    pub fn render(&self) -> String {
        let mut writer = Writer::new_with_indent(Vec::new(), b' ', 2);
        self.write(&mut writer);
        let body =
            String::from_utf8(writer.into_inner()).expect("quick-xml writes the UTF-8 it is given");
        body + "\n"
    }

    fn write(&self, writer: &mut Writer<Vec<u8>>) {
        let mut start = BytesStart::new(self.name.as_str());
        for (key, value) in &self.attributes {
            // `push_attribute` escapes the value.
            start.push_attribute((*key, value.as_str()));
        }
        let written = if self.text.is_empty() && self.children.is_empty() {
            writer.write_event(Event::Empty(start))
        } else {
            writer.write_event(Event::Start(start)).and_then(|_| {
                if !self.text.is_empty() {
                    // `BytesText::new` escapes the text.
                    writer.write_event(Event::Text(BytesText::new(&self.text)))?;
                }
                for child in &self.children {
                    child.write(writer);
                }
                writer.write_event(Event::End(BytesEnd::new(self.name.as_str())))
            })
        };
        written.expect("writing to a Vec cannot fail");
    }
}

/// A number as OCCI shows it: `1`, `0.5` (libcloud reads CPU with
/// `float()`).
fn number(n: f64) -> String {
    format!("{n}")
}

/// Which pool a [`Pool`] lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolKind {
    /// `/compute`.
    Compute,
    /// `/network`.
    Network,
    /// `/storage`.
    Storage,
}

/// One entry of a pool: its href and name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolEntry {
    /// The entry's href.
    pub href: String,
    /// Its name (an extra attribute in 1.4; every client ignores it).
    pub name: String,
}

/// A pool listing (spec/OCCI.md §5.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pool {
    /// Which pool.
    pub kind: PoolKind,
    /// The entries, in id order.
    pub entries: Vec<PoolEntry>,
}

impl Pool {
    /// 1.4: `COMPUTES/COMPUTE`, `NETWORKS/NETWORK`, `STORAGE/DISK`; 2.x:
    /// `*_COLLECTION` with `COMPUTE`, `NETWORK`, `STORAGE`.
    pub fn render(&self, dialect: Dialect) -> String {
        let (root, entry) = match (self.kind, dialect) {
            (PoolKind::Compute, Dialect::V1_4) => ("COMPUTES", "COMPUTE"),
            (PoolKind::Network, Dialect::V1_4) => ("NETWORKS", "NETWORK"),
            (PoolKind::Storage, Dialect::V1_4) => ("STORAGE", "DISK"),
            (PoolKind::Compute, Dialect::V2) => ("COMPUTE_COLLECTION", "COMPUTE"),
            (PoolKind::Network, Dialect::V2) => ("NETWORK_COLLECTION", "NETWORK"),
            (PoolKind::Storage, Dialect::V2) => ("STORAGE_COLLECTION", "STORAGE"),
        };
        // Written straight into one string sized for it, as the `Node`
        // tree would render it (indented by two, values escaped as
        // `push_attribute` escapes them): a pool lists thousands of entries.
        if self.entries.is_empty() {
            return format!("<{root}/>\n");
        }
        let per_entry = entry.len() + 22;
        let size: usize = self
            .entries
            .iter()
            .map(|e| per_entry + e.href.len() + e.name.len())
            .sum();
        let mut out = String::with_capacity(2 * root.len() + 8 + size + size / 8);
        out.push('<');
        out.push_str(root);
        out.push('>');
        for e in &self.entries {
            out.push_str("\n  <");
            out.push_str(entry);
            out.push_str(" href=\"");
            out.push_str(&escape(e.href.as_str()));
            out.push_str("\" name=\"");
            out.push_str(&escape(e.name.as_str()));
            out.push_str("\"/>");
        }
        out.push_str("\n</");
        out.push_str(root);
        out.push_str(">\n");
        out
    }
}

/// What a VM's disk is, as a COMPUTE shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DiskSource {
    /// A registered image.
    Image {
        /// The image's id.
        id: u64,
        /// Its href.
        href: String,
        /// Its name (empty if the image is gone).
        name: String,
        /// `DISK` or `CDROM`.
        kind: &'static str,
    },
    /// Volatile swap.
    Swap {
        /// Size in MB.
        size_mb: u64,
    },
    /// Volatile formatted disk.
    Fs {
        /// Size in MB.
        size_mb: u64,
        /// The file system.
        format: String,
    },
    /// A disk of no image (an administrator's `SOURCE` path): shown
    /// without an image reference.
    Other,
}

/// One disk of a COMPUTE.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiskDoc {
    /// The disk's index in the VM (`DISK_ID`).
    pub index: u64,
    /// What it is.
    pub source: DiskSource,
    /// The target device, if known.
    pub target: Option<String>,
    /// The href of the image the disk is (to be) saved as (2.2
    /// `SAVE_AS`), if any.
    pub save_as: Option<String>,
}

/// One NIC of a COMPUTE.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NicDoc {
    /// The network's id.
    pub network: u64,
    /// The network's href.
    pub href: String,
    /// The network's name.
    pub name: String,
    /// The leased address, if known.
    pub ip: Option<String>,
    /// Its MAC, if known.
    pub mac: Option<String>,
}

/// A VM (spec/OCCI.md §5.2).
#[derive(Clone, Debug, PartialEq)]
pub struct ComputeDoc {
    /// Its href.
    pub href: String,
    /// Its id.
    pub id: u64,
    /// Its name.
    pub name: String,
    /// `CPU`, if known.
    pub cpu: Option<f64>,
    /// `MEMORY` in MB, if known.
    pub memory_mb: Option<u64>,
    /// The instance type it was created with, if any.
    pub instance_type: Option<String>,
    /// `STATE`: one of the eight upper-case names of §6.1.
    pub state: &'static str,
    /// The life-cycle state while `ACTIVE` (`RUNNING`), an extra element
    /// clients ignore and people polling read.
    pub lcm_state: Option<&'static str>,
    /// Disks in order.
    pub disks: Vec<DiskDoc>,
    /// NICs in order.
    pub nics: Vec<NicDoc>,
    /// Context variables (2.x shows them).
    pub context: Vec<(String, String)>,
    /// `<base>/storage/`: the href 2.x gives volatile disks.
    pub volatile_href: String,
}

impl ComputeDoc {
    /// The COMPUTE document of `dialect`.
    pub fn render(&self, dialect: Dialect) -> String {
        match dialect {
            Dialect::V1_4 => self.node_1_4(),
            Dialect::V2 => self.node_2(),
        }
        .render()
    }

    /// 1.4: `STORAGE` wraps `DISK image= href= dev= type=`, `SWAP`, `FS`;
    /// `NETWORK` wraps `NIC network= href= ip= mac=` and is always there
    /// (libcloud's 1.4 driver reads it without a check).
    fn node_1_4(&self) -> Node {
        let disks: Vec<Node> = self
            .disks
            .iter()
            .map(|disk| {
                let node = match &disk.source {
                    DiskSource::Image { id, href, .. } => {
                        Node::new("DISK").attr("image", id).attr("href", href)
                    }
                    DiskSource::Swap { size_mb } => Node::new("SWAP").attr("size", size_mb),
                    DiskSource::Fs { size_mb, format } => {
                        Node::new("FS").attr("size", size_mb).attr("format", format)
                    }
                    DiskSource::Other => Node::new("DISK"),
                };
                let node = match &disk.target {
                    Some(target) => node.attr("dev", target),
                    None => node,
                };
                match &disk.source {
                    DiskSource::Image { kind, .. } => node.attr("type", kind.to_ascii_lowercase()),
                    DiskSource::Other => node.attr("type", "disk"),
                    DiskSource::Swap { .. } | DiskSource::Fs { .. } => node,
                }
            })
            .collect();
        let nics = self.nics.iter().map(|nic| {
            let node = Node::new("NIC")
                .attr("network", nic.network)
                .attr("href", &nic.href);
            let node = match &nic.ip {
                Some(ip) => node.attr("ip", ip),
                None => node,
            };
            match &nic.mac {
                Some(mac) => node.attr("mac", mac),
                None => node,
            }
        });
        Node::new("COMPUTE")
            .attr("href", &self.href)
            .child(Node::text("ID", self.id))
            .child(Node::text("NAME", &self.name))
            .child_opt(
                self.instance_type
                    .as_ref()
                    .map(|t| Node::text("INSTANCE_TYPE", t)),
            )
            .child(Node::text("STATE", self.state))
            .child_opt(self.lcm_state.map(|s| Node::text("LCM_STATE", s)))
            .child_opt((!disks.is_empty()).then(|| Node::new("STORAGE").children(disks)))
            .child(Node::new("NETWORK").children(nics))
    }

    /// 2.x: `CPU`, `MEMORY`, `INSTANCE_TYPE` (always, libcloud's 2.x
    /// driver reads it without a check), top-level `DISK id=` each with a
    /// `STORAGE href=` (volatile disks: `<base>/storage/`), `NIC` each
    /// with a `NETWORK href=`, and `CONTEXT`.
    fn node_2(&self) -> Node {
        let disks = self.disks.iter().map(|disk| {
            let (storage, kind) = match &disk.source {
                DiskSource::Image {
                    href, name, kind, ..
                } => (
                    Node::new("STORAGE").attr("href", href).attr("name", name),
                    *kind,
                ),
                DiskSource::Swap { .. } => (self.no_storage(), "swap"),
                DiskSource::Fs { .. } => (self.no_storage(), "fs"),
                DiskSource::Other => (self.no_storage(), "DISK"),
            };
            Node::new("DISK")
                .attr("id", disk.index)
                .child(storage)
                .child(Node::text("TYPE", kind))
                .child_opt(disk.target.as_ref().map(|t| Node::text("TARGET", t)))
                .child_opt(
                    disk.save_as
                        .as_ref()
                        .map(|href| Node::new("SAVE_AS").attr("href", href)),
                )
        });
        let nics = self.nics.iter().map(|nic| {
            Node::new("NIC")
                .child(
                    Node::new("NETWORK")
                        .attr("href", &nic.href)
                        .attr("name", &nic.name),
                )
                .child_opt(nic.ip.as_ref().map(|ip| Node::text("IP", ip)))
                .child_opt(nic.mac.as_ref().map(|mac| Node::text("MAC", mac)))
        });
        let context = (!self.context.is_empty()).then(|| {
            Node::new("CONTEXT").children(
                self.context
                    .iter()
                    .filter(|(name, _)| is_tag(name))
                    .map(|(name, value)| Node::text(name.as_str(), value)),
            )
        });
        Node::new("COMPUTE")
            .attr("href", &self.href)
            .child(Node::text("ID", self.id))
            .child_opt(self.cpu.map(|c| Node::text("CPU", number(c))))
            .child_opt(self.memory_mb.map(|m| Node::text("MEMORY", m)))
            .child(Node::text("NAME", &self.name))
            .child(Node::text(
                "INSTANCE_TYPE",
                self.instance_type.as_deref().unwrap_or_default(),
            ))
            .child(Node::text("STATE", self.state))
            .child_opt(self.lcm_state.map(|s| Node::text("LCM_STATE", s)))
            .children(disks)
            .children(nics)
            .child_opt(context)
    }

    /// The `STORAGE` of a volatile disk: OpenNebula 2.x's href without an
    /// id.
    fn no_storage(&self) -> Node {
        Node::new("STORAGE")
            .attr("href", &self.volatile_href)
            .attr("name", "")
    }
}

/// A virtual network (spec/OCCI.md §5.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkDoc {
    /// Its href.
    pub href: String,
    /// Its id.
    pub id: u64,
    /// Its name.
    pub name: String,
    /// A RANGED network's base address.
    pub address: Option<String>,
    /// Its size as configured (`C`, `254`), else its number of addresses.
    pub size: String,
    /// `DESCRIPTION`, if any (2.x).
    pub description: Option<String>,
    /// `PUBLIC` (2.x).
    pub public: bool,
    /// Leases in use (`USED_LEASES`, as OpenNebula 3.x showed it).
    pub used_leases: usize,
}

impl NetworkDoc {
    /// 1.4: `ID NAME ADDRESS SIZE`; 2.x adds `DESCRIPTION` and `PUBLIC`.
    /// Both show `USED_LEASES`.
    pub fn render(&self, dialect: Dialect) -> String {
        let node = Node::new("NETWORK")
            .attr("href", &self.href)
            .child(Node::text("ID", self.id))
            .child(Node::text("NAME", &self.name));
        let node = match dialect {
            Dialect::V1_4 => node,
            Dialect::V2 => node.child_opt(
                self.description
                    .as_ref()
                    .map(|d| Node::text("DESCRIPTION", d)),
            ),
        };
        let node = node
            .child_opt(self.address.as_ref().map(|a| Node::text("ADDRESS", a)))
            .child(Node::text("SIZE", &self.size))
            .child(Node::text("USED_LEASES", self.used_leases));
        match dialect {
            Dialect::V1_4 => node,
            Dialect::V2 => node.child(Node::text("PUBLIC", yes(self.public))),
        }
        .render()
    }
}

/// An image (spec/OCCI.md §5.4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StorageDoc {
    /// Its href.
    pub href: String,
    /// Its id.
    pub id: u64,
    /// Its name.
    pub name: String,
    /// `OS`, `CDROM` or `DATABLOCK`.
    pub image_type: &'static str,
    /// `DESCRIPTION`, if any.
    pub description: Option<String>,
    /// 1.4's `URL`: what the client gave at upload, else the description.
    pub url: Option<String>,
    /// `SIZE` in MB.
    pub size_mb: u64,
    /// `FSTYPE`, datablocks only.
    pub fstype: Option<String>,
    /// `PUBLIC`.
    pub public: bool,
    /// `PERSISTENT`.
    pub persistent: bool,
}

impl StorageDoc {
    /// 1.4: `DISK` with `ID NAME SIZE URL`; 2.x: `STORAGE` with `ID NAME
    /// TYPE DESCRIPTION SIZE FSTYPE PUBLIC PERSISTENT`.
    pub fn render(&self, dialect: Dialect) -> String {
        match dialect {
            Dialect::V1_4 => Node::new("DISK")
                .attr("href", &self.href)
                .child(Node::text("ID", self.id))
                .child(Node::text("NAME", &self.name))
                .child(Node::text("SIZE", self.size_mb))
                .child_opt(self.url.as_ref().map(|u| Node::text("URL", u))),
            Dialect::V2 => Node::new("STORAGE")
                .attr("href", &self.href)
                .child(Node::text("ID", self.id))
                .child(Node::text("NAME", &self.name))
                .child(Node::text("TYPE", self.image_type))
                .child_opt(
                    self.description
                        .as_ref()
                        .map(|d| Node::text("DESCRIPTION", d)),
                )
                .child(Node::text("SIZE", self.size_mb))
                .child_opt(self.fstype.as_ref().map(|f| Node::text("FSTYPE", f)))
                .child(Node::text("PUBLIC", yes(self.public)))
                .child(Node::text("PERSISTENT", yes(self.persistent))),
        }
        .render()
    }
}

/// An instance type (spec/OCCI.md §8.3); the same in both dialects.
#[derive(Clone, Debug, PartialEq)]
pub struct InstanceTypeDoc {
    /// Its href.
    pub href: String,
    /// Its name.
    pub name: String,
    /// `CPU`.
    pub cpu: f64,
    /// `VCPU`, when the type sets it (omitted, never empty: libcloud reads
    /// it with `float()`).
    pub vcpu: Option<u32>,
    /// `MEMORY` in MB.
    pub memory_mb: u64,
}

impl InstanceTypeDoc {
    /// `<INSTANCE_TYPE href= name=>` with `ID NAME CPU VCPU MEMORY`:
    /// libcloud 3.2 reads the children, 3.8 the `name` attribute.
    fn node(&self) -> Node {
        Node::new("INSTANCE_TYPE")
            .attr("href", &self.href)
            .attr("name", &self.name)
            .child(Node::text("ID", &self.name))
            .child(Node::text("NAME", &self.name))
            .child(Node::text("CPU", number(self.cpu)))
            .child_opt(self.vcpu.map(|v| Node::text("VCPU", v)))
            .child(Node::text("MEMORY", self.memory_mb))
    }

    /// The single `INSTANCE_TYPE` document.
    pub fn render(&self) -> String {
        self.node().render()
    }

    /// `INSTANCE_TYPE_COLLECTION` of every type, in config order.
    pub fn render_collection(types: &[InstanceTypeDoc]) -> String {
        Node::new("INSTANCE_TYPE_COLLECTION")
            .children(types.iter().map(InstanceTypeDoc::node))
            .render()
    }
}

/// `YES` or `NO`.
fn yes(flag: bool) -> &'static str {
    if flag {
        "YES"
    } else {
        "NO"
    }
}

#[cfg(test)]
mod tests;
