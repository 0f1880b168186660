//! The console's pages. Each handler extracts the session, calls what the CLI calls, and
//! renders; nothing here decides anything the CLI would not.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Form;
use axum::Router;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::html;
use serde::Deserialize;

use super::Console;
use super::auth::{Posted, Viewer, cookie, session};
use super::login::{Busy, FORM_COOKIE, FORM_LIFETIME};
use super::session::{COOKIE, SESSION_LIFETIME};
use super::view::{error_page, layout, period_select, urlencode, when};
use crate::devices::Row;

/// Rows on one page of the devices list.
const PAGE_ROWS: usize = 100;

type Shared = State<Arc<Console>>;

pub fn routes() -> Router<Arc<Console>> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/devices") }))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/devices", get(devices))
}

async fn login_page(State(console): Shared, headers: HeaderMap) -> Response {
    // A token still good (a reload) is kept, so two open login tabs both work.
    let token = cookie(&headers, FORM_COOKIE)
        .filter(|t| console.form_tokens.check(t, Some(t)))
        .unwrap_or_else(|| console.form_tokens.issue());
    login_form(&console, StatusCode::OK, &token, None)
}

/// The login page, with `token` in the form and in its cookie.
fn login_form(console: &Console, status: StatusCode, token: &str, error: Option<&str>) -> Response {
    let page = layout(
        "Log in",
        None,
        html! {
            @if let Some(e) = error { p.error { (e) } }
            form method="post" action="/login" {
                input type="hidden" name="token" value=(token);
                p { label { "User " input name="name" autocomplete="username" required; } }
                p { label { "Password " input name="password" type="password" autocomplete="current-password" required; } }
                button type="submit" { "Log in" }
            }
        },
    );
    let cookie = format!(
        "{FORM_COOKIE}={token}; Path=/login; HttpOnly; SameSite=Strict; Max-Age={}{}",
        FORM_LIFETIME.as_secs(),
        if console.tls { "; Secure" } else { "" }
    );
    (status, [(header::SET_COOKIE, cookie)], page).into_response()
}

#[derive(Deserialize)]
struct Login {
    name: String,
    password: String,
    /// The login form's token.
    #[serde(default)]
    token: String,
}

async fn login(
    State(console): Shared,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<Login>,
) -> Response {
    // A login posted from elsewhere than this console's own form (login CSRF) is refused.
    if !console
        .form_tokens
        .check(&form.token, cookie(&headers, FORM_COOKIE).as_deref())
    {
        let fresh = console.form_tokens.issue();
        return login_form(
            &console,
            StatusCode::FORBIDDEN,
            &fresh,
            Some("The login form had expired or was not this console's: log in again."),
        );
    }
    let wrong = |console: &Console| {
        login_form(
            console,
            StatusCode::UNAUTHORIZED,
            &form.token,
            Some("Wrong user name or password."),
        )
    };
    // A name no account can have is wrong at once: nothing to hash, nothing to remember.
    if !crate::users::is_valid_name(&form.name) {
        return wrong(&console);
    }
    // Counted before the hash runs: a burst of guesses gets only the free ones.
    let attempt = match console
        .throttle
        .admit(&form.name, peer.ip(), Instant::now())
    {
        Ok(a) => a,
        Err(wait) => {
            let secs = wait.as_secs().max(1);
            let mut page = login_form(
                &console,
                StatusCode::TOO_MANY_REQUESTS,
                &form.token,
                Some(&format!("Too many failed logins: try again in {secs} s.")),
            );
            if let Ok(v) = secs.to_string().parse() {
                page.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return page;
        }
    };
    let users = console.users.current();
    let (name, password) = (form.name.clone(), form.password);
    let checked = console
        .hashers
        .run(move |memory| {
            users
                .verify(&name, &password, memory)
                .map(|u| (u.role, u.stamp()))
        })
        .await;
    let (role, stamp) = match checked {
        Ok(Some(found)) => found,
        Ok(None) => return wrong(&console),
        Err(Busy) => {
            console.throttle.not_checked(attempt);
            let mut page = login_form(
                &console,
                StatusCode::SERVICE_UNAVAILABLE,
                &form.token,
                Some("The console is busy checking other logins: try again in a moment."),
            );
            page.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return page;
        }
    };
    console.throttle.succeeded(attempt);
    let id = console.sessions.start(&form.name, role, stamp);
    let cookie = format!(
        "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        SESSION_LIFETIME.as_secs(),
        if console.tls { "; Secure" } else { "" }
    );
    ([(header::SET_COOKIE, cookie)], Redirect::to("/devices")).into_response()
}

async fn logout(State(console): Shared, headers: HeaderMap, Posted(_): Posted) -> Response {
    if let Some((id, _)) = session(&console, &headers) {
        console.sessions.end(&id);
    }
    let cookie = format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    ([(header::SET_COOKIE, cookie)], Redirect::to("/login")).into_response()
}

#[derive(Deserialize, Default)]
struct DevicesQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    page: usize,
    #[serde(default)]
    sort: Sort,
    #[serde(default)]
    desc: bool,
}

/// The columns the devices page sorts by.
#[derive(Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum Sort {
    #[default]
    Serial,
    Name,
    Agent,
    Seen,
    State,
    Expires,
}

impl Sort {
    fn as_str(self) -> &'static str {
        match self {
            Sort::Serial => "serial",
            Sort::Name => "name",
            Sort::Agent => "agent",
            Sort::Seen => "seen",
            Sort::State => "state",
            Sort::Expires => "expires",
        }
    }

    fn order(self, a: &Row, b: &Row) -> std::cmp::Ordering {
        let by = match self {
            Sort::Serial => std::cmp::Ordering::Equal,
            Sort::Name => a.name.cmp(&b.name),
            Sort::Agent => a.agent_version.cmp(&b.agent_version),
            Sort::Seen => a.last_seen.cmp(&b.last_seen),
            Sort::State => a.state.cmp(&b.state),
            Sort::Expires => a.expires_at.cmp(&b.expires_at),
        };
        by.then_with(|| a.serial.cmp(&b.serial))
    }
}

async fn devices(
    State(console): Shared,
    Viewer(session): Viewer,
    Query(query): Query<DevicesQuery>,
) -> Response {
    let snapshot = console.fleet.snapshot().await;
    if snapshot.listed_at.is_none()
        && let Some(e) = &snapshot.error
    {
        return error_page(&session, e);
    }
    let needle = query.q.to_lowercase();
    let mut matching: Vec<&Row> = snapshot
        .rows
        .iter()
        .filter(|r| {
            needle.is_empty()
                || r.serial.to_lowercase().contains(&needle)
                || r.name
                    .as_deref()
                    .unwrap_or("")
                    .to_lowercase()
                    .contains(&needle)
                || r.state.contains(&needle)
        })
        .collect();
    matching.sort_by(|a, b| {
        let o = query.sort.order(a, b);
        if query.desc { o.reverse() } else { o }
    });
    let pages = matching.len().div_ceil(PAGE_ROWS).max(1);
    let page = query.page.min(pages - 1);
    let shown = matching.iter().skip(page * PAGE_ROWS).take(PAGE_ROWS);
    let admin = session.role.may_authorize() && console.key.is_some();
    let link = |sort: Sort, desc: bool, page: usize| {
        format!(
            "/devices?q={}&sort={}&desc={desc}&page={page}",
            urlencode(&query.q),
            sort.as_str()
        )
    };
    let header = |label: &str, sort: Sort| {
        let desc = query.sort == sort && !query.desc;
        let mark = match (query.sort == sort, query.desc) {
            (true, false) => " ▲",
            (true, true) => " ▼",
            _ => "",
        };
        html! { th { a href=(link(sort, desc, 0)) { (label) (mark) } } }
    };
    layout(
        "Devices",
        Some(&session),
        html! {
            form method="get" action="/devices" {
                input name="q" value=(query.q) placeholder="serial, name or state";
                input type="hidden" name="sort" value=(query.sort.as_str());
                input type="hidden" name="desc" value=(query.desc);
                button type="submit" { "Filter" }
            }
            @if admin {
                form #add method="post" action="/devices/add" {
                    "Add a device: "
                    input name="device" placeholder="SERIAL or SERIAL NAME" required;
                    " for "
                    (period_select())
                    input type="hidden" name="csrf" value=(session.csrf);
                    " "
                    button type="submit" { "Add" }
                }
            }
            p {
                (matching.len()) " device(s), page " (page + 1) " of " (pages)
                @if let Some(t) = snapshot.listed_at { " · listed " (when(Some(t))) }
                @if let Some(e) = &snapshot.error { span.error { " · the last listing failed: " (e) } }
            }
            form method="post" action="/devices/unauthorize" {
            input type="hidden" name="csrf" value=(session.csrf);
            table #devices {
                thead { tr {
                    @if admin { th {} }
                    (header("Serial", Sort::Serial)) (header("Name", Sort::Name))
                    (header("Agent", Sort::Agent)) (header("Last seen", Sort::Seen))
                    (header("State", Sort::State)) th { "Period" } th { "From" }
                    (header("Expires", Sort::Expires))
                    @if admin { th {} }
                } }
                tbody {
                    @for r in shown {
                        tr {
                            @if admin { td { input type="checkbox" name="serial" value=(r.serial); } }
                            td { a href=(format!("/devices/{}", urlencode(&r.serial))) { (r.serial) } }
                            td { (r.name.as_deref().unwrap_or("-")) }
                            td { (r.agent_version.as_deref().unwrap_or("-")) }
                            td { (when(r.last_seen)) }
                            td.state { (crate::devices::state_text(r)) }
                            td { (r.period.map_or("-", pcap_protocol::Period::as_str)) }
                            td { (when(r.not_before)) }
                            td.expires { (when(r.expires_at)) }
                            @if admin {
                                td { a href=(format!("/devices/reauthorize?serial={}", urlencode(&r.serial))) { "Reauthorize" } }
                            }
                        }
                    }
                }
            }
            @if admin { button #unauthorize type="submit" { "Unauthorize selected" } }
            }
            p {
                @if page > 0 { a href=(link(query.sort, query.desc, page - 1)) { "Previous" } " " }
                @if page + 1 < pages { a href=(link(query.sort, query.desc, page + 1)) { "Next" } }
            }
        },
    )
    .into_response()
}
