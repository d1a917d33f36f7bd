//! Every EC2 operation cloudgate answers, in one enum (STYLE.md §1.4): the
//! name used for dispatch and logs. An unknown or missing `Action` is
//! `InvalidAction` before any signature work (spec/EC2.md §6.7, §7.2).
//!
//! May use: `super` (the EC2 error and parameters).

use std::fmt;
use std::str::FromStr;

use super::error::Ec2Error;
use super::params::Params;

/// An EC2 Query action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// OpenNebula's extension: a multipart image upload (§6.1).
    UploadImage,
    /// Makes an uploaded image an AMI (§6.2).
    RegisterImage,
    /// Takes an image out of DescribeImages and deletes it.
    DeregisterImage,
    /// The caller's registered images and the public ones (§6.3).
    DescribeImages,
    /// Launches instances (§6.4).
    RunInstances,
    /// The caller's instances (§6.5).
    DescribeInstances,
    /// Shuts instances down or deletes them (§6.6).
    TerminateInstances,
    /// Resumes stopped instances (§6.7).
    StartInstances,
    /// Stops instances (§6.7).
    StopInstances,
    /// Reboots instances (§6.7).
    RebootInstances,
    /// The one region (§6.7).
    DescribeRegions,
    /// The one availability zone (§6.7).
    DescribeAvailabilityZones,
    /// Generates a key pair; the private key is answered once.
    CreateKeyPair,
    /// Stores a public key the client made.
    ImportKeyPair,
    /// The caller's key pairs.
    DescribeKeyPairs,
    /// Forgets a key pair.
    DeleteKeyPair,
    /// Tags instances and images.
    CreateTags,
    /// The tags of the caller's instances and images.
    DescribeTags,
    /// Removes tags.
    DeleteTags,
    /// The caller's elastic addresses: none until elastic IPs exist.
    DescribeAddresses,
}

impl Action {
    /// Every action, for tests and documentation.
    pub const ALL: [Action; 20] = [
        Action::UploadImage,
        Action::RegisterImage,
        Action::DeregisterImage,
        Action::DescribeImages,
        Action::RunInstances,
        Action::DescribeInstances,
        Action::TerminateInstances,
        Action::StartInstances,
        Action::StopInstances,
        Action::RebootInstances,
        Action::DescribeRegions,
        Action::DescribeAvailabilityZones,
        Action::CreateKeyPair,
        Action::ImportKeyPair,
        Action::DescribeKeyPairs,
        Action::DeleteKeyPair,
        Action::CreateTags,
        Action::DescribeTags,
        Action::DeleteTags,
        Action::DescribeAddresses,
    ];

    /// The name clients send (case-sensitive).
    pub fn name(self) -> &'static str {
        match self {
            Action::UploadImage => "UploadImage",
            Action::RegisterImage => "RegisterImage",
            Action::DeregisterImage => "DeregisterImage",
            Action::DescribeImages => "DescribeImages",
            Action::RunInstances => "RunInstances",
            Action::DescribeInstances => "DescribeInstances",
            Action::TerminateInstances => "TerminateInstances",
            Action::StartInstances => "StartInstances",
            Action::StopInstances => "StopInstances",
            Action::RebootInstances => "RebootInstances",
            Action::DescribeRegions => "DescribeRegions",
            Action::DescribeAvailabilityZones => "DescribeAvailabilityZones",
            Action::CreateKeyPair => "CreateKeyPair",
            Action::ImportKeyPair => "ImportKeyPair",
            Action::DescribeKeyPairs => "DescribeKeyPairs",
            Action::DeleteKeyPair => "DeleteKeyPair",
            Action::CreateTags => "CreateTags",
            Action::DescribeTags => "DescribeTags",
            Action::DeleteTags => "DeleteTags",
            Action::DescribeAddresses => "DescribeAddresses",
        }
    }

    /// The request's `Action`: missing or unknown is `InvalidAction`.
    pub fn from_params(params: &Params) -> Result<Self, Ec2Error> {
        match params.get("Action") {
            None | Some("") => Err(Ec2Error::InvalidAction(
                "the request has no Action".to_string(),
            )),
            Some(name) => name.parse(),
        }
    }
}

impl FromStr for Action {
    type Err = Ec2Error;

    fn from_str(name: &str) -> Result<Self, Ec2Error> {
        Action::ALL
            .iter()
            .copied()
            .find(|a| a.name() == name)
            .ok_or_else(|| {
                Ec2Error::InvalidAction(format!(
                    "the action {name} is not valid for this web service"
                ))
            })
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ec2::params::decode_form;

    #[test]
    fn names_round_trip() {
        for action in Action::ALL {
            assert_eq!(action.name().parse::<Action>().expect("parses"), action);
        }
    }

    #[test]
    fn unknown_missing_and_wrong_case_are_invalid_action() {
        for query in [
            "",
            "Action=",
            "Action=AllocateHosts",
            "Action=describeinstances",
        ] {
            let params = Params::merge(decode_form(query).expect("decodes"), Vec::new());
            let err = Action::from_params(&params).expect_err(query);
            assert!(
                matches!(err, Ec2Error::InvalidAction(_)),
                "{query}: {err:?}"
            );
        }
    }

    #[test]
    fn spec_requests_name_their_action() {
        // The bodies captured from botocore (spec/EC2.md §9.1).
        for (body, action) in [
            (
                "Action=DescribeInstances&Version=2016-11-15",
                Action::DescribeInstances,
            ),
            (
                "Action=RunInstances&Version=2016-11-15&ImageId=ami-00000003&MinCount=1&MaxCount=1",
                Action::RunInstances,
            ),
            (
                "Action=TerminateInstances&Version=2016-11-15&InstanceId.1=i-00000005",
                Action::TerminateInstances,
            ),
            (
                "Action=DescribeImages&Version=2016-11-15&Owner.1=self",
                Action::DescribeImages,
            ),
        ] {
            let params = Params::merge(Vec::new(), decode_form(body).expect("decodes"));
            assert_eq!(Action::from_params(&params).expect("known"), action);
        }
    }
}
