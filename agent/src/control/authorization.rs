//! `GET /v1/authorization`: the authorization state and the grant behind it.

use http::StatusCode;

use super::Api;
use super::response::{Reply, json_reply};

pub fn get(api: &Api) -> Reply {
    let status = api.auth.borrow().clone();
    json_reply(StatusCode::OK, &status)
}
