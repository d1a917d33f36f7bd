//! Instance types: the named sizes OCCI (`OCCI_INSTANCE_TYPE`, OCCI.md 8)
//! and EC2 (`EC2_INSTANCE_TYPE`, EC2.md 8) clients choose from.
//!
//! OpenNebula rendered an ERB file per type; cloudgate keeps the capacity in
//! the vector itself and takes an optional template fragment (extra `OS`,
//! `DISK`, `CONTEXT`...) that the fronts merge into the VM template.

use crate::template::Vector;

use super::values;

/// One instance type.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceType {
    /// The name clients send (`small`, `m1.small`).
    pub name: String,
    /// `CPU`: physical CPU share reserved for the VM (1.0 = one core).
    pub cpu: f64,
    /// `VCPU`: virtual CPUs the guest sees; `None` leaves it to the driver
    /// (one) and omits it from OCCI's `/instance_type` documents.
    pub vcpu: Option<u32>,
    /// `MEMORY`, in megabytes.
    pub memory_mb: u64,
    /// `NETWORK` (EC2 only): the virtual network the instance's NIC joins;
    /// `None` means the VM gets no NIC from its type.
    pub network: Option<String>,
    /// `TEMPLATE`: path of a template fragment merged into the VM template,
    /// as written (relative paths are the fronts' to resolve).
    pub template: Option<String>,
}

/// Keys of `OCCI_INSTANCE_TYPE`.
pub(crate) const OCCI_TYPE_KEYS: &[&str] = &["NAME", "CPU", "VCPU", "MEMORY", "TEMPLATE"];
/// Keys of `EC2_INSTANCE_TYPE`.
pub(crate) const EC2_TYPE_KEYS: &[&str] = &["NAME", "CPU", "VCPU", "MEMORY", "TEMPLATE", "NETWORK"];

impl InstanceType {
    /// Read an instance-type vector of attribute `attr`; `NETWORK` is read
    /// only when `with_network` (EC2). The error is the message without
    /// position.
    pub(crate) fn from_vector(
        attr: &str,
        v: &Vector,
        with_network: bool,
    ) -> Result<InstanceType, String> {
        let get = |key: &str| v.get(key).map(str::trim).filter(|s| !s.is_empty());
        let name = get("NAME").ok_or_else(|| format!("{attr} needs a NAME"))?;
        let field = |key: &str| -> Result<&str, String> {
            get(key).ok_or_else(|| format!("{attr} {name} needs a {key}"))
        };
        let bad = |key: &str, expected: String, found: &str| {
            format!("{attr} {name}: {key} must be {expected}, found {found:?}")
        };
        let cpu_text = field("CPU")?;
        let cpu = values::positive_number(cpu_text).map_err(|e| bad("CPU", e, cpu_text))?;
        let memory_text = field("MEMORY")?;
        let memory_mb = values::whole(memory_text, 1, u64::MAX).map_err(|_| {
            bad(
                "MEMORY",
                "a whole number of megabytes, at least 1".into(),
                memory_text,
            )
        })?;
        let vcpu = match get("VCPU") {
            None => None,
            Some(text) => {
                Some(values::whole_u32(text, 1, u32::MAX).map_err(|e| bad("VCPU", e, text))?)
            }
        };
        Ok(InstanceType {
            name: name.to_owned(),
            cpu,
            vcpu,
            memory_mb,
            network: if with_network {
                get("NETWORK").map(str::to_owned)
            } else {
                None
            },
            template: get("TEMPLATE").map(str::to_owned),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::{Template, Value};

    fn read(text: &str, with_network: bool) -> Result<InstanceType, String> {
        let t = Template::parse(text).expect("test template parses");
        match &t.attributes()[0].value {
            Value::Vector(v) => InstanceType::from_vector(&t.attributes()[0].name, v, with_network),
            Value::Single(_) => panic!("not a vector"),
        }
    }

    #[test]
    fn reads_all_keys() {
        let t = read(
            r#"EC2_INSTANCE_TYPE = [ NAME = "m1.small", CPU = "0.2", VCPU = "1", MEMORY = "256",
                                    NETWORK = "Public EC2", TEMPLATE = "ec2/m1.small.tmpl" ]"#,
            true,
        )
        .expect("valid");
        assert_eq!(
            t,
            InstanceType {
                name: "m1.small".into(),
                cpu: 0.2,
                vcpu: Some(1),
                memory_mb: 256,
                network: Some("Public EC2".into()),
                template: Some("ec2/m1.small.tmpl".into()),
            }
        );
        let t = read(
            "OCCI_INSTANCE_TYPE = [ NAME = small, CPU = 1, MEMORY = 1024 ]",
            false,
        )
        .expect("valid");
        assert_eq!(
            (t.cpu, t.vcpu, t.memory_mb, t.template),
            (1.0, None, 1024, None)
        );
    }

    #[test]
    fn refuses_bad_types() {
        let err = |text: &str| read(text, false).expect_err("should be refused");
        assert_eq!(
            err("OCCI_INSTANCE_TYPE = [ CPU = 1, MEMORY = 1 ]"),
            "OCCI_INSTANCE_TYPE needs a NAME"
        );
        assert_eq!(
            err("OCCI_INSTANCE_TYPE = [ NAME = s, MEMORY = 1 ]"),
            "OCCI_INSTANCE_TYPE s needs a CPU"
        );
        assert_eq!(
            err("OCCI_INSTANCE_TYPE = [ NAME = s, CPU = 1 ]"),
            "OCCI_INSTANCE_TYPE s needs a MEMORY"
        );
        assert_eq!(
            err("OCCI_INSTANCE_TYPE = [ NAME = s, CPU = 0, MEMORY = 1 ]"),
            "OCCI_INSTANCE_TYPE s: CPU must be a number greater than 0 like \"0.5\", found \"0\""
        );
        assert_eq!(
            err("OCCI_INSTANCE_TYPE = [ NAME = s, CPU = 1, MEMORY = 1.5G ]"),
            "OCCI_INSTANCE_TYPE s: MEMORY must be a whole number of megabytes, at least 1, found \"1.5G\""
        );
        assert_eq!(
            err("OCCI_INSTANCE_TYPE = [ NAME = s, CPU = 1, MEMORY = 1, VCPU = 0 ]"),
            "OCCI_INSTANCE_TYPE s: VCPU must be a whole number, at least 1, found \"0\""
        );
    }
}
