//! Errors of simulator operations, answered as Marathon-style JSON `{"message": …}` bodies.

use std::fmt;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Why an operation on the simulated state failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SimError {
    /// 404: unknown app or task.
    NotFound(String),
    /// 400: malformed request.
    BadRequest(String),
    /// 409: the ID is already taken.
    Conflict(String),
}

impl SimError {
    pub(crate) fn no_app(id: &str) -> Self {
        Self::NotFound(format!("App '{id}' does not exist"))
    }

    pub(crate) fn no_task(id: &str) -> Self {
        Self::NotFound(format!("Task '{id}' does not exist"))
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Conflict(_) => StatusCode::CONFLICT,
        }
    }

    fn message(&self) -> &str {
        match self {
            Self::NotFound(m) | Self::BadRequest(m) | Self::Conflict(m) => m,
        }
    }
}

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for SimError {}

impl IntoResponse for SimError {
    fn into_response(self) -> Response {
        (self.status(), Json(json!({"message": self.message()}))).into_response()
    }
}
