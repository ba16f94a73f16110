//! Test support: a private nats-server per test, a typed client for the API, an in-process
//! registry on either backend, and log capture for the secret canary.

pub mod fake_provider;
pub mod logs;
pub mod nats;
pub mod registry;

pub use nats::NatsServer;
pub use registry::{Backend, Reply, TestApp};

/// Serves `app` on a free loopback port until the returned task is aborted or dropped with
/// the runtime; the base URL (`http://127.0.0.1:<port>`) and the task.
pub async fn serve_local(app: axum::Router) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (base, task)
}
