//! Sign-in and sessions: one-time sign-in codes, session cookies, CSRF tokens, and the
//! extractor that turns a session cookie into the caller's context.
//!
//! A session holds the API token it was opened with and authenticates it again on every
//! request through `app::orgs::authenticate`, so a revoked token ends its sessions and the
//! role is always the token's. Sessions live in this process's memory only: a restart signs
//! everyone out.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use secrets::Secret;

use app::{Ctx, Principal, Registry};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "mr_session";
/// The sign-in form's own CSRF cookie (before there is a session).
pub const SIGN_IN_COOKIE: &str = "mr_sign_in";

/// How long a sign-in code printed at start stays usable.
const CODE_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);
/// A session ends at the latest this long after it began, however busy.
const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);
/// The most sessions kept at once; the least recently used goes first.
const MAX_SESSIONS: usize = 10_000;

struct Session {
    token: Arc<Secret>,
    csrf: String,
    began: Instant,
    last_seen: Instant,
}

struct Code {
    token: Secret,
    issued: Instant,
}

/// The console's state: open sessions and unused sign-in codes, in memory.
pub(crate) struct Sessions {
    sessions: Mutex<HashMap<String, Session>>,
    codes: Mutex<HashMap<String, Code>>,
    idle: Duration,
    secure: bool,
}

impl Sessions {
    pub(crate) fn new(idle: Duration, secure: bool) -> Self {
        Self {
            sessions: Mutex::default(),
            codes: Mutex::default(),
            idle,
            secure,
        }
    }

    /// A code that signs in once as `token`'s holder.
    pub(crate) fn issue_code(&self, token: Secret) -> String {
        let code = random_hex();
        if let Ok(mut codes) = self.codes.lock() {
            codes.retain(|_, code| code.issued.elapsed() < CODE_LIFETIME);
            codes.insert(
                code.clone(),
                Code {
                    token,
                    issued: Instant::now(),
                },
            );
        }
        code
    }

    /// The token behind `code`, which stops working now; `None` when it never worked, was
    /// used, or expired.
    pub(crate) fn redeem_code(&self, code: &str) -> Option<Secret> {
        let mut codes = self.codes.lock().ok()?;
        let found = codes.remove(code)?;
        (found.issued.elapsed() < CODE_LIFETIME).then_some(found.token)
    }

    /// Opens a session for `token` (already authenticated); its id, for the cookie.
    pub(crate) fn open(&self, token: Secret) -> String {
        let id = random_hex();
        let now = Instant::now();
        if let Ok(mut sessions) = self.sessions.lock() {
            sessions.retain(|_, s| alive(s, self.idle, now));
            if sessions.len() >= MAX_SESSIONS
                && let Some(oldest) = sessions
                    .iter()
                    .min_by_key(|(_, s)| s.last_seen)
                    .map(|(id, _)| id.clone())
            {
                sessions.remove(&oldest);
            }
            sessions.insert(
                id.clone(),
                Session {
                    token: Arc::new(token),
                    csrf: random_hex(),
                    began: now,
                    last_seen: now,
                },
            );
        }
        id
    }

    pub(crate) fn close(&self, id: &str) {
        if let Ok(mut sessions) = self.sessions.lock() {
            sessions.remove(id);
        }
    }

    /// The session's token and CSRF token, marking it used now; `None` when unknown or
    /// expired (and then forgotten).
    fn touch(&self, id: &str) -> Option<(Arc<Secret>, String)> {
        let mut sessions = self.sessions.lock().ok()?;
        let now = Instant::now();
        let session = sessions.get_mut(id)?;
        if !alive(session, self.idle, now) {
            sessions.remove(id);
            return None;
        }
        session.last_seen = now;
        Some((Arc::clone(&session.token), session.csrf.clone()))
    }

    /// `Set-Cookie` for a new session: HttpOnly, SameSite=Strict, Secure under TLS.
    pub(crate) fn session_cookie(&self, id: &str, headers: &HeaderMap) -> HeaderValue {
        cookie(SESSION_COOKIE, id, "/", None, self.secure_for(headers))
    }

    /// `Set-Cookie` that ends the session cookie.
    pub(crate) fn clear_session_cookie(&self, headers: &HeaderMap) -> HeaderValue {
        cookie(SESSION_COOKIE, "", "/", Some(0), self.secure_for(headers))
    }

    /// `Set-Cookie` for the sign-in form's CSRF value.
    pub(crate) fn sign_in_cookie(&self, value: &str, headers: &HeaderMap) -> HeaderValue {
        cookie(
            SIGN_IN_COOKIE,
            value,
            "/sign-in",
            Some(600),
            self.secure_for(headers),
        )
    }

    /// Secure when the console is served over TLS, or a TLS-terminating proxy says the
    /// client spoke HTTPS (a client that lies only loses its own cookie over plain HTTP):
    /// `X-Forwarded-Proto: https` or RFC 7239's `Forwarded: proto=https`. Proxies in a chain
    /// append theirs, so the first value, the client's, decides.
    fn secure_for(&self, headers: &HeaderMap) -> bool {
        let first = |name| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next())
                .map(str::trim)
        };
        let https = |v: &str| v.trim_matches('"').eq_ignore_ascii_case("https");
        self.secure
            || first("x-forwarded-proto").is_some_and(https)
            || first("forwarded").is_some_and(|element| {
                element.split(';').any(|pair| {
                    pair.split_once('=').is_some_and(|(name, value)| {
                        name.trim().eq_ignore_ascii_case("proto") && https(value.trim())
                    })
                })
            })
    }
}

fn alive(session: &Session, idle: Duration, now: Instant) -> bool {
    now.duration_since(session.last_seen) < idle
        && now.duration_since(session.began) < SESSION_LIFETIME
}

fn cookie(name: &str, value: &str, path: &str, max_age: Option<u64>, secure: bool) -> HeaderValue {
    let mut text = format!("{name}={value}; Path={path}; HttpOnly; SameSite=Strict");
    if let Some(age) = max_age {
        text.push_str(&format!("; Max-Age={age}"));
    }
    if secure {
        text.push_str("; Secure");
    }
    // Names, hex values and fixed words: always a valid header value.
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// 32 random bytes from the operating system, as hex.
pub(crate) fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
    hex::encode(bytes)
}

/// A cookie's value from the request's `Cookie` headers.
pub(crate) fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// Equal strings, compared without an early exit.
pub(crate) fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// A signed-in caller: the principal its session's token names, and the session's CSRF
/// token for the forms the page carries.
pub(crate) struct SignedIn {
    pub(crate) principal: Principal,
    pub(crate) csrf: String,
    pub(crate) session: String,
    /// The TCP peer the server saw, for a form that sends a command: recorded with it, as
    /// the JSON API records its callers'.
    peer: Option<std::net::SocketAddr>,
}

impl SignedIn {
    /// The context of a read.
    pub(crate) fn read(&self) -> Ctx {
        Ctx::read(self.principal.clone())
    }

    /// The context of a command sent as a form to `path`, after its CSRF token is checked.
    pub(crate) fn command(&self, path: &str, csrf: Option<&str>) -> Result<Ctx, Box<Response>> {
        self.command_once(path, csrf, None)
    }

    /// [`Self::command`] for a form that creates something, carrying the random
    /// `submission` it was rendered with ([`crate::layout::submission_field`]) as its
    /// idempotency key: the same form sent twice (a double click, a reload of the answer) is
    /// one command, answered as the first time.
    pub(crate) fn command_once(
        &self,
        path: &str,
        csrf: Option<&str>,
        submission: Option<&str>,
    ) -> Result<Ctx, Box<Response>> {
        if !csrf.is_some_and(|sent| same(sent, &self.csrf)) {
            return Err(Box::new(crate::layout::problem_page(
                Some(self),
                &api::Problem::new(
                    403,
                    "console.csrf",
                    "the form was missing its anti-forgery token or it did not match this session; reload the page and try again",
                ),
            )));
        }
        let key = app::idempotency_key(submission.filter(|s| !s.is_empty())).map_err(|_| {
            Box::new(crate::layout::problem_page(
                Some(self),
                &api::Problem::new(
                    400,
                    "console.submission_invalid",
                    "the form's hidden submission id is not one this console makes; reload the page and try again",
                ),
            ))
        })?;
        let ctx = Ctx::command(self.principal.clone(), "POST", path, key.as_ref(), None);
        Ok(match self.peer {
            Some(peer) => ctx.from_address(peer),
            None => ctx,
        })
    }

    pub(crate) fn is_admin(&self) -> bool {
        self.principal.role() == app::Role::Admin
    }
}

impl FromRequestParts<Arc<Registry>> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        registry: &Arc<Registry>,
    ) -> Result<Self, Response> {
        let sessions = parts
            .extensions
            .get::<Arc<crate::Console>>()
            .map(|console| Arc::clone(&console.sessions))
            .ok_or_else(|| Redirect::to("/sign-in").into_response())?;
        // htmx follows a redirect inside the page; it is told to load the sign-in page whole.
        let partial = parts.headers.contains_key("hx-request");
        let sign_in = move || {
            if partial {
                return (
                    axum::http::StatusCode::UNAUTHORIZED,
                    [("hx-redirect", "/sign-in")],
                )
                    .into_response();
            }
            Redirect::to("/sign-in").into_response()
        };
        let id = cookie_value(&parts.headers, SESSION_COOKIE)
            .filter(|id| !id.is_empty())
            .ok_or_else(sign_in)?
            .to_owned();
        let (token, csrf) = sessions.touch(&id).ok_or_else(sign_in)?;
        let peer = parts
            .extensions
            .get::<app::ClientAddr>()
            .map(|address| address.0);
        match app::orgs::authenticate(registry, token.expose_secret()) {
            Ok(principal) => Ok(Self {
                principal,
                csrf,
                session: id,
                peer,
            }),
            Err(_) => {
                // Revoked since: the session ends with its token.
                sessions.close(&id);
                Err(sign_in())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_signs_in_once() {
        let sessions = Sessions::new(Duration::from_secs(60), false);
        let code = sessions.issue_code(Secret::new("mr_token".into()));
        let token = sessions.redeem_code(&code).expect("the first use");
        assert_eq!(token.expose_secret(), "mr_token");
        assert!(sessions.redeem_code(&code).is_none(), "the second use");
        assert!(sessions.redeem_code("not-a-code").is_none());
    }

    #[test]
    fn a_session_ends_when_idle_too_long_or_closed() {
        let lasting = Sessions::new(Duration::from_secs(60), false);
        let id = lasting.open(Secret::new("mr_token".into()));
        let (token, csrf) = lasting.touch(&id).expect("alive");
        assert_eq!(token.expose_secret(), "mr_token");
        assert_eq!(csrf.len(), 64);
        lasting.close(&id);
        assert!(lasting.touch(&id).is_none(), "closed");

        // An idle limit of zero: expired at the next request.
        let idle = Sessions::new(Duration::ZERO, false);
        let id = idle.open(Secret::new("mr_token".into()));
        assert!(idle.touch(&id).is_none(), "idle too long");
    }

    #[test]
    fn cookies_are_http_only_strict_and_secure_under_tls() {
        let plain = Sessions::new(Duration::from_secs(60), false);
        let headers = HeaderMap::new();
        let cookie = plain.session_cookie("abc", &headers);
        assert_eq!(
            cookie.to_str().expect("text"),
            "mr_session=abc; Path=/; HttpOnly; SameSite=Strict"
        );
        let tls = Sessions::new(Duration::from_secs(60), true);
        assert!(
            tls.session_cookie("abc", &headers)
                .to_str()
                .expect("text")
                .ends_with("; Secure")
        );
        let cleared = plain.clear_session_cookie(&headers);
        assert!(cleared.to_str().expect("text").contains("Max-Age=0"));

        // A TLS-terminating proxy's word, in the forms proxies write it.
        for (name, value, secure) in [
            ("x-forwarded-proto", "https", true),
            ("x-forwarded-proto", "HTTPS", true),
            ("x-forwarded-proto", "https, http", true),
            ("x-forwarded-proto", "http, https", false),
            ("x-forwarded-proto", "http", false),
            (
                "forwarded",
                "for=192.0.2.60;proto=https;by=203.0.113.43",
                true,
            ),
            (
                "forwarded",
                "for=192.0.2.43;Proto=\"https\", for=198.51.100.17;proto=http",
                true,
            ),
            (
                "forwarded",
                "for=192.0.2.43;proto=http, for=198.51.100.17;proto=https",
                false,
            ),
            ("forwarded", "for=192.0.2.60;proto=http", false),
            ("forwarded", "for=\"_proto=https\"", false),
        ] {
            let mut proxied = HeaderMap::new();
            proxied.insert(name, HeaderValue::from_static(value));
            let cookie = plain.session_cookie("abc", &proxied);
            assert_eq!(
                cookie.to_str().expect("text").ends_with("; Secure"),
                secure,
                "{name}: {value}"
            );
        }
    }

    #[test]
    fn cookie_values_are_read_by_name() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; mr_session=xyz; b=2"),
        );
        assert_eq!(cookie_value(&headers, SESSION_COOKIE), Some("xyz"));
        assert_eq!(cookie_value(&headers, "missing"), None);
        assert!(same("abc", "abc") && !same("abc", "abd") && !same("abc", "ab"));
    }
}
