//! What every page is drawn with: the layout (the account, the navigation), the error pages,
//! and the small formats the pages share (times, periods, query strings).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

use super::session::Session;

/// A page: its title, the account's line and navigation when logged in, and `body`.
pub fn layout(title: &str, session: Option<&Session>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { (title) " · pcap-portal" }
                style { "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{padding:.2em .6em;border-bottom:1px solid #ddd;text-align:left}.error{color:#a00}" }
            }
            body {
                @if let Some(s) = session {
                    form method="post" action="/logout" {
                        "Signed in as " (s.user) " (" (s.role.as_str()) ") "
                        input type="hidden" name="csrf" value=(s.csrf);
                        button type="submit" { "Log out" }
                    }
                    nav {
                        a href="/devices" { "Devices" } " · "
                        @if s.role == crate::users::Role::Research { a href="/captures" { "Captures" } " · " }
                        a href="/audit" { "Audit" }
                    }
                }
                h1 { (title) }
                (body)
            }
        }
    }
}

/// The authorization periods, as the CLI's `--period` takes them, and in words.
const PERIODS: [(pcap_protocol::Period, &str); 3] = [
    (pcap_protocol::Period::OneMonth, "1 month"),
    (pcap_protocol::Period::ThreeMonths, "3 months"),
    (pcap_protocol::Period::Unlimited, "unlimited"),
];

/// A period in words: "3 months".
pub fn period_words(period: pcap_protocol::Period) -> &'static str {
    PERIODS
        .iter()
        .find(|(p, _)| *p == period)
        .map_or(period.as_str(), |(_, words)| words)
}

/// The choice of an authorization period.
pub fn period_select() -> Markup {
    html! {
        select name="period" {
            @for (period, words) in PERIODS { option value=(period.as_str()) { (words) } }
        }
    }
}

/// 400 with `why`.
pub fn bad_request(session: &Session, why: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        layout("Bad request", Some(session), html! { p.error { (why) } }),
    )
        .into_response()
}

/// 403 with `why`.
pub fn forbidden(why: &str) -> Response {
    (
        StatusCode::FORBIDDEN,
        layout("Forbidden", None, html! { p.error { (why) } }),
    )
        .into_response()
}

/// A time as the pages show it.
pub fn when(t: Option<jiff::Timestamp>) -> String {
    t.map_or("-".to_owned(), |t| {
        t.strftime("%Y-%m-%d %H:%M UTC").to_string()
    })
}

/// What a store read gives a page: its value, or the error page.
pub fn or_error_page<T>(session: &Session, read: anyhow::Result<T>) -> Result<T, Box<Response>> {
    read.map_err(|e| Box::new(error_page(session, &format!("{e:#}"))))
}

/// 502: the store could not be read, and why.
pub fn error_page(session: &Session, message: &str) -> Response {
    (
        StatusCode::BAD_GATEWAY,
        layout(
            "The store cannot be read",
            Some(session),
            html! { p.error { (message) } },
        ),
    )
        .into_response()
}

/// `text` for a query string.
pub fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
