//! A private `nats-server -js` with its own store dir, killed on drop. Never the machine's
//! shared server on 4222.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct NatsServer {
    child: Child,
    pub port: u16,
    pub store: tempfile::TempDir,
}

impl NatsServer {
    /// Starts a server and waits until it accepts connections. Panics (fails the test) when
    /// `nats-server` is not on PATH: a missing service is a failure, never a skip.
    pub async fn start() -> Self {
        let store = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let child = spawn(port, &store.path().to_path_buf());
        let server = Self { child, port, store };
        server.wait_ready().await;
        server
    }

    /// Stops the server (as a crash would) and starts it again on the same port and store,
    /// as an operator's restart does; clients see the connection drop and come back.
    pub async fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = spawn(self.port, &self.store.path().to_path_buf());
        self.wait_ready().await;
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn store_dir(&self) -> PathBuf {
        self.store.path().to_path_buf()
    }

    async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "nats-server did not start on port {}",
                self.port
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn spawn(port: u16, store: &PathBuf) -> Child {
    Command::new("nats-server")
        .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
        .arg(store)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nats-server must be on PATH (Debian package nats-server); .ci/run installs it")
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}
