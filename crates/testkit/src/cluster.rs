//! A JetStream cluster of nats-server processes on loopback, each node with its own ports,
//! store and config file, killable (SIGKILL, as a crash) and started again on the same ports
//! and store, as an operator's restart would. Every node is killed on drop.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use crate::{POLL_EVERY, START_DEADLINE, open_log, started};

/// A cluster of `nats-server` nodes named `n1`, `n2`, … on `127.0.0.1`.
pub struct NatsCluster {
    program: PathBuf,
    dir: tempfile::TempDir,
    nodes: Vec<Node>,
}

struct Node {
    name: String,
    port: u16,
    cluster_port: u16,
    child: Option<Child>,
}

impl NatsCluster {
    /// Starts `size` nodes of `program` routed to each other and returns once every node
    /// accepts client connections. JetStream elects its meta leader a moment later: a first
    /// stream creation should retry with a deadline.
    ///
    /// Ports are picked free by binding port 0 and released just before the nodes start (a
    /// route list needs every node's port up front; `-p -1` cannot give that).
    pub fn start(program: &Path, size: usize) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("testkit-cluster-")
            .tempdir()
            .unwrap_or_else(|error| panic!("cannot create a temp dir for the cluster: {error}"));
        let listeners: Vec<(TcpListener, TcpListener)> = (0..size)
            .map(|_| (free_listener(), free_listener()))
            .collect();
        let nodes: Vec<Node> = listeners
            .iter()
            .enumerate()
            .map(|(n, (client, cluster))| Node {
                name: format!("n{}", n + 1),
                port: port_of(client),
                cluster_port: port_of(cluster),
                child: None,
            })
            .collect();
        drop(listeners);
        let mut cluster = Self {
            program: program.to_path_buf(),
            dir,
            nodes,
        };
        for n in 0..size {
            cluster.write_config(n);
        }
        for n in 0..size {
            cluster.spawn(n);
        }
        for n in 0..size {
            cluster.wait_until_accepting(n);
        }
        cluster
    }

    /// The number of nodes.
    pub fn size(&self) -> usize {
        self.nodes.len()
    }

    /// Every node's URL, comma-separated, as `nats_url` takes them.
    pub fn urls(&self) -> String {
        (0..self.nodes.len())
            .map(|n| self.url(n))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// `nats://127.0.0.1:<port>` of node `n` (0-based), the same across restarts.
    pub fn url(&self, n: usize) -> String {
        format!("nats://127.0.0.1:{}", self.nodes[n].port)
    }

    /// The `server_name` of node `n`, as JetStream names leaders and peers.
    pub fn name(&self, n: usize) -> &str {
        &self.nodes[n].name
    }

    /// The node called `name`.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|node| node.name == name)
    }

    /// True while node `n` runs.
    pub fn is_running(&mut self, n: usize) -> bool {
        match self.nodes[n].child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Kills node `n` (SIGKILL, as a crash would) and reaps it.
    pub fn kill(&mut self, n: usize) {
        if let Some(mut child) = self.nodes[n].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts node `n` again on its ports and store; returns once it accepts connections.
    pub fn restart(&mut self, n: usize) {
        self.kill(n);
        self.spawn(n);
        self.wait_until_accepting(n);
    }

    /// Node `n`'s JetStream store directory.
    pub fn store_dir(&self, n: usize) -> PathBuf {
        self.dir.path().join(&self.nodes[n].name).join("store")
    }

    /// Node `n`'s output so far, every start appended, for failure messages.
    pub fn log(&self, n: usize) -> String {
        std::fs::read_to_string(self.log_path(n)).unwrap_or_default()
    }

    fn log_path(&self, n: usize) -> PathBuf {
        self.dir
            .path()
            .join(&self.nodes[n].name)
            .join("nats-server.log")
    }

    fn config_path(&self, n: usize) -> PathBuf {
        self.dir.path().join(&self.nodes[n].name).join("node.conf")
    }

    fn write_config(&self, n: usize) {
        let node = &self.nodes[n];
        let node_dir = self.dir.path().join(&node.name);
        std::fs::create_dir_all(self.store_dir(n))
            .unwrap_or_else(|error| panic!("cannot create {}: {error}", node_dir.display()));
        let routes: Vec<String> = self
            .nodes
            .iter()
            .filter(|other| other.name != node.name)
            .map(|other| format!("    \"nats-route://127.0.0.1:{}\"", other.cluster_port))
            .collect();
        let config = format!(
            "server_name: \"{name}\"\nlisten: \"127.0.0.1:{port}\"\njetstream {{\n  store_dir: \"{store}\"\n}}\ncluster {{\n  name: \"testkit\"\n  listen: \"127.0.0.1:{cluster_port}\"\n  routes: [\n{routes}\n  ]\n}}\n",
            name = node.name,
            port = node.port,
            store = self.store_dir(n).display(),
            cluster_port = node.cluster_port,
            routes = routes.join("\n"),
        );
        std::fs::write(self.config_path(n), config)
            .unwrap_or_else(|error| panic!("cannot write the config of {}: {error}", node.name));
    }

    fn spawn(&mut self, n: usize) {
        let log = open_log(&self.log_path(n));
        let spawned = Command::new(&self.program)
            .arg("-c")
            .arg(self.config_path(n))
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_or_else(|_| Stdio::null(), Stdio::from))
            .stderr(log)
            .spawn();
        self.nodes[n].child = Some(started(&self.program, spawned));
    }

    fn wait_until_accepting(&mut self, n: usize) {
        let deadline = Instant::now() + START_DEADLINE;
        let port = self.nodes[n].port;
        loop {
            if !self.is_running(n) {
                panic!(
                    "nats-server {} exited during its start; its output:\n{}",
                    self.nodes[n].name,
                    self.log(n)
                );
            }
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "nats-server {} did not accept connections within {START_DEADLINE:?}; its output:\n{}",
                    self.nodes[n].name,
                    self.log(n)
                );
            }
            std::thread::sleep(POLL_EVERY);
        }
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for n in 0..self.nodes.len() {
            self.kill(n);
        }
    }
}

fn free_listener() -> TcpListener {
    TcpListener::bind("127.0.0.1:0")
        .unwrap_or_else(|error| panic!("cannot bind a loopback port: {error}"))
}

fn port_of(listener: &TcpListener) -> u16 {
    listener
        .local_addr()
        .unwrap_or_else(|error| panic!("a bound listener has no address: {error}"))
        .port()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_start_route_to_each_other_and_restart_on_their_ports() {
        let mut cluster = NatsCluster::start(Path::new("nats-server"), 3);
        assert_eq!(cluster.size(), 3);
        assert_eq!(cluster.urls().split(',').count(), 3);
        assert_eq!(cluster.index_of("n2"), Some(1));
        // Each node sees a route to both others (the log names them once connected).
        let deadline = Instant::now() + START_DEADLINE;
        while (0..3).any(|n| cluster.log(n).matches("Route connection created").count() < 2) {
            assert!(Instant::now() < deadline, "{}", cluster.log(0));
            std::thread::sleep(POLL_EVERY);
        }
        cluster.kill(1);
        assert!(!cluster.is_running(1));
        cluster.restart(1);
        assert!(cluster.is_running(1));
        assert!(TcpStream::connect(("127.0.0.1", cluster.nodes[1].port)).is_ok());
        assert_eq!(
            cluster.log(1).matches("Server is ready").count(),
            2,
            "the log keeps both starts"
        );
    }
}
