//! RFC 9457 problem details with a stable `code`, and the one mapping from `AppError` to
//! status codes and log levels.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use app::AppError;

/// A problem+json answer.
#[derive(Debug)]
pub struct Problem {
    pub status: StatusCode,
    pub code: String,
    pub title: String,
    pub detail: String,
    pub extra: Map<String, Value>,
}

impl Problem {
    pub fn new(status: StatusCode, code: &str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_owned(),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            detail: detail.into(),
            extra: Map::new(),
        }
    }

    pub fn with(mut self, key: &str, value: Value) -> Self {
        self.extra.insert(key.to_owned(), value);
        self
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let mut body = Map::new();
        body.insert(
            "type".into(),
            json!(format!("https://modelreg.dev/problems/{}", self.code)),
        );
        body.insert("title".into(), json!(self.title));
        body.insert("status".into(), json!(self.status.as_u16()));
        body.insert("code".into(), json!(self.code));
        body.insert("detail".into(), json!(self.detail));
        body.extend(self.extra);
        let mut response = (self.status, Value::Object(body).to_string()).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        response
    }
}

impl From<AppError> for Problem {
    fn from(error: AppError) -> Self {
        match error {
            AppError::Invalid(problems) => {
                let first = problems.first();
                let code = first.map_or("body.invalid", |p| p.code);
                let detail = first.map_or_else(
                    || "the request is invalid".to_owned(),
                    |p| p.message.clone(),
                );
                let errors: Vec<Value> = problems
                    .iter()
                    .map(|p| json!({"field": p.field, "code": p.code, "detail": p.message}))
                    .collect();
                Problem::new(StatusCode::UNPROCESSABLE_ENTITY, code, detail)
                    .with("errors", Value::Array(errors))
            }
            AppError::Unauthorized(detail) => {
                Problem::new(StatusCode::UNAUTHORIZED, "auth.invalid_token", detail)
            }
            AppError::Forbidden(detail) => {
                Problem::new(StatusCode::FORBIDDEN, "auth.forbidden", detail)
            }
            AppError::NotFound { code, message } => {
                Problem::new(StatusCode::NOT_FOUND, code, message)
            }
            AppError::Conflict {
                code,
                message,
                current_version,
            } => {
                let problem = Problem::new(StatusCode::CONFLICT, code, message);
                match current_version {
                    Some(version) => problem.with("current_version", json!(version)),
                    None => problem,
                }
            }
            AppError::HasDependents { count, first } => Problem::new(
                StatusCode::CONFLICT,
                "model.has_dependents",
                format!("{count} active workflow(s) still reference this model, first {first:?}; they fail to generate LLM responses until repointed. Repeat with ?confirm=true to deactivate anyway"),
            )
            .with("count", json!(count))
            .with("first_dependent", json!(first)),
            AppError::Gone { code, message, at, by } => Problem::new(StatusCode::GONE, code, message)
                .with("deactivated_at", json!(at))
                .with("deactivated_by", json!(by))
                .with("hint", json!("repoint the workflow to an active model")),
            AppError::Unavailable(detail) => {
                tracing::warn!(%detail, "unavailable");
                Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "service.unavailable",
                    "a dependency is unavailable; retry shortly (a command may still have \
                     landed: retry it with the same Idempotency-Key to apply it once)",
                )
            }
            AppError::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                Problem::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "an internal error occurred; it has been logged",
                )
            }
        }
    }
}
