//! Which generation of OCCI documents a response uses (spec/OCCI.md §9):
//! OpenNebula 1.4's (`COMPUTES`, `DISK`, wrapped `STORAGE`/`NETWORK`,
//! DELETE 200) or 2.x's (`*_COLLECTION`, `STORAGE`, top-level `DISK`/`NIC`
//! with hrefs, DELETE 204). The two cannot be served at once, so each
//! request picks one: the config's `OCCI_DIALECT`, and in `auto` the
//! client's User-Agent, else the shape of what it sent, else 1.4.
//!
//! May use: `crate::api::common` (the setting). Pure.

use actix_web::http::StatusCode;

use crate::api::common::OcciDialect;

/// The documents of one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// OpenNebula 1.4 (the seed's documents).
    V1_4,
    /// OpenNebula 2.0 / 2.2.
    V2,
}

impl Dialect {
    /// Picks the dialect of a request: a fixed setting wins; in `auto`,
    /// libcloud's User-Agent (`libcloud/3.8.0 (OpenNebula (v1.4)) `), then
    /// the request body's `shape`, then 1.4 (spec/OCCI.md §9).
    pub fn choose(setting: OcciDialect, user_agent: Option<&str>, shape: Option<Dialect>) -> Self {
        match setting {
            OcciDialect::V1_4 => Dialect::V1_4,
            OcciDialect::V2 => Dialect::V2,
            OcciDialect::Auto => user_agent
                .and_then(Self::from_user_agent)
                .or(shape)
                .unwrap_or(Dialect::V1_4),
        }
    }

    /// What libcloud's User-Agent says: its driver name carries the API
    /// version (`OpenNebula (v1.4)`, `OpenNebula (v2.0)`, `(v3.8)`).
    fn from_user_agent(agent: &str) -> Option<Self> {
        if agent.contains("OpenNebula (v1.4)") {
            Some(Dialect::V1_4)
        } else if agent.contains("OpenNebula (v2") || agent.contains("OpenNebula (v3") {
            Some(Dialect::V2)
        } else {
            None
        }
    }

    /// The status of a successful DELETE: 1.4 clients (libcloud's
    /// `destroy_node`) check for 200, 2.x+ clients for 204. Both bodies
    /// are empty: a non-XML body on a 2xx breaks libcloud.
    pub fn delete_status(self) -> StatusCode {
        match self {
            Dialect::V1_4 => StatusCode::OK,
            Dialect::V2 => StatusCode::NO_CONTENT,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UA_14: &str = "libcloud/3.8.0 (OpenNebula (v1.4)) ";
    const UA_20: &str = "libcloud/3.8.0 (OpenNebula (v2.0)) ";
    const UA_38: &str = "libcloud/3.8.0 (OpenNebula (v3.8)) ";

    #[test]
    fn a_fixed_setting_wins_over_every_hint() {
        for ua in [Some(UA_14), Some(UA_20), None] {
            for shape in [Some(Dialect::V1_4), Some(Dialect::V2), None] {
                assert_eq!(Dialect::choose(OcciDialect::V1_4, ua, shape), Dialect::V1_4);
                assert_eq!(Dialect::choose(OcciDialect::V2, ua, shape), Dialect::V2);
            }
        }
    }

    #[test]
    fn auto_reads_the_user_agent_then_the_shape_then_falls_back_to_1_4() {
        let auto = |ua, shape| Dialect::choose(OcciDialect::Auto, ua, shape);
        assert_eq!(auto(Some(UA_14), Some(Dialect::V2)), Dialect::V1_4);
        assert_eq!(auto(Some(UA_20), Some(Dialect::V1_4)), Dialect::V2);
        assert_eq!(auto(Some(UA_38), None), Dialect::V2);
        assert_eq!(auto(Some("curl/8.5.0"), Some(Dialect::V2)), Dialect::V2);
        assert_eq!(auto(Some("curl/8.5.0"), Some(Dialect::V1_4)), Dialect::V1_4);
        assert_eq!(auto(Some("curl/8.5.0"), None), Dialect::V1_4);
        assert_eq!(auto(None, None), Dialect::V1_4);
    }

    #[test]
    fn delete_answers_200_for_1_4_and_204_for_2_x() {
        assert_eq!(Dialect::V1_4.delete_status(), StatusCode::OK);
        assert_eq!(Dialect::V2.delete_status(), StatusCode::NO_CONTENT);
    }
}
