//! `/v1/users`: oneadmin manages users; a user may see itself and change
//! its own password.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

use super::{authenticated, caller, resource, Reply};
use crate::api::common::AppState;
use crate::core::user::User;

pub(super) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        resource("/users")
            .route(web::get().to(list))
            .route(web::post().to(create)),
    )
    .service(
        resource("/users/{user}")
            .route(web::get().to(show))
            .route(web::delete().to(delete)),
    )
    .service(resource("/users/{user}/password").route(web::put().to(passwd)))
    .service(resource("/users/{user}/enable").route(web::post().to(enable)))
    .service(resource("/users/{user}/disable").route(web::post().to(disable)));
}

/// A user as `/v1` shows it.
#[derive(Serialize)]
struct UserJson {
    id: u64,
    name: String,
    /// The SHA1 hex: the OCCI secret and the EC2 secret access key.
    password: String,
    enabled: bool,
}

impl From<User> for UserJson {
    fn from(u: User) -> Self {
        UserJson {
            id: u.id,
            name: u.name,
            password: u.password,
            enabled: u.enabled,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUser {
    name: String,
    password: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewPassword {
    password: String,
}

async fn list(req: HttpRequest, state: web::Data<AppState>) -> Reply {
    let caller = caller(&req, &state)?;
    let users = state.core.users().list(&caller)?;
    Ok(HttpResponse::Ok().json(users.into_iter().map(UserJson::from).collect::<Vec<_>>()))
}

async fn create(req: HttpRequest, state: web::Data<AppState>, body: web::Json<NewUser>) -> Reply {
    let user = authenticated(&req, &state, move |core, caller| {
        core.users().create(caller, &body.name, &body.password)
    })
    .await?;
    Ok(HttpResponse::Created().json(UserJson::from(user)))
}

async fn show(req: HttpRequest, state: web::Data<AppState>, key: web::Path<String>) -> Reply {
    let caller = caller(&req, &state)?;
    let user = state.core.users().show(&caller, &key)?;
    Ok(HttpResponse::Ok().json(UserJson::from(user)))
}

async fn delete(req: HttpRequest, state: web::Data<AppState>, key: web::Path<String>) -> Reply {
    authenticated(&req, &state, move |core, caller| {
        core.users().delete(caller, &key)
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn passwd(
    req: HttpRequest,
    state: web::Data<AppState>,
    key: web::Path<String>,
    body: web::Json<NewPassword>,
) -> Reply {
    let user = authenticated(&req, &state, move |core, caller| {
        core.users().set_password(caller, &key, &body.password)
    })
    .await?;
    Ok(HttpResponse::Ok().json(UserJson::from(user)))
}

async fn enable(req: HttpRequest, state: web::Data<AppState>, key: web::Path<String>) -> Reply {
    set_enabled(req, state, key, true).await
}

async fn disable(req: HttpRequest, state: web::Data<AppState>, key: web::Path<String>) -> Reply {
    set_enabled(req, state, key, false).await
}

async fn set_enabled(
    req: HttpRequest,
    state: web::Data<AppState>,
    key: web::Path<String>,
    enabled: bool,
) -> Reply {
    let user = authenticated(&req, &state, move |core, caller| {
        core.users().set_enabled(caller, &key, enabled)
    })
    .await?;
    Ok(HttpResponse::Ok().json(UserJson::from(user)))
}
