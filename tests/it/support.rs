//! Test support: a typed client for the API, an in-process registry on either backend, and
//! log capture for the secret canary. The private nats-server per test is `testkit`'s.

pub(crate) mod fake_provider;
pub(crate) mod logs;
pub(crate) mod registry;

pub(crate) use registry::{Backend, Reply, TestApp};
pub(crate) use testkit::NatsServer;

/// Serves `app` on a free loopback port until the returned task is aborted or dropped with
/// the runtime; the base URL (`http://127.0.0.1:<port>`) and the task.
pub(crate) async fn serve_local(app: axum::Router) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (base, task)
}

/// Serves the registry's API (as `modelreg serve` does, without its console) on a free
/// loopback port: its base URL and the serving task.
pub(crate) async fn serve_api(
    registry: &std::sync::Arc<app::Registry>,
) -> (String, tokio::task::JoinHandle<std::io::Result<()>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let task = tokio::spawn(server::serve(
        listener,
        std::sync::Arc::clone(registry),
        std::future::pending(),
    ));
    (base, task)
}

/// A loopback port nobody listens on right now, for a process that takes its port on the
/// command line: bind port 0, read it, let it go.
pub(crate) fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// The id and secret parts of a token `mr_<id>_<secret>` (the secret may hold `_` too).
pub(crate) fn parts_of(token: &str) -> (&str, &str) {
    token
        .strip_prefix("mr_")
        .and_then(|rest| rest.split_once('_'))
        .expect("a token")
}

/// The id part of a token.
pub(crate) fn id_of(token: &str) -> String {
    parts_of(token).0.to_owned()
}
