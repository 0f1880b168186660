//! Who is asking, as extractors: [`Viewer`] (any account), [`Admin`] (may change
//! authorizations) and [`Research`] (the research team) take the session of the request's
//! cookie and answer for themselves when it is missing (to the login page) or its role does
//! not fit (403); [`Posted`] takes a form only with the session's CSRF token. A handler names
//! what it needs and never checks a role by hand.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Redirect, Response};
use pcap_protocol::store::{AuditAction, AuditEntry};

use super::Console;
use super::session::{Session, same_token};
use super::view::forbidden;
use crate::users::Role;

/// The session of the request's cookie (its id and the session), if it is live and its
/// account still stands as it was when it logged in.
pub fn session(console: &Console, headers: &HeaderMap) -> Option<(String, Session)> {
    let id = cookie(headers, super::session::COOKIE)?;
    console.session(&id).map(|s| (id, s))
}

/// The value of the cookie `name`, if the request carries it.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.to_owned())
}

fn to_login() -> Response {
    Redirect::to("/login").into_response()
}

/// Any logged-in account.
#[derive(Debug)]
pub struct Viewer(pub Session);

impl FromRequestParts<Arc<Console>> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        console: &Arc<Console>,
    ) -> Result<Self, Response> {
        session(console, &parts.headers)
            .map(|(_, s)| Viewer(s))
            .ok_or_else(to_login)
    }
}

/// An account that may authorize, reauthorize and unauthorize, on a console that holds the
/// authorization key. Any other account's attempt is refused and audited.
#[derive(Debug)]
pub struct Admin(pub Session);

impl FromRequestParts<Arc<Console>> for Admin {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        console: &Arc<Console>,
    ) -> Result<Self, Response> {
        let Viewer(session) = Viewer::from_request_parts(parts, console).await?;
        if !session.role.may_authorize() {
            let entry = AuditEntry {
                detail: Some(format!(
                    "a {} account tried to change an authorization",
                    session.role.as_str()
                )),
                ..AuditEntry::new(&session.user, AuditAction::Forbidden)
            };
            crate::audit::record(&console.store, &entry).await;
            return Err(forbidden(
                "Your account may not change authorizations (owner or admin only).",
            ));
        }
        if console.key.is_none() {
            return Err(forbidden(
                "This console was not given the authorization key (--key), so it cannot sign.",
            ));
        }
        Ok(Admin(session))
    }
}

/// The research team's account.
#[derive(Debug)]
pub struct Research(pub Session);

impl FromRequestParts<Arc<Console>> for Research {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        console: &Arc<Console>,
    ) -> Result<Self, Response> {
        let Viewer(session) = Viewer::from_request_parts(parts, console).await?;
        if session.role != Role::Research {
            return Err(forbidden(
                "Captures are the research team's: your account has no research role.",
            ));
        }
        Ok(Research(session))
    }
}

/// The fields of a form, repeated names kept (`serial=A&serial=B`), and its raw body.
#[derive(Debug)]
pub struct Fields {
    pairs: Vec<(String, String)>,
    pub body: Bytes,
}

impl Fields {
    pub fn parse(body: Bytes) -> Self {
        Fields {
            pairs: form_urlencoded::parse(&body).into_owned().collect(),
            body,
        }
    }

    pub fn get(&self, name: &str) -> &str {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }

    pub fn all(&self, name: &str) -> Vec<String> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Whether the form says it was confirmed (`confirm=yes`, from a confirmation page).
    pub fn confirmed(&self) -> bool {
        self.get("confirm") == "yes"
    }
}

/// A form posted with the session's CSRF token (else 403, whatever else it holds).
#[derive(Debug)]
pub struct Posted(pub Fields);

impl FromRequest<Arc<Console>> for Posted {
    type Rejection = Response;

    async fn from_request(request: Request, console: &Arc<Console>) -> Result<Self, Response> {
        let Some((_, session)) = session(console, request.headers()) else {
            return Err(to_login());
        };
        let body = Bytes::from_request(request, console)
            .await
            .map_err(IntoResponse::into_response)?;
        let fields = Fields::parse(body);
        if !same_token(fields.get("csrf"), &session.csrf) {
            return Err(forbidden(
                "The form is stale or forged (no valid CSRF token): reload the page.",
            ));
        }
        Ok(Posted(fields))
    }
}
