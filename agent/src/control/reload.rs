//! `POST /v1/reload`: re-read the config file. An invalid file is refused with every problem
//! listed, and the running config stays.

use http::StatusCode;
use tokio::sync::oneshot;

use super::api::{ErrorDetails, Reloaded};
use super::response::{ApiError, Reply, json_reply};
use super::{Api, Command};

pub async fn post(api: &Api, _body: &[u8]) -> Reply {
    let (reply, answer) = oneshot::channel();
    let unavailable = || ApiError::shutting_down().reply();
    if api.core.send(Command::Reload { reply }).await.is_err() {
        return unavailable();
    }
    match answer.await {
        Ok(Ok(report)) => json_reply(
            StatusCode::OK,
            &Reloaded {
                reloaded: true,
                report,
            },
        ),
        Ok(Err(problems)) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "config_invalid",
            format!(
                "the new config has {} problem(s); the running config stays",
                problems.len()
            ),
        )
        .with_details(ErrorDetails { problems })
        .reply(),
        Err(_) => unavailable(),
    }
}
