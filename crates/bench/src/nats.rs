//! The bench's own `nats-server -js` on a free loopback port with a temp store dir, killed on
//! drop. Never the machine's shared server on 4222.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

pub struct NatsServer {
    child: Child,
    port: u16,
    store: tempfile::TempDir,
}

impl NatsServer {
    /// Starts `nats-server -js` and waits until JetStream answers. A missing binary is an
    /// error, never a silent skip: a bench without its baseline measures nothing.
    pub async fn start() -> anyhow::Result<Self> {
        let store = tempfile::Builder::new()
            .prefix("modelreg-bench-nats-")
            .tempdir()
            .context("cannot create the nats-server store dir")?;
        let port = free_port()?;
        let child = Command::new("nats-server")
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(store.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start nats-server: it must be on PATH (Debian package nats-server)")?;
        let mut server = Self { child, port, store };
        server.wait_ready().await?;
        Ok(server)
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn store_dir(&self) -> &std::path::Path {
        self.store.path()
    }

    /// Polls until the port accepts and JetStream answers an account query, with a deadline.
    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("nats-server exited at start with {status}");
            }
            if let Ok(client) = async_nats::connect(self.url()).await
                && jetstream_answers(&client).await
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("nats-server did not become ready on port {}", self.port);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// True when JetStream answers its account-info request without an error. The raw request
/// is on purpose: async-nats 0.51's `query_account` expects fields nats-server 2.9 does not
/// send (`reserved_memory`), so it fails on a healthy 2.9 server.
async fn jetstream_answers(client: &async_nats::Client) -> bool {
    match client.request("$JS.API.INFO", "".into()).await {
        Ok(reply) => {
            let text = String::from_utf8_lossy(&reply.payload);
            text.contains("\"type\":\"io.nats.jetstream.api.v1.account_info_response\"")
                && !text.contains("\"error\"")
        }
        Err(_) => false,
    }
}

/// A port nobody listens on right now: bind port 0, read it, let it go.
fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("cannot bind a loopback port")?;
    Ok(listener.local_addr()?.port())
}
