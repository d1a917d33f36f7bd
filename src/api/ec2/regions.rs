//! The account's geography (spec/EC2.md §6.7): one region, `opennebula`,
//! answered at this server's endpoint; one availability zone, `default`,
//! the zone every instance's `placement` shows; and DescribeAddresses,
//! which lists the caller's elastic addresses — none until elastic IPs
//! exist (libcloud's `list_nodes` calls it).
//!
//! May use: `super`.

use actix_web::HttpResponse;

use super::error::Ec2Error;
use super::params::Params;
use super::xml::{AddressesResponse, RegionsResponse, ZonesResponse};
use super::Ctx;

/// The one region's name.
pub const REGION: &str = "opennebula";

/// The one availability zone's name, as instances' `placement` shows it.
pub const ZONE: &str = "default";

/// `DescribeRegions`.
pub(super) fn describe_regions(ctx: &Ctx<'_>) -> Result<HttpResponse, Ec2Error> {
    Ok(ctx.reply(&RegionsResponse {
        name: REGION.to_string(),
        endpoint: ctx.endpoint.clone(),
    }))
}

/// `DescribeAvailabilityZones`: `ZoneName.N` naming another zone is
/// refused, as AWS does.
pub(super) fn describe_zones(ctx: &Ctx<'_>, params: &Params) -> Result<HttpResponse, Ec2Error> {
    if let Some(other) = params.list("ZoneName").into_iter().find(|z| *z != ZONE) {
        return Err(Ec2Error::invalid_value(format!(
            "The zone '{other}' does not exist"
        )));
    }
    Ok(ctx.reply(&ZonesResponse {
        zones: vec![ZONE.to_string()],
        region: REGION.to_string(),
    }))
}

/// `DescribeAddresses`: an empty set.
pub(super) fn describe_addresses(
    ctx: &Ctx<'_>,
    _params: &Params,
) -> Result<HttpResponse, Ec2Error> {
    Ok(ctx.reply(&AddressesResponse))
}
