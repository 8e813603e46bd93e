//! Errors of simulator operations, answered as Marathon-style JSON `{"message": …}` bodies (with
//! `details` for Marathon's validation errors).

use std::fmt;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// Why an operation on the simulated state failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SimError {
    /// 404: unknown app or task.
    NotFound(String),
    /// 400: malformed request.
    BadRequest(String),
    /// 409: the ID is already taken.
    Conflict(String),
    /// 415: a JSON body not sent as `application/json`.
    UnsupportedMediaType,
    /// 400 `Invalid JSON`: the body is not a JSON object.
    InvalidJson,
    /// 422 `Object is not valid`: the field at `path` (a JSON pointer) fails with Marathon's `error`
    /// code, e.g. `error.path.missing`.
    Invalid { path: String, error: String },
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
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::InvalidJson => StatusCode::BAD_REQUEST,
            Self::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        }
    }

    fn message(&self) -> &str {
        match self {
            Self::NotFound(m) | Self::BadRequest(m) | Self::Conflict(m) => m,
            Self::UnsupportedMediaType => "HTTP 415 Unsupported Media Type",
            Self::InvalidJson => "Invalid JSON",
            Self::Invalid { .. } => "Object is not valid",
        }
    }

    /// Marathon's `details`: which JSON path failed how.
    fn details(&self) -> Option<Value> {
        let (path, error) = match self {
            Self::InvalidJson => ("/", "error.expected.jsobject"),
            Self::Invalid { path, error } => (path.as_str(), error.as_str()),
            _ => return None,
        };
        Some(json!([{"path": path, "errors": [error]}]))
    }
}

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())?;
        match self {
            Self::Invalid { path, error } => write!(f, ": {path} {error}"),
            _ => Ok(()),
        }
    }
}

impl std::error::Error for SimError {}

impl IntoResponse for SimError {
    fn into_response(self) -> Response {
        let mut body = json!({"message": self.message()});
        if let Some(details) = self.details() {
            body["details"] = details;
        }
        (self.status(), Json(body)).into_response()
    }
}
