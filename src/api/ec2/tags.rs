//! Tags on instances and images (spec/EC2.md §6.7): CreateTags,
//! DescribeTags and DeleteTags, shown in every object's `tagSet` and used
//! by the `tag:KEY` filters. Only the caller's own objects can be tagged;
//! another user's answers as if it did not exist.
//!
//! May use: `crate::api::common`, `crate::core`, `super`.

use actix_web::HttpResponse;

use super::error::Ec2Error;
use super::ids::Resource;
use super::params::Params;
use super::xml::{ReturnResponse, Tag, TagDescription, TagsResponse};
use super::{Action, Ctx};
use crate::api::common::blocking_as;
use crate::core::tag::{Taggable, Untag};

fn taggable(resource: Resource) -> Taggable {
    match resource {
        Resource::Instance(id) => Taggable::Vm(id),
        Resource::Image(id) => Taggable::Image(id),
    }
}

fn resource(target: Taggable) -> Resource {
    match target {
        Taggable::Vm(id) => Resource::Instance(id),
        Taggable::Image(id) => Resource::Image(id),
    }
}

/// `ResourceId.N`: at least one.
fn targets(params: &Params) -> Result<Vec<Taggable>, Ec2Error> {
    let ids = params.list("ResourceId");
    if ids.is_empty() {
        return Err(Ec2Error::missing("ResourceId.1"));
    }
    ids.into_iter()
        .map(|id| Resource::parse(id).map(taggable))
        .collect()
}

/// `CreateTags` with `ResourceId.N` and `Tag.N.Key` / `Tag.N.Value`.
pub(super) async fn create(ctx: &Ctx<'_>, params: &Params) -> Result<HttpResponse, Ec2Error> {
    let targets = targets(params)?;
    let tags: Vec<(String, String)> = params
        .groups("Tag")
        .into_iter()
        .map(|g| {
            let key = g.get("Key").ok_or_else(|| Ec2Error::missing("Tag.N.Key"))?;
            Ok((key.to_string(), g.get("Value").unwrap_or(&"").to_string()))
        })
        .collect::<Result<_, Ec2Error>>()?;
    if tags.is_empty() {
        return Err(Ec2Error::missing("Tag.1.Key"));
    }
    if params.flag("DryRun")? {
        for target in &targets {
            ctx.state.core.tags().check_manage(&ctx.caller, *target)?;
        }
        return Err(Ec2Error::DryRun);
    }
    blocking_as(&ctx.state.core, &ctx.caller, move |core, caller| {
        core.tags().create(caller, &targets, &tags)
    })
    .await?;
    Ok(ctx.reply(&ReturnResponse {
        action: Action::CreateTags,
    }))
}

/// `DeleteTags` with `ResourceId.N` and optional `Tag.N.Key` (with
/// `Tag.N.Value`: only when the value matches); no `Tag` removes every tag.
pub(super) async fn delete(ctx: &Ctx<'_>, params: &Params) -> Result<HttpResponse, Ec2Error> {
    let targets = targets(params)?;
    let keys: Vec<Untag> = params
        .groups("Tag")
        .into_iter()
        .map(|g| {
            let key = g.get("Key").ok_or_else(|| Ec2Error::missing("Tag.N.Key"))?;
            Ok(Untag {
                key: key.to_string(),
                value: g.get("Value").map(|v| v.to_string()),
            })
        })
        .collect::<Result<_, Ec2Error>>()?;
    if params.flag("DryRun")? {
        for target in &targets {
            ctx.state.core.tags().check_manage(&ctx.caller, *target)?;
        }
        return Err(Ec2Error::DryRun);
    }
    blocking_as(&ctx.state.core, &ctx.caller, move |core, caller| {
        core.tags().delete(caller, &targets, &keys)
    })
    .await?;
    Ok(ctx.reply(&ReturnResponse {
        action: Action::DeleteTags,
    }))
}

/// `DescribeTags` with `Filter.N`: `resource-id`, `resource-type`
/// (`instance`, `image`), `key`, `value` (others are ignored).
pub(super) fn describe(ctx: &Ctx<'_>, params: &Params) -> Result<HttpResponse, Ec2Error> {
    let filters = params.filters()?;
    let tags = ctx
        .state
        .core
        .tags()
        .list(&ctx.caller)?
        .into_iter()
        .map(|t| TagDescription {
            resource: resource(t.target),
            tag: Tag {
                key: t.key,
                value: t.value,
            },
        })
        .filter(|t| {
            filters.iter().all(|f| match f.name.as_str() {
                "resource-id" => f.matches(&t.resource.id()),
                "resource-type" => f.matches(t.resource.type_name()),
                "key" => f.matches(&t.tag.key),
                "value" => f.matches(&t.tag.value),
                _ => true,
            })
        })
        .collect();
    Ok(ctx.reply(&TagsResponse { tags }))
}
