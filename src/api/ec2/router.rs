//! Dispatch: one exhaustive `match` from [`Action`] to its handler. The
//! caller is already authenticated; each handler parses its parameters,
//! makes one core call and renders its document.
//!
//! May use: `super`.

use actix_web::HttpResponse;

use super::action::Action;
use super::error::Ec2Error;
use super::params::Params;
use super::{images, instances, keypairs, regions, tags, Ctx};

/// Runs `action` for an authenticated request.
pub(super) async fn dispatch(
    ctx: &Ctx<'_>,
    action: Action,
    params: &Params,
) -> Result<HttpResponse, Ec2Error> {
    match action {
        // The file comes in a multipart body, which `serve_multipart`
        // routes to the upload itself; here there is none.
        Action::UploadImage => Err(Ec2Error::missing("file")),
        Action::RegisterImage => images::register(ctx, params).await,
        Action::DeregisterImage => images::deregister(ctx, params).await,
        Action::DescribeImages => images::describe(ctx, params),
        Action::RunInstances => instances::run(ctx, params).await,
        Action::DescribeInstances => instances::describe(ctx, params),
        Action::TerminateInstances => instances::terminate(ctx, params).await,
        Action::StartInstances => instances::start(ctx, params).await,
        Action::StopInstances => instances::stop(ctx, params).await,
        Action::RebootInstances => instances::reboot(ctx, params).await,
        Action::DescribeRegions => regions::describe_regions(ctx),
        Action::DescribeAvailabilityZones => regions::describe_zones(ctx, params),
        Action::DescribeAddresses => regions::describe_addresses(ctx, params),
        Action::CreateKeyPair => keypairs::create(ctx, params).await,
        Action::ImportKeyPair => keypairs::import(ctx, params).await,
        Action::DescribeKeyPairs => keypairs::describe(ctx, params),
        Action::DeleteKeyPair => keypairs::delete(ctx, params).await,
        Action::CreateTags => tags::create(ctx, params).await,
        Action::DescribeTags => tags::describe(ctx, params),
        Action::DeleteTags => tags::delete(ctx, params).await,
    }
}
