//! `GET /metrics`: Prometheus text format.

use http::StatusCode;

use super::Api;
use super::response::{Reply, text_reply};

pub fn get(api: &Api) -> Reply {
    api.metrics.observe_authorization(&api.auth.borrow());
    api.metrics.observe_spool(&api.spool);
    text_reply(
        StatusCode::OK,
        "application/openmetrics-text; version=1.0.0; charset=utf-8",
        api.metrics.encode(),
    )
}
