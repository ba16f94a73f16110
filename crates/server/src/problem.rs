//! RFC 9457 problem details over HTTP: the wire's `api::Problem` as an
//! `application/problem+json` answer. Which status and code an error gets is decided once, in
//! `app::AppError::to_problem`; problems with a request's shape are made where it is read.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use app::AppError;

/// A problem+json answer.
#[derive(Debug)]
pub struct Problem(pub Box<api::Problem>);

impl Problem {
    pub fn new(status: StatusCode, code: &str, detail: impl Into<String>) -> Self {
        Self(Box::new(api::Problem::new(status.as_u16(), code, detail)))
    }

    pub fn code(&self) -> &str {
        &self.0.code
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&*self.0).unwrap_or_default();
        let mut response = (status, body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        response
    }
}

impl From<AppError> for Problem {
    fn from(error: AppError) -> Self {
        Self(Box::new(error.to_problem()))
    }
}
