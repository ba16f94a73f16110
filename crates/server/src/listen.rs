//! The accept loop: axum's router on hyper's HTTP/1 connections, with a header-read timeout
//! (`axum::serve` has none, so an idle or half-sent connection stayed open for ever and a few
//! hundred of them exhausted the file descriptors), hyper's own rejections answered as
//! problem+json (`rejections`) and a graceful shutdown.

mod rejections;

use std::future::Future;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;

pub(crate) use app::ClientAddr;

/// How long a connection may take to send a request's headers, from its first byte or, on
/// a kept-alive connection, while it idles before the next request; past it the connection
/// is closed.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    pub header_read: Duration,
}

impl Default for Timeouts {
    /// 30 s, as reverse proxies commonly allow.
    fn default() -> Self {
        Self {
            header_read: Duration::from_secs(30),
        }
    }
}

pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    timeouts: Timeouts,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(timeouts.header_read)
        .keep_alive(true);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, say: wait a little instead of spinning.
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(tower::ServiceExt::map_request(
            app.clone(),
            move |mut request: axum::extract::Request<hyper::body::Incoming>| {
                // Commands record it (`auth::Caller`, the console's forms); reads, resolve
                // among them, do not.
                if !crate::auth::is_read(request.method()) {
                    request.extensions_mut().insert(ClientAddr(peer));
                }
                request
            },
        ));
        let connection = graceful.watch(http.serve_connection(
            TokioIo::new(rejections::ProblemAnswers::new(stream)),
            service,
        ));
        tokio::spawn(async move {
            // A client that goes away mid-request is not the server's error.
            let _ = connection.await;
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}
