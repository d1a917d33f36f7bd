//! HTTP Basic credentials (RFC 7617) as OCCI clients and the CLI send them.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::{verify_password, Error, Result};
use crate::core::Core;

/// Reads `Authorization: Basic base64(user:secret)` into its two parts.
/// The user name ends at the first `:`; the secret may contain more.
pub fn parse(header: Option<&str>) -> Result<(String, String)> {
    let header = header.ok_or(Error::Missing)?;
    let (scheme, encoded) = header
        .trim()
        .split_once(' ')
        .ok_or(Error::Malformed("expected 'Basic <credentials>'"))?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(Error::Malformed("only Basic authentication is accepted"));
    }
    let decoded = STANDARD
        .decode(encoded.trim())
        .map_err(|_| Error::Malformed("credentials are not base64"))?;
    let text =
        String::from_utf8(decoded).map_err(|_| Error::Malformed("credentials are not UTF-8"))?;
    let (user, secret) = text
        .split_once(':')
        .ok_or(Error::Malformed("credentials must be 'user:password'"))?;
    Ok((user.to_string(), secret.to_string()))
}

/// Authenticates a request from its `Authorization` header value.
pub fn authenticate(core: &Core, header: Option<&str>) -> Result {
    let (user, secret) = parse(header)?;
    verify_password(core, &user, &secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(creds: &str) -> String {
        format!("Basic {}", STANDARD.encode(creds))
    }

    #[test]
    fn splits_at_the_first_colon() {
        let h = header("alice:pa:ss");
        assert_eq!(parse(Some(&h)), Ok(("alice".into(), "pa:ss".into())));
    }

    #[test]
    fn refuses_what_is_not_basic() {
        assert_eq!(parse(None), Err(Error::Missing));
        assert!(matches!(
            parse(Some("Bearer abc")),
            Err(Error::Malformed(_))
        ));
        assert!(matches!(parse(Some("Basic !!!")), Err(Error::Malformed(_))));
        let no_colon = header("alice");
        assert!(matches!(parse(Some(&no_colon)), Err(Error::Malformed(_))));
    }

    #[test]
    fn scheme_is_case_insensitive() {
        let h = header("bob:x").replace("Basic", "basic");
        assert_eq!(parse(Some(&h)), Ok(("bob".into(), "x".into())));
    }
}
