//! Key pairs (spec/EC2.md §6.7): CreateKeyPair (generated; the private
//! key answered once, never stored), ImportKeyPair (an OpenSSH public
//! key, base64-encoded as botocore sends blobs), DescribeKeyPairs and
//! DeleteKeyPair. Each user has its own; RunInstances' `KeyName` puts the
//! public key into the VM's context. Key pairs carry tags: given at
//! creation (`TagSpecification.N`, `ResourceType=key-pair`) or with
//! CreateTags on their `key-…` id.
//!
//! May use: `crate::api::common`, `crate::core`, `super`.

use actix_web::HttpResponse;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::error::Ec2Error;
use super::ids;
use super::params::Params;
use super::tags::{self, OtherTypes};
use super::xml::{KeyPairItem, KeyPairResponse, KeyPairsResponse, Tag};
use super::{Action, Ctx};
use crate::api::common::{blocking, blocking_as};
use crate::core::keypair::{KeyPair, KeyType};
use crate::core::tag::Taggable;
use crate::core::{self, Caller, Core, Kind};

/// A key pair as EC2 shows it.
fn item(pair: &KeyPair, tags: Vec<Tag>) -> KeyPairItem {
    KeyPairItem {
        id: pair.id,
        name: pair.name.clone(),
        fingerprint: pair.fingerprint.clone(),
        key_type: pair.key_type.clone(),
        created: i64::try_from(pair.created).unwrap_or(i64::MAX),
        tags,
    }
}

/// The tags of `TagSpecification.N` for a new key pair.
fn tags_at_creation(params: &Params) -> Result<Vec<(String, String)>, Ec2Error> {
    tags::specified(params, "key-pair", OtherTypes::Refuse)
}

/// Puts the creation's tags on the new key pair; if that fails (the
/// store, since the tags were checked), the key pair goes too, so that
/// the failed call leaves nothing behind.
fn tag_new(
    core: &Core,
    caller: &Caller,
    pair: &KeyPair,
    tags: &[(String, String)],
) -> core::Result<Vec<Tag>> {
    if tags.is_empty() {
        return Ok(Vec::new());
    }
    let target = Taggable::KeyPair(pair.id);
    if let Err(e) = core.tags().create(caller, &[target], tags) {
        if let Err(undo) = core.keypairs().delete(caller, &pair.name) {
            tracing::error!("key pair {} of a failed creation stays: {undo}", pair.name);
        }
        return Err(e);
    }
    tags::tag_set(core, target)
}

/// A name already taken is EC2's `InvalidKeyPair.Duplicate`.
fn duplicate(name: &str) -> impl FnOnce(core::Error) -> Ec2Error + '_ {
    move |e| match e {
        core::Error::Conflict(_) => Ec2Error::KeyPairDuplicate(name.to_string()),
        other => other.into(),
    }
}

/// `CreateKeyPair` with `KeyName`, `KeyType` (`rsa`, the default, or
/// `ed25519`) and `TagSpecification.N`. The private key is in OpenSSH
/// format.
pub(super) async fn create(ctx: &Ctx<'_>, params: &Params) -> Result<HttpResponse, Ec2Error> {
    let name = params.required("KeyName")?.to_string();
    let key_type = match params.get("KeyType") {
        None | Some("") => KeyType::Rsa,
        Some(word) => KeyType::parse(word)?,
    };
    let tags = tags_at_creation(params)?;
    if params.flag("DryRun")? {
        return Err(Ec2Error::DryRun);
    }
    let (core, caller, key_name) = (ctx.state.core.clone(), ctx.caller.clone(), name.clone());
    let (pair, private, tag_set) = blocking(move || {
        let (pair, private) = core.keypairs().create(&caller, &key_name, key_type)?;
        let tag_set = tag_new(&core, &caller, &pair, &tags)?;
        Ok((pair, private, tag_set))
    })
    .await
    .map_err(duplicate(&name))?;
    Ok(ctx.reply(&KeyPairResponse {
        action: Action::CreateKeyPair,
        key: item(&pair, tag_set),
        material: Some(private),
    }))
}

/// The key text of `PublicKeyMaterial`: base64 as botocore sends it, or
/// the OpenSSH line itself from clients that do not encode it.
fn material(text: &str) -> String {
    STANDARD
        .decode(text.trim())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .unwrap_or_else(|| text.to_string())
}

/// `ImportKeyPair` with `KeyName`, `PublicKeyMaterial` and
/// `TagSpecification.N`.
pub(super) async fn import(ctx: &Ctx<'_>, params: &Params) -> Result<HttpResponse, Ec2Error> {
    let name = params.required("KeyName")?.to_string();
    let key = material(params.required("PublicKeyMaterial")?);
    let tags = tags_at_creation(params)?;
    if params.flag("DryRun")? {
        return Err(Ec2Error::DryRun);
    }
    let (core, caller, key_name) = (ctx.state.core.clone(), ctx.caller.clone(), name.clone());
    let (pair, tag_set) = blocking(move || {
        let pair = core.keypairs().import(&caller, &key_name, &key)?;
        let tag_set = tag_new(&core, &caller, &pair, &tags)?;
        Ok((pair, tag_set))
    })
    .await
    .map_err(|e| match e {
        core::Error::Invalid { field, reason } if field == "PublicKeyMaterial" => {
            Ec2Error::KeyFormat(reason)
        }
        other => duplicate(&name)(other),
    })?;
    Ok(ctx.reply(&KeyPairResponse {
        action: Action::ImportKeyPair,
        key: item(&pair, tag_set),
        material: None,
    }))
}

/// `DescribeKeyPairs` with `KeyName.N`, `KeyPairId.N` (each must name a
/// key pair of the caller's) and `Filter.N` (`key-name`, `fingerprint`,
/// `key-pair-id`, `key-type`, `tag-key`, `tag:KEY`).
pub(super) fn describe(ctx: &Ctx<'_>, params: &Params) -> Result<HttpResponse, Ec2Error> {
    let pairs = ctx.state.core.keypairs().list(&ctx.caller)?;
    let names = params.list("KeyName");
    let key_ids = params.list("KeyPairId");
    for name in &names {
        if !pairs.iter().any(|p| p.name == *name) {
            return Err(core::Error::not_found(Kind::KeyPair, name).into());
        }
    }
    for id in &key_ids {
        if !pairs.iter().any(|p| ids::key_pair_id(p.id) == *id) {
            return Err(core::Error::not_found(Kind::KeyPair, id).into());
        }
    }
    let filters = params.filters()?;
    let core = &ctx.state.core;
    let mut keys = Vec::new();
    for p in pairs
        .iter()
        .filter(|p| names.is_empty() || names.contains(&p.name.as_str()))
        .filter(|p| key_ids.is_empty() || key_ids.contains(&ids::key_pair_id(p.id).as_str()))
    {
        let item = item(p, tags::tag_set(core, Taggable::KeyPair(p.id))?);
        let shown = filters.iter().all(|f| {
            tags::filter_matches(f, &item.tags).unwrap_or_else(|| match f.name.as_str() {
                "key-name" => f.matches(&p.name),
                "fingerprint" => f.matches(&p.fingerprint),
                "key-pair-id" => f.matches(&ids::key_pair_id(p.id)),
                "key-type" => f.matches(&p.key_type),
                _ => true,
            })
        });
        if shown {
            keys.push(item);
        }
    }
    Ok(ctx.reply(&KeyPairsResponse { keys }))
}

/// `DeleteKeyPair` by `KeyName` or `KeyPairId`; deleting a key pair that
/// does not exist succeeds, as on AWS.
pub(super) async fn delete(ctx: &Ctx<'_>, params: &Params) -> Result<HttpResponse, Ec2Error> {
    let name = match (params.get("KeyName"), params.get("KeyPairId")) {
        (Some(name), _) if !name.is_empty() => Some(name.to_string()),
        (_, Some(id)) if !id.is_empty() => ctx
            .state
            .core
            .keypairs()
            .list(&ctx.caller)?
            .into_iter()
            .find(|p| ids::key_pair_id(p.id) == id)
            .map(|p| p.name),
        _ => return Err(Ec2Error::missing("KeyName")),
    };
    if params.flag("DryRun")? {
        return Err(Ec2Error::DryRun);
    }
    if let Some(name) = name {
        blocking_as(&ctx.state.core, &ctx.caller, move |core, caller| {
            core.keypairs().delete(caller, &name)
        })
        .await?;
    }
    Ok(ctx.reply(&super::xml::ReturnResponse {
        action: Action::DeleteKeyPair,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn material_is_base64_or_plain() {
        let line = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ k";
        assert_eq!(material(&STANDARD.encode(line)), line);
        assert_eq!(material(line), line);
    }
}
