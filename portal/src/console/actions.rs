//! The administrator's actions: add (authorize), reauthorize, unauthorize selected. Each is a
//! POST with the session's CSRF token, confirmed on a page of its own that names the devices,
//! and done through [`crate::grants::Issuer`], exactly as the CLI does it (same checks, same
//! messages, same audit entries, with the account as the actor). A role that may not change
//! anything gets 403, and the attempt is audited.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use maud::{Markup, html};
use pcap_protocol::Period;
use serde::Deserialize;

use super::Console;
use super::auth::{Admin, Fields, Posted};
use super::session::Session;
use super::view::{layout, period_select, period_words};
use crate::grants::Issuer;

pub fn routes() -> Router<Arc<Console>> {
    Router::new()
        .route("/devices/add", post(add))
        .route(
            "/devices/reauthorize",
            get(reauthorize_page).post(reauthorize),
        )
        .route("/devices/unauthorize", post(unauthorize))
}

/// Runs `work` with an issuer acting for `session`; the portal's record of issued sequences
/// is held meanwhile, so two actions never issue the same sequence.
async fn issue<T>(
    console: &Console,
    session: &Session,
    work: impl AsyncFnOnce(&mut Issuer<'_>) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let key = console
        .key
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("no key"))?;
    let mut issued = console.issued.lock().await;
    let mut issuer = Issuer {
        store: &console.store,
        issued: &mut issued,
        key,
        actor: session.user.clone(),
    };
    work(&mut issuer).await
}

fn period_of(fields: &Fields) -> Result<Period, Box<Response>> {
    fields.get("period").parse().map_err(|_| {
        let page = layout(
            "Bad request",
            None,
            html! { p.error { "Choose a period: 1m, 3m or unlimited." } },
        );
        Box::new((StatusCode::BAD_REQUEST, page).into_response())
    })
}

/// The end of a confirming form: the CSRF token, the confirmation, the button, and Cancel.
fn confirm_buttons(session: &Session, label: &str) -> Markup {
    html! {
        input type="hidden" name="csrf" value=(session.csrf);
        input type="hidden" name="confirm" value="yes";
        button #confirm type="submit" { (label) }
        " "
        a href="/devices" { "Cancel" }
    }
}

/// A page that asks to confirm, carrying the form's fields.
fn confirm(session: &Session, action: &str, what: Markup, fields: &[(&str, String)]) -> Response {
    layout(
        "Confirm",
        Some(session),
        html! {
            p { (what) }
            form method="post" action=(action) {
                @for (k, v) in fields { input type="hidden" name=(k) value=(v); }
                (confirm_buttons(session, "Confirm"))
            }
        },
    )
    .into_response()
}

/// The outcome page: what was done, and what was refused with the CLI's message.
fn done(session: &Session, done: &[String], refused: &[String]) -> Response {
    let status = if refused.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    (
        status,
        layout(
            "Devices",
            Some(session),
            html! {
                @for d in done { p.done { (d) } }
                @for r in refused { p.error { (r) } }
                p { a href="/devices" { "Back to the devices" } }
            },
        ),
    )
        .into_response()
}

async fn add(
    State(console): State<Arc<Console>>,
    Admin(session): Admin,
    Posted(fields): Posted,
) -> Response {
    let period = match period_of(&fields) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let device = fields.get("device").trim().to_owned();
    if !fields.confirmed() {
        return confirm(
            &session,
            "/devices/add",
            html! { "Authorize " strong { (device) } " for " (period_words(period)) " from now?" },
            &[("device", device.clone()), ("period", period.to_string())],
        );
    }
    let now = jiff::Timestamp::now();
    match issue(&console, &session, async |i| {
        i.authorize(&device, period, false, now).await
    })
    .await
    {
        Ok(grant) => {
            ring(&console, vec![grant.serial.clone()]).await;
            done(
                &session,
                &[format!("Authorized {} for {}.", grant.serial, grant.period)],
                &[],
            )
        }
        Err(e) => done(&session, &[], &[format!("{e:#}")]),
    }
}

#[derive(Deserialize)]
struct Serial {
    serial: String,
}

async fn reauthorize_page(Admin(session): Admin, Query(q): Query<Serial>) -> Response {
    layout(
        "Reauthorize",
        Some(&session),
        html! {
            form method="post" action="/devices/reauthorize" {
                p { "Give " strong { (q.serial) } " a new period from now: "
                    (period_select())
                }
                input type="hidden" name="serial" value=(q.serial);
                (confirm_buttons(&session, "Reauthorize"))
            }
        },
    )
    .into_response()
}

async fn reauthorize(
    State(console): State<Arc<Console>>,
    Admin(session): Admin,
    Posted(fields): Posted,
) -> Response {
    let period = match period_of(&fields) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let serial = fields.get("serial").to_owned();
    if !fields.confirmed() {
        return confirm(
            &session,
            "/devices/reauthorize",
            html! { "Give " strong { (serial) } " a new period of " (period_words(period)) " from now?" },
            &[("serial", serial.clone()), ("period", period.to_string())],
        );
    }
    let now = jiff::Timestamp::now();
    match issue(&console, &session, async |i| {
        i.reauthorize(&serial, period, now).await
    })
    .await
    {
        Ok(grant) => {
            ring(&console, vec![grant.serial.clone()]).await;
            let until = grant
                .expires_at
                .map_or("without expiry".to_owned(), |t| format!("until {t}"));
            done(
                &session,
                &[format!("Reauthorized {} {until}.", grant.serial)],
                &[],
            )
        }
        Err(e) => done(&session, &[], &[format!("{e:#}")]),
    }
}

async fn unauthorize(
    State(console): State<Arc<Console>>,
    Admin(session): Admin,
    Posted(fields): Posted,
) -> Response {
    let serials = fields.all("serial");
    if serials.is_empty() {
        return done(&session, &[], &["Select at least one device.".to_owned()]);
    }
    if !fields.confirmed() {
        let carried: Vec<(&str, String)> = serials.iter().map(|s| ("serial", s.clone())).collect();
        return confirm(
            &session,
            "/devices/unauthorize",
            html! { "Withdraw the authorization of " strong { (serials.join(", ")) } "?" },
            &carried,
        );
    }
    let now = jiff::Timestamp::now();
    let outcome = issue(&console, &session, async |i| {
        let mut results = Vec::new();
        for s in &serials {
            results.push(i.unauthorize(s, now).await.map_err(|e| format!("{e:#}")));
        }
        Ok(results)
    })
    .await;
    let results = match outcome {
        Ok(r) => r,
        Err(e) => return done(&session, &[], &[format!("{e:#}")]),
    };
    let mut ok = Vec::new();
    let mut refused = Vec::new();
    let mut rung = Vec::new();
    for r in results {
        match r {
            Ok(rev) => {
                ok.push(format!(
                    "Unauthorized {} (sequence {}).",
                    rev.serial, rev.sequence
                ));
                rung.push(rev.serial);
            }
            Err(e) => refused.push(e),
        }
    }
    ring(&console, rung).await;
    done(&session, &ok, &refused)
}

/// Rings the devices' doorbells (if the portal has one) and reads their rows again for the
/// devices page.
async fn ring(console: &Arc<Console>, serials: Vec<pcap_protocol::Serial>) {
    futures::join!(
        console.store.ring(&serials),
        super::fleet::update(console, serials.clone())
    );
}
