//! The account's geography (spec/EC2.md §6.7): one region, `opennebula`,
//! answered at this server's endpoint; one availability zone, `default`,
//! the zone every instance's `placement` shows; and DescribeAddresses,
//! which lists the caller's elastic addresses — none until elastic IPs
//! exist (libcloud's `list_nodes` calls it).
//!
//! One endpoint is one region, whatever name the client gives it: AWS
//! clients must be configured with a region (botocore refuses to run
//! without one; libcloud's EC2 driver accepts only AWS's names, e.g.
//! `us-east-1`). libcloud lists its locations with DescribeAvailabilityZones
//! filtered by `region-name` = its own region, and `create_node(location=…)`
//! refuses a zone whose `regionName` differs (libcloud 3.9.1,
//! `compute/drivers/ec2.py`: `ex_list_availability_zones`, l. 3100;
//! `create_node`, l. 1670). So a `region-name` filter naming one region is
//! taken as the name the client addresses this region by, and the zone is
//! answered in it; unfiltered, the zone's region stays `opennebula`. The
//! zone keeps its name `default`, the only one RunInstances accepts.
//!
//! May use: `super`.

use actix_web::HttpResponse;

use super::error::Ec2Error;
use super::params::{Filter, Params};
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
    Ok(ctx.reply(&zones(params)?))
}

/// The answer to DescribeAvailabilityZones: the one zone, in the region
/// the client addresses (see the module's notes), if it passes the
/// filters `zone-name`, `state` (`available`) and `region-name`; other
/// filters pass, as in DescribeInstances.
fn zones(params: &Params) -> Result<ZonesResponse, Ec2Error> {
    if let Some(other) = params.list("ZoneName").into_iter().find(|z| *z != ZONE) {
        return Err(Ec2Error::invalid_value(format!(
            "The zone '{other}' does not exist"
        )));
    }
    let filters = params.filters()?;
    let region = addressed_region(&filters).unwrap_or(REGION).to_string();
    let passes = filters.iter().all(|f| match f.name.as_str() {
        "zone-name" => f.matches(ZONE),
        "state" => f.matches("available"),
        "region-name" => f.matches(&region),
        _ => true,
    });
    Ok(ZonesResponse {
        zones: if passes {
            vec![ZONE.to_string()]
        } else {
            Vec::new()
        },
        region,
    })
}

/// The first `region-name` filter value that names one region (not empty,
/// no wildcard).
fn addressed_region(filters: &[Filter]) -> Option<&str> {
    filters
        .iter()
        .filter(|f| f.name == "region-name")
        .flat_map(|f| &f.values)
        .map(String::as_str)
        .find(|v| !v.is_empty() && !v.contains(['*', '?']))
}

/// `DescribeAddresses`: an empty set.
pub(super) fn describe_addresses(
    ctx: &Ctx<'_>,
    _params: &Params,
) -> Result<HttpResponse, Ec2Error> {
    Ok(ctx.reply(&AddressesResponse))
}

#[cfg(test)]
mod tests {
    use super::super::params::decode_form;
    use super::*;

    fn zones_for(query: &str) -> Result<ZonesResponse, Ec2Error> {
        let params = Params::merge(decode_form(query).expect("query decodes"), Vec::new());
        zones(&params)
    }

    fn answer(zones: &[&str], region: &str) -> ZonesResponse {
        ZonesResponse {
            zones: zones.iter().map(|z| z.to_string()).collect(),
            region: region.to_string(),
        }
    }

    #[test]
    fn unfiltered_the_zone_is_in_the_opennebula_region() {
        let got = zones_for("Action=DescribeAvailabilityZones").expect("answers");
        assert_eq!(got, answer(&["default"], "opennebula"));
        let got = zones_for("ZoneName.1=default").expect("answers");
        assert_eq!(got, answer(&["default"], "opennebula"));
    }

    #[test]
    fn libcloud_region_filter_answers_the_zone_in_that_region() {
        // What libcloud 3.9.1's ex_list_availability_zones sends from a
        // driver built for us-east-1.
        let got = zones_for(
            "Action=DescribeAvailabilityZones&Filter.1.Name=region-name&Filter.1.Value.1=us-east-1\
             &Filter.2.Name=state&Filter.2.Value.1=available",
        )
        .expect("answers");
        assert_eq!(got, answer(&["default"], "us-east-1"));
        let got =
            zones_for("Filter.1.Name=region-name&Filter.1.Value.1=opennebula").expect("answers");
        assert_eq!(got, answer(&["default"], "opennebula"));
    }

    #[test]
    fn filters_that_the_zone_fails_empty_the_answer() {
        for query in [
            "Filter.1.Name=state&Filter.1.Value.1=impaired",
            "Filter.1.Name=zone-name&Filter.1.Value.1=us-east-1a",
            "Filter.1.Name=region-name&Filter.1.Value.1=a&Filter.2.Name=region-name&Filter.2.Value.1=b",
            "Filter.1.Name=region-name&Filter.1.Value.1=us-*",
        ] {
            assert!(zones_for(query).expect(query).zones.is_empty(), "{query}");
        }
        let got = zones_for("Filter.1.Name=zone-name&Filter.1.Value.1=def*").expect("answers");
        assert_eq!(got, answer(&["default"], "opennebula"));
        let got = zones_for("Filter.1.Name=zone-type&Filter.1.Value.1=x").expect("answers");
        assert_eq!(got.zones, ["default"]);
    }

    #[test]
    fn another_zone_name_is_refused() {
        assert!(zones_for("ZoneName.1=default&ZoneName.2=us-east-1a").is_err());
        assert!(zones_for("Filter.1.Value.1=x").is_err());
    }
}
