//! What the fronts take from the config, as plain data. `api::common` may
//! not name `crate::config`, so `cloudgate serve` copies the config values
//! into these types, as it does for the core's `Settings`.

/// A named size clients choose from (OCCI's `INSTANCE_TYPE`, spec/OCCI.md
/// §8; usable by any front).
#[derive(Clone, Debug, PartialEq)]
pub struct InstanceType {
    /// The name clients send (`small`).
    pub name: String,
    /// `CPU`: physical CPU share (1.0 = one core).
    pub cpu: f64,
    /// `VCPU`: virtual CPUs the guest sees, when the type sets it.
    pub vcpu: Option<u32>,
    /// `MEMORY`, in megabytes.
    pub memory_mb: u64,
    /// The text of the type's template fragment (`TEMPLATE`), read once at
    /// start so that requests never touch the file system for it.
    pub template: Option<String>,
}

/// Which OCCI documents to answer with (`OCCI_DIALECT`, spec/OCCI.md §9).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OcciDialect {
    /// Per request: the client's User-Agent, else the request's shape,
    /// else 1.4.
    Auto,
    /// Always OpenNebula 1.4's documents.
    V1_4,
    /// Always OpenNebula 2.x's documents.
    V2,
}

/// The OCCI front's settings.
#[derive(Clone, Debug, PartialEq)]
pub struct OcciSettings {
    /// `OCCI_DIALECT`.
    pub dialect: OcciDialect,
    /// `OCCI_INSTANCE_TYPE`, in config order.
    pub instance_types: Vec<InstanceType>,
}

impl Default for OcciSettings {
    /// OpenNebula's defaults (spec/OCCI.md §8.1): `small`, `medium` and
    /// `large`, dialect chosen per request.
    fn default() -> Self {
        let size = |name: &str, cpu: f64, memory_mb: u64| InstanceType {
            name: name.to_string(),
            cpu,
            vcpu: None,
            memory_mb,
            template: None,
        };
        OcciSettings {
            dialect: OcciDialect::Auto,
            instance_types: vec![
                size("small", 1.0, 1024),
                size("medium", 4.0, 4096),
                size("large", 8.0, 8192),
            ],
        }
    }
}

/// An EC2 instance type (`EC2_INSTANCE_TYPE`, spec/EC2.md §8.2): a size
/// plus the virtual network its NIC joins.
#[derive(Clone, Debug, PartialEq)]
pub struct Ec2InstanceType {
    /// Name, CPU, VCPU, memory and template fragment.
    pub size: InstanceType,
    /// `NETWORK`: the virtual network (name or id) of the instance's NIC;
    /// `None`: no NIC from the type.
    pub network: Option<String>,
}

/// The EC2 front's settings (spec/EC2.md §0, §3.4, §5, §8.2).
#[derive(Clone, Debug, PartialEq)]
pub struct Ec2Settings {
    /// `EC2_INSTANCE_TYPE`, in config order.
    pub instance_types: Vec<Ec2InstanceType>,
    /// `EC2_DEFAULT_INSTANCE_TYPE`: the type of a RunInstances without
    /// `InstanceType`.
    pub default_instance_type: String,
    /// `EC2_PATH_PREFIX`: the path the front answers on (`/` by default).
    pub path_prefix: String,
    /// `EC2_TERMINATED_VISIBLE`: how long DescribeInstances still lists a
    /// terminated instance.
    pub terminated_visible: std::time::Duration,
    /// `SIGNATURE_SKEW`: the accepted distance between a request's
    /// signing time and now; zero turns the check off.
    pub signature_skew: std::time::Duration,
}

impl Default for Ec2Settings {
    /// econe's one type, `m1.small` (CPU 0.2, 256 MB), on `/`, terminated
    /// instances visible 900 s, a 900 s skew.
    fn default() -> Self {
        Ec2Settings {
            instance_types: vec![Ec2InstanceType {
                size: InstanceType {
                    name: "m1.small".to_string(),
                    cpu: 0.2,
                    vcpu: Some(1),
                    memory_mb: 256,
                    template: None,
                },
                network: None,
            }],
            default_instance_type: "m1.small".to_string(),
            path_prefix: "/".to_string(),
            terminated_visible: std::time::Duration::from_secs(900),
            signature_skew: std::time::Duration::from_secs(900),
        }
    }
}
