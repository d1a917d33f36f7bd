//! Images as AMIs (spec/EC2.md §6.1–6.3): UploadImage (econe's multipart
//! upload, streamed into the repository like OCCI's), RegisterImage
//! (marks an image of the caller's as an AMI), DeregisterImage (deletes
//! it, as econe 4.x did) and DescribeImages.
//!
//! An image is an AMI when its template has `EC2_AMI = YES`. DescribeImages
//! lists the caller's AMIs and the public images (oneadmin: every AMI and
//! public image); clients of econe 1.4 (`Version=2008-12-01`, where
//! registering was a no-op) also see the caller's unregistered images.
//! Named ids (`ImageId.N`) are shown whenever the caller may see them.
//!
//! May use: `crate::api::common`, `crate::core`, `super`.

use actix_web::web::Bytes;
use actix_web::HttpResponse;
use futures_util::Stream;
use rand::Rng;

use super::error::Ec2Error;
use super::ids::parse_image;
use super::params::{Filter, Params};
use super::xml::{ImageIdResponse, ImageItem, ImagesResponse, ReturnResponse};
use super::{Action, Ctx};
use crate::api::common::{blocking_as, stream_upload, UploadError};
use crate::core::image::{Image, ImageState, NewImage};
use crate::core::tag::Taggable;
use crate::core::{self, Caller, Core, Kind};

/// The template attribute that makes an image an AMI.
pub const AMI_MARK: &str = "EC2_AMI";

/// Whether an image was registered as an AMI.
fn is_ami(image: &Image) -> bool {
    image
        .template
        .get(AMI_MARK)
        .is_some_and(|v| v.eq_ignore_ascii_case("yes"))
}

/// `UploadImage`: the `file` part, `file_name` as the client gave it and
/// its content as `chunks`, becomes a new private OS image of the
/// caller's, named `ec2-<random hex>`, answered as RegisterImage is. The
/// image is committed only if `chunks` ends without an error; an error
/// (a broken body, a failed signature check at the end) leaves nothing.
pub(super) async fn upload(
    ctx: &Ctx<'_>,
    file_name: Option<&str>,
    chunks: impl Stream<Item = Result<Bytes, Ec2Error>> + Unpin,
) -> Result<HttpResponse, Ec2Error> {
    let limit = ctx.state.upload_limit;
    let suffix: u64 = rand::thread_rng().gen();
    let mut new = NewImage::named(format!("ec2-{suffix:016x}"));
    // The client's local path (econe-upload sends it): its last
    // component is a better description than nothing.
    if let Some(name) = file_name
        .and_then(|f| f.rsplit(['/', '\\']).next())
        .filter(|f| !f.trim().is_empty() && !f.chars().any(char::is_control))
    {
        new.template.insert("DESCRIPTION".into(), name.to_string());
    }
    let handle = blocking_as(&ctx.state.core, &ctx.caller, move |core, caller| {
        core.images().begin_upload(caller, new, limit)
    })
    .await?;
    let image = stream_upload(handle, chunks).await.map_err(|e| match e {
        UploadError::Core(e) => Ec2Error::Core(e),
        UploadError::Body(e) => e,
    })?;
    Ok(ctx.reply(&ImageIdResponse { image_id: image.id }))
}

/// What a multer error means for the client: the file over its limit is
/// the core's `TooLarge` (413), another part over its limit 413 too, a
/// broken form 400.
pub(super) fn form_error(e: multer::Error, limit: u64) -> Ec2Error {
    match e {
        multer::Error::FieldSizeExceeded { field_name, .. }
            if field_name.as_deref() == Some("file") =>
        {
            core::Error::TooLarge {
                what: "image".into(),
                limit,
            }
            .into()
        }
        multer::Error::FieldSizeExceeded { limit, .. }
        | multer::Error::StreamSizeExceeded { limit } => Ec2Error::BodyTooLarge(limit),
        other => Ec2Error::BadBody(format!("malformed multipart/form-data: {other}")),
    }
}

/// The image the caller manages (owner or oneadmin); another user's image,
/// even a public one, answers as if it did not exist.
fn managed(core: &Core, caller: &Caller, id: u64) -> core::Result<Image> {
    let image = core.images().show(caller, &id.to_string())?;
    if caller.owns_or_admin(image.owner) {
        Ok(image)
    } else {
        Err(core::Error::Forbidden {
            kind: Kind::Image,
            id: id.to_string(),
            action: "manage".into(),
        })
    }
}

/// `RegisterImage`: `ImageLocation` names an image of the caller's (bare
/// id or `ami-…`), which becomes an AMI.
pub(super) async fn register(ctx: &Ctx<'_>, params: &Params) -> Result<HttpResponse, Ec2Error> {
    let id = parse_image(params.required("ImageLocation")?)?;
    if params.flag("DryRun")? {
        managed(&ctx.state.core, &ctx.caller, id)?;
        return Err(Ec2Error::DryRun);
    }
    let image = blocking_as(&ctx.state.core, &ctx.caller, move |core, caller| {
        managed(core, caller, id)?;
        core.images()
            .set_attribute(caller, &id.to_string(), AMI_MARK, Some("YES"))
    })
    .await?;
    Ok(ctx.reply(&ImageIdResponse { image_id: image.id }))
}

/// `DeregisterImage`: deletes the caller's image (refused while VMs use
/// it).
pub(super) async fn deregister(ctx: &Ctx<'_>, params: &Params) -> Result<HttpResponse, Ec2Error> {
    let id = parse_image(params.required("ImageId")?)?;
    if params.flag("DryRun")? {
        managed(&ctx.state.core, &ctx.caller, id)?;
        return Err(Ec2Error::DryRun);
    }
    blocking_as(&ctx.state.core, &ctx.caller, move |core, caller| {
        managed(core, caller, id)?;
        core.images().delete(caller, &id.to_string())
    })
    .await?;
    Ok(ctx.reply(&ReturnResponse {
        action: Action::DeregisterImage,
    }))
}

/// `DescribeImages` with `ImageId.N`, `Owner.N` and `Filter.N`
/// (`image-id`, `name`, `state`, `is-public`, `owner-id`, `tag:KEY`,
/// `tag-key`; others are ignored). `ExecutableBy.N` is ignored: every
/// image listed is usable by the caller.
pub(super) fn describe(ctx: &Ctx<'_>, params: &Params) -> Result<HttpResponse, Ec2Error> {
    let core = &ctx.state.core;
    let caller = &ctx.caller;
    let wanted: Vec<u64> = params
        .list("ImageId")
        .into_iter()
        .map(parse_image)
        .collect::<Result<_, _>>()?;
    let owners = params.list("Owner");
    let filters = params.filters()?;
    let images: Vec<Image> = if wanted.is_empty() {
        let legacy = ctx.ns.version() == "2008-12-01";
        core.images()
            .list(caller)?
            .into_iter()
            .filter(|i| is_ami(i) || i.public || (legacy && i.owner == caller.uid))
            .collect()
    } else {
        wanted
            .iter()
            .map(|id| core.images().show(caller, &id.to_string()))
            .collect::<Result<_, _>>()?
    };
    let mut items = Vec::new();
    for image in images {
        let item = item(core, &image)?;
        if !owners.is_empty()
            && !owners
                .iter()
                .any(|o| owner_matches(o, caller, &image, &item))
        {
            continue;
        }
        if filters.iter().all(|f| filter_matches(f, &item)) {
            items.push(item);
        }
    }
    Ok(ctx.reply(&ImagesResponse { images: items }))
}

fn owner_matches(owner: &str, caller: &Caller, image: &Image, item: &ImageItem) -> bool {
    match owner {
        "self" => image.owner == caller.uid,
        other => item.owner == other || image.owner.to_string() == other,
    }
}

/// Whether an image passes one filter; unknown filter names pass.
fn filter_matches(filter: &Filter, item: &ImageItem) -> bool {
    match filter.name.as_str() {
        "image-id" => filter.matches(&super::ids::image_id(item.id)),
        "name" => filter.matches(&item.name),
        "state" => filter.matches(item.state),
        "is-public" => filter.matches(if item.public { "true" } else { "false" }),
        "owner-id" | "owner-alias" => filter.matches(&item.owner),
        "architecture" => filter.matches(&item.architecture),
        _ => super::tags::filter_matches(filter, &item.tags).unwrap_or(true),
    }
}

/// An image as DescribeImages shows it.
fn item(core: &Core, image: &Image) -> Result<ImageItem, Ec2Error> {
    let owner = core
        .users()
        .by_id(image.owner)?
        .map_or_else(|| image.owner.to_string(), |u| u.name);
    let state = match image.state {
        ImageState::Ready | ImageState::Used => "available",
        ImageState::Init | ImageState::Locked => "pending",
        ImageState::Disabled => "deregistered",
        ImageState::Error => "failed",
    };
    let tags = super::tags::tag_set(core, Taggable::Image(image.id))?;
    Ok(ImageItem {
        id: image.id,
        location: image.name.clone(),
        state,
        owner,
        public: image.public,
        architecture: image
            .template
            .get("ARCH")
            .cloned()
            .unwrap_or_else(|| "x86_64".to_string()),
        name: image.name.clone(),
        description: image.description().map(str::to_string),
        created: i64::try_from(image.registered).unwrap_or(i64::MAX),
        tags,
    })
}
