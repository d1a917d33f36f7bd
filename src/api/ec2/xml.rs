//! EC2 response documents (spec/EC2.md §6, §9.4): one typed struct per
//! document, rendered with quick-xml by [`render`] into
//! `<{Action}Response xmlns="http://ec2.amazonaws.com/doc/<Version>/">`
//! with a `requestId`, the namespace echoing the request's `Version`
//! (libcloud looks elements up in it; botocore ignores it).
//!
//! Rules from §9.4 that the types enforce: integers and timestamps are
//! numbers and times, never empty (an optional one is omitted); booleans
//! are exactly `true` / `false`; lists are `<xSet><item>` and an empty
//! list is an empty `<xSet/>`. Rendering is pure and checked against the
//! golden files under `tests/data/ec2/` (STYLE.md §1.11).
//!
//! May use: `crate::auth` (time formatting), `super`.

use quick_xml::escape::partial_escape;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use quick_xml::Writer;

use super::action::Action;
use super::ids::{self, Resource};
use crate::auth::time::format_iso8601;

/// The API version answered when the request names none (or a malformed
/// one): botocore's and libcloud's.
pub const DEFAULT_VERSION: &str = "2016-11-15";

/// The response namespace, from the request's `Version`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Namespace(String);

impl Namespace {
    /// `http://ec2.amazonaws.com/doc/<Version>/` for a `Version` that looks
    /// like `YYYY-MM-DD`, else for [`DEFAULT_VERSION`].
    pub fn for_version(version: Option<&str>) -> Self {
        let version = version
            .map(str::trim)
            .filter(|v| looks_like_date(v))
            .unwrap_or(DEFAULT_VERSION);
        Namespace(format!("http://ec2.amazonaws.com/doc/{version}/"))
    }

    /// The namespace URI.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The version inside it.
    pub fn version(&self) -> &str {
        self.0
            .trim_start_matches("http://ec2.amazonaws.com/doc/")
            .trim_end_matches('/')
    }

    /// Whether the client speaks one of the versions of econe's own tools
    /// (2008-12-01, 2009-04-04, 2009-11-30), which index the first
    /// reservation item without checking it exists (§6.5).
    pub fn is_legacy(&self) -> bool {
        self.version() < "2010-01-01"
    }
}

fn looks_like_date(v: &str) -> bool {
    let b = v.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

/// An XML document being written: quick-xml underneath, two-space
/// indentation, writing to memory (which cannot fail).
pub struct Xml(Writer<Vec<u8>>);

const IN_MEMORY: &str = "writing XML to memory cannot fail";

impl Xml {
    /// A document starting with the XML declaration.
    pub fn new() -> Self {
        let mut writer = Writer::new_with_indent(Vec::new(), b' ', 2);
        writer
            .write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))
            .expect(IN_MEMORY);
        Xml(writer)
    }

    /// `<name>value</name>`, the value escaped (`&`, `<`, `>`: quotes need
    /// no escaping in text, and stay readable).
    pub fn text(&mut self, name: &str, value: &str) {
        self.0
            .create_element(name)
            .write_text_content(BytesText::from_escaped(partial_escape(value)))
            .expect(IN_MEMORY);
    }

    /// `<name/>`.
    pub fn empty(&mut self, name: &str) {
        self.0.create_element(name).write_empty().expect(IN_MEMORY);
    }

    /// `<name>…</name>` around what `inner` writes.
    pub fn node(&mut self, name: &str, inner: impl FnOnce(&mut Xml)) {
        self.node_with(name, None, inner);
    }

    /// A list: `<name/>` when empty, else `<name><item>…</item>…</name>`.
    pub fn set<T>(&mut self, name: &str, items: &[T], item: impl Fn(&mut Xml, &T)) {
        if items.is_empty() {
            self.empty(name);
            return;
        }
        self.node(name, |x| {
            for i in items {
                x.node("item", |x| item(x, i));
            }
        });
    }

    fn node_with(&mut self, name: &str, xmlns: Option<&str>, inner: impl FnOnce(&mut Xml)) {
        let mut start = BytesStart::new(name);
        if let Some(ns) = xmlns {
            start.push_attribute(("xmlns", ns));
        }
        self.0.write_event(Event::Start(start)).expect(IN_MEMORY);
        inner(self);
        self.0
            .write_event(Event::End(BytesEnd::new(name)))
            .expect(IN_MEMORY);
    }

    /// The finished text, with a final newline.
    pub fn finish(self) -> String {
        let mut text = String::from_utf8(self.0.into_inner()).expect("quick-xml writes UTF-8");
        text.push('\n');
        text
    }
}

impl Default for Xml {
    fn default() -> Self {
        Xml::new()
    }
}

/// A response document: its root's name and what goes after `requestId`.
pub trait Document {
    /// The root element's name (`DescribeInstancesResponse`).
    fn root(&self) -> String;
    /// The elements after `requestId`.
    fn body(&self, x: &mut Xml);
}

/// Renders a success document.
pub fn render(doc: &dyn Document, ns: &Namespace, request_id: &str) -> String {
    let mut x = Xml::new();
    x.node_with(&doc.root(), Some(ns.as_str()), |x| {
        x.text("requestId", request_id);
        doc.body(x);
    });
    x.finish()
}

/// Renders the error document of §7.1: no namespace, `RequestID` after
/// `Errors`.
pub fn render_error(code: &str, message: &str, request_id: &str) -> String {
    let mut x = Xml::new();
    x.node("Response", |x| {
        x.node("Errors", |x| {
            x.node("Error", |x| {
                x.text("Code", code);
                x.text("Message", message);
            })
        });
        x.text("RequestID", request_id);
    });
    x.finish()
}

fn bool_text(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
    }
}

/// An AWS instance state (§5): code and name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InstanceState {
    /// 0.
    Pending,
    /// 16.
    Running,
    /// 32.
    ShuttingDown,
    /// 48.
    Terminated,
    /// 64.
    Stopping,
    /// 80.
    Stopped,
}

impl InstanceState {
    /// The AWS code.
    pub fn code(self) -> u16 {
        match self {
            InstanceState::Pending => 0,
            InstanceState::Running => 16,
            InstanceState::ShuttingDown => 32,
            InstanceState::Terminated => 48,
            InstanceState::Stopping => 64,
            InstanceState::Stopped => 80,
        }
    }

    /// The AWS name.
    pub fn name(self) -> &'static str {
        match self {
            InstanceState::Pending => "pending",
            InstanceState::Running => "running",
            InstanceState::ShuttingDown => "shutting-down",
            InstanceState::Terminated => "terminated",
            InstanceState::Stopping => "stopping",
            InstanceState::Stopped => "stopped",
        }
    }

    fn write(self, x: &mut Xml, element: &str) {
        x.node(element, |x| {
            x.text("code", &self.code().to_string());
            x.text("name", self.name());
        });
    }
}

/// One tag of a `tagSet`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tag {
    /// The key.
    pub key: String,
    /// The value (may be empty).
    pub value: String,
}

fn tag_set(x: &mut Xml, tags: &[Tag]) {
    x.set("tagSet", tags, |x, t| {
        x.text("key", &t.key);
        x.text("value", &t.value);
    });
}

/// `RegisterImageResponse` (also UploadImage's answer, §6.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageIdResponse {
    /// The image.
    pub image_id: u64,
}

impl Document for ImageIdResponse {
    fn root(&self) -> String {
        "RegisterImageResponse".into()
    }

    fn body(&self, x: &mut Xml) {
        x.text("imageId", &ids::image_id(self.image_id));
    }
}

/// `<{Action}Response>…<return>true</return>`: the answer of actions that
/// only succeed or fail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReturnResponse {
    /// The action answered.
    pub action: Action,
}

impl Document for ReturnResponse {
    fn root(&self) -> String {
        format!("{}Response", self.action)
    }

    fn body(&self, x: &mut Xml) {
        x.text("return", "true");
    }
}

/// One item of DescribeImages (§6.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageItem {
    /// The image's id.
    pub id: u64,
    /// `imageLocation`: never empty.
    pub location: String,
    /// `available`, `pending`, `failed` or `deregistered`.
    pub state: &'static str,
    /// The owner's name.
    pub owner: String,
    /// `isPublic`.
    pub public: bool,
    /// `architecture`.
    pub architecture: String,
    /// The image's name.
    pub name: String,
    /// Its description, if any.
    pub description: Option<String>,
    /// Registration time, Unix seconds.
    pub created: i64,
    /// Its tags.
    pub tags: Vec<Tag>,
}

/// `DescribeImagesResponse`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImagesResponse {
    /// The images, in id order.
    pub images: Vec<ImageItem>,
}

impl Document for ImagesResponse {
    fn root(&self) -> String {
        "DescribeImagesResponse".into()
    }

    fn body(&self, x: &mut Xml) {
        x.set("imagesSet", &self.images, |x, i| {
            x.text("imageId", &ids::image_id(i.id));
            x.text("imageLocation", &i.location);
            x.text("imageState", i.state);
            x.text("imageOwnerId", &i.owner);
            x.text("isPublic", bool_text(i.public));
            x.text("architecture", &i.architecture);
            x.text("imageType", "machine");
            x.text("name", &i.name);
            if let Some(d) = &i.description {
                x.text("description", d);
            }
            x.text("creationDate", &format_iso8601(i.created));
            x.text("rootDeviceType", "instance-store");
            x.text("virtualizationType", "hvm");
            tag_set(x, &i.tags);
        });
    }
}

/// One instance, as RunInstances and DescribeInstances show it (§6.4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Instance {
    /// The VM's id.
    pub id: u64,
    /// `imageId` as stored at launch (an `ami-` id).
    pub image_id: String,
    /// The state.
    pub state: InstanceState,
    /// The first IP, empty when none yet.
    pub ip: String,
    /// `keyName`, if launched with one.
    pub key_name: Option<String>,
    /// Position within its launch.
    pub launch_index: u32,
    /// `instanceType`.
    pub instance_type: String,
    /// Submission time, Unix seconds.
    pub launch_time: i64,
    /// The availability zone.
    pub zone: String,
    /// The launch's `ClientToken`, if any.
    pub client_token: Option<String>,
    /// Why it is in its state (a failure's message), empty if nothing.
    pub reason: String,
    /// Its tags.
    pub tags: Vec<Tag>,
}

impl Instance {
    fn write(&self, x: &mut Xml) {
        x.text("instanceId", &ids::instance_id(self.id));
        x.text("imageId", &self.image_id);
        self.state.write(x, "instanceState");
        x.text("privateDnsName", &self.ip);
        x.text("dnsName", &self.ip);
        x.text("reason", &self.reason);
        if let Some(k) = &self.key_name {
            x.text("keyName", k);
        }
        x.text("amiLaunchIndex", &self.launch_index.to_string());
        x.empty("productCodes");
        x.text("instanceType", &self.instance_type);
        x.text("launchTime", &format_iso8601(self.launch_time));
        x.node("placement", |x| x.text("availabilityZone", &self.zone));
        x.node("monitoring", |x| x.text("state", "disabled"));
        if !self.ip.is_empty() {
            x.text("privateIpAddress", &self.ip);
            x.text("ipAddress", &self.ip);
        }
        x.text("architecture", "x86_64");
        x.text("rootDeviceType", "instance-store");
        x.text("virtualizationType", "hvm");
        if let Some(t) = &self.client_token {
            x.text("clientToken", t);
        }
        tag_set(x, &self.tags);
    }
}

/// A reservation: instances launched together (or, for VMs made
/// elsewhere, `default`), with their owner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reservation {
    /// `r-…` or `default`.
    pub id: String,
    /// The owner's name.
    pub owner: String,
    /// Its instances, in id order.
    pub instances: Vec<Instance>,
}

impl Reservation {
    fn write(&self, x: &mut Xml) {
        x.text("reservationId", &self.id);
        x.text("ownerId", &self.owner);
        x.node("groupSet", |x| {
            x.node("item", |x| {
                x.text("groupId", "default");
                x.text("groupName", "default");
            })
        });
        x.set("instancesSet", &self.instances, |x, i| i.write(x));
    }
}

/// `RunInstancesResponse`: the reservation's fields under the root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunResponse {
    /// The launch.
    pub reservation: Reservation,
}

impl Document for RunResponse {
    fn root(&self) -> String {
        "RunInstancesResponse".into()
    }

    fn body(&self, x: &mut Xml) {
        self.reservation.write(x);
    }
}

/// `DescribeInstancesResponse`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstancesResponse {
    /// The reservations with the instances of this page.
    pub reservations: Vec<Reservation>,
    /// Where the next page starts, if there is one.
    pub next_token: Option<String>,
}

impl Document for InstancesResponse {
    fn root(&self) -> String {
        "DescribeInstancesResponse".into()
    }

    fn body(&self, x: &mut Xml) {
        x.set("reservationSet", &self.reservations, |x, r| r.write(x));
        if let Some(t) = &self.next_token {
            x.text("nextToken", t);
        }
    }
}

/// One instance's change of state (Terminate/Start/StopInstances).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StateChange {
    /// The VM's id.
    pub id: u64,
    /// After the action.
    pub current: InstanceState,
    /// Before it.
    pub previous: InstanceState,
}

/// `TerminateInstancesResponse`, `StartInstancesResponse`,
/// `StopInstancesResponse` (§6.6, §6.7).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateChangesResponse {
    /// The action answered.
    pub action: Action,
    /// One change per instance, in request order.
    pub changes: Vec<StateChange>,
}

impl Document for StateChangesResponse {
    fn root(&self) -> String {
        format!("{}Response", self.action)
    }

    fn body(&self, x: &mut Xml) {
        x.set("instancesSet", &self.changes, |x, c| {
            x.text("instanceId", &ids::instance_id(c.id));
            c.current.write(x, "currentState");
            // econe's tools read shutdownState (1.4/2.x); botocore ignores it.
            if self.action == Action::TerminateInstances {
                c.current.write(x, "shutdownState");
            }
            c.previous.write(x, "previousState");
        });
    }
}

/// `DescribeRegionsResponse`: one region.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegionsResponse {
    /// The region's name.
    pub name: String,
    /// The endpoint clients reach it at.
    pub endpoint: String,
}

impl Document for RegionsResponse {
    fn root(&self) -> String {
        "DescribeRegionsResponse".into()
    }

    fn body(&self, x: &mut Xml) {
        x.node("regionInfo", |x| {
            x.node("item", |x| {
                x.text("regionName", &self.name);
                x.text("regionEndpoint", &self.endpoint);
            })
        });
    }
}

/// `DescribeAvailabilityZonesResponse`: the zones of the one region.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZonesResponse {
    /// The zones' names.
    pub zones: Vec<String>,
    /// Their region.
    pub region: String,
}

impl Document for ZonesResponse {
    fn root(&self) -> String {
        "DescribeAvailabilityZonesResponse".into()
    }

    fn body(&self, x: &mut Xml) {
        x.set("availabilityZoneInfo", &self.zones, |x, z| {
            x.text("zoneName", z);
            x.text("zoneState", "available");
            x.text("regionName", &self.region);
            x.empty("messageSet");
        });
    }
}

/// `DescribeAddressesResponse`: no elastic addresses yet.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AddressesResponse;

impl Document for AddressesResponse {
    fn root(&self) -> String {
        "DescribeAddressesResponse".into()
    }

    fn body(&self, x: &mut Xml) {
        x.empty("addressesSet");
    }
}

/// A key pair as EC2 shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyPairItem {
    /// Its id.
    pub id: u64,
    /// Its name, unique per user.
    pub name: String,
    /// `SHA256:…` fingerprint of the public key.
    pub fingerprint: String,
    /// `rsa` or `ed25519`.
    pub key_type: String,
    /// Creation time, Unix seconds.
    pub created: i64,
    /// Its tags.
    pub tags: Vec<Tag>,
}

/// `CreateKeyPairResponse` (with the private key, answered this once)
/// and `ImportKeyPairResponse`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyPairResponse {
    /// `CreateKeyPair` or `ImportKeyPair`.
    pub action: Action,
    /// The key pair.
    pub key: KeyPairItem,
    /// The private key (OpenSSH format), for CreateKeyPair.
    pub material: Option<String>,
}

impl Document for KeyPairResponse {
    fn root(&self) -> String {
        format!("{}Response", self.action)
    }

    fn body(&self, x: &mut Xml) {
        x.text("keyName", &self.key.name);
        x.text("keyFingerprint", &self.key.fingerprint);
        if let Some(m) = &self.material {
            x.text("keyMaterial", m);
        }
        x.text("keyPairId", &ids::key_pair_id(self.key.id));
        tag_set(x, &self.key.tags);
    }
}

/// `DescribeKeyPairsResponse`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyPairsResponse {
    /// The caller's key pairs, by name.
    pub keys: Vec<KeyPairItem>,
}

impl Document for KeyPairsResponse {
    fn root(&self) -> String {
        "DescribeKeyPairsResponse".into()
    }

    fn body(&self, x: &mut Xml) {
        x.set("keySet", &self.keys, |x, k| {
            x.text("keyPairId", &ids::key_pair_id(k.id));
            x.text("keyName", &k.name);
            x.text("keyFingerprint", &k.fingerprint);
            x.text("keyType", &k.key_type);
            x.text("createTime", &format_iso8601(k.created));
            tag_set(x, &k.tags);
        });
    }
}

/// One row of DescribeTags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TagDescription {
    /// What is tagged.
    pub resource: Resource,
    /// The tag.
    pub tag: Tag,
}

/// `DescribeTagsResponse`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TagsResponse {
    /// The tags, by resource then key.
    pub tags: Vec<TagDescription>,
}

impl Document for TagsResponse {
    fn root(&self) -> String {
        "DescribeTagsResponse".into()
    }

    fn body(&self, x: &mut Xml) {
        x.set("tagSet", &self.tags, |x, t| {
            x.text("resourceId", &t.resource.id());
            x.text("resourceType", t.resource.type_name());
            x.text("key", &t.tag.key);
            x.text("value", &t.tag.value);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_echoes_date_versions_only() {
        assert_eq!(
            Namespace::for_version(Some("2009-11-30")).as_str(),
            "http://ec2.amazonaws.com/doc/2009-11-30/"
        );
        for bad in [
            None,
            Some(""),
            Some("latest"),
            Some("2009-11-3x"),
            Some("\"/><x"),
        ] {
            assert_eq!(
                Namespace::for_version(bad).as_str(),
                "http://ec2.amazonaws.com/doc/2016-11-15/"
            );
        }
        assert!(Namespace::for_version(Some("2008-12-01")).is_legacy());
        assert!(!Namespace::for_version(Some("2016-11-15")).is_legacy());
    }

    #[test]
    fn text_is_escaped() {
        let out = render_error("InvalidParameterValue", "a <b> & 'c'", "id-1");
        assert!(
            out.contains("<Message>a &lt;b&gt; &amp; 'c'</Message>"),
            "{out}"
        );
    }

    #[test]
    fn state_codes_are_the_aws_ones() {
        let all = [
            (InstanceState::Pending, 0, "pending"),
            (InstanceState::Running, 16, "running"),
            (InstanceState::ShuttingDown, 32, "shutting-down"),
            (InstanceState::Terminated, 48, "terminated"),
            (InstanceState::Stopping, 64, "stopping"),
            (InstanceState::Stopped, 80, "stopped"),
        ];
        for (state, code, name) in all {
            assert_eq!((state.code(), state.name()), (code, name));
        }
    }
}
