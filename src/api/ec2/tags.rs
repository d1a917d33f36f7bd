//! Tags on instances, images and key pairs (spec/EC2.md §6.7):
//! CreateTags, DescribeTags and DeleteTags, shown in every object's
//! `tagSet` and used by the `tag:KEY` filters; also the helpers the
//! creating actions share (`TagSpecification.N`, `tagSet`, tag filters).
//! Only the caller's own objects can be tagged; another user's answers as
//! if it did not exist.
//!
//! May use: `crate::api::common`, `crate::core`, `super`.

use std::collections::BTreeMap;

use actix_web::HttpResponse;

use super::error::Ec2Error;
use super::ids::Resource;
use super::params::{Filter, Params};
use super::xml::{ReturnResponse, Tag, TagDescription, TagsResponse};
use super::{Action, Ctx};
use crate::api::common::blocking_as;
use crate::core::tag::{self as core_tags, Taggable, Untag};
use crate::core::{self, Core};

fn taggable(resource: Resource) -> Taggable {
    match resource {
        Resource::Instance(id) => Taggable::Vm(id),
        Resource::Image(id) => Taggable::Image(id),
        Resource::KeyPair(id) => Taggable::KeyPair(id),
    }
}

fn resource(target: Taggable) -> Resource {
    match target {
        Taggable::Vm(id) => Resource::Instance(id),
        Taggable::Image(id) => Resource::Image(id),
        Taggable::KeyPair(id) => Resource::KeyPair(id),
    }
}

/// What a `TagSpecification` of another resource type than the one an
/// action creates does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum OtherTypes {
    /// Ignored: RunInstances may be given tags for the volumes and
    /// interfaces AWS would make with the instance, which cloudgate has
    /// not.
    Skip,
    /// `InvalidParameterValue`: nothing else is made with the object.
    Refuse,
}

/// The tags of `TagSpecification.N` (`ResourceType`, `Tag.N.Key`,
/// `Tag.N.Value`) for `resource_type`, in order; a specification without
/// a `ResourceType` is for it too. They are checked by AWS's rules here,
/// before the action creates the object that would carry them, so that
/// bad tags change nothing.
pub(super) fn specified(
    params: &Params,
    resource_type: &str,
    others: OtherTypes,
) -> Result<Vec<(String, String)>, Ec2Error> {
    let mut tags = Vec::new();
    for spec in params.groups("TagSpecification") {
        if let Some(other) = spec.get("ResourceType").filter(|t| **t != resource_type) {
            match others {
                OtherTypes::Skip => continue,
                OtherTypes::Refuse => {
                    return Err(Ec2Error::invalid_value(format!(
                        "'{other}' is not a valid taggable resource type for this operation"
                    )))
                }
            }
        }
        // Tag.N.Key / Tag.N.Value, by N (the group map is by member name,
        // so Tag.10 would sort before Tag.2).
        let mut keys: BTreeMap<u64, (Option<&str>, Option<&str>)> = BTreeMap::new();
        for (member, value) in &spec {
            let Some(rest) = member.strip_prefix("Tag.") else {
                continue;
            };
            let Some((n, part)) = rest.split_once('.') else {
                continue;
            };
            let Ok(n) = n.parse::<u64>() else { continue };
            let slot = keys.entry(n).or_default();
            match part {
                "Key" => slot.0 = Some(value),
                "Value" => slot.1 = Some(value),
                _ => {}
            }
        }
        for (key, value) in keys.into_values() {
            let key = key.ok_or_else(|| Ec2Error::missing("TagSpecification.N.Tag.N.Key"))?;
            tags.push((key.to_string(), value.unwrap_or("").to_string()));
        }
    }
    core_tags::check_tags(&tags)?;
    Ok(tags)
}

/// An object's `tagSet`, for an object the caller was allowed to see.
pub(super) fn tag_set(core: &Core, target: Taggable) -> core::Result<Vec<Tag>> {
    Ok(core
        .tags()
        .of(target)?
        .into_iter()
        .map(|(key, value)| Tag { key, value })
        .collect())
}

/// The tag filters every Describe action shares: `tag-key` and
/// `tag:KEY` (the value must match); `None` for any other filter name,
/// which the action decides itself.
pub(super) fn filter_matches(filter: &Filter, tags: &[Tag]) -> Option<bool> {
    if filter.name == "tag-key" {
        return Some(tags.iter().any(|t| filter.matches(&t.key)));
    }
    let key = filter.name.strip_prefix("tag:")?;
    Some(
        tags.iter()
            .any(|t| t.key == key && filter.matches(&t.value)),
    )
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

/// A dry run's answer: whether the caller may tag every target.
fn check_manage(ctx: &Ctx<'_>, targets: &[Taggable]) -> Result<(), Ec2Error> {
    let core = &ctx.state.core;
    for target in targets {
        core.tags().check_manage(&ctx.caller, *target)?;
    }
    Ok(())
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
        check_manage(ctx, &targets)?;
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
        check_manage(ctx, &targets)?;
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
/// (`instance`, `image`, `key-pair`), `key`, `value` (others are ignored).
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
