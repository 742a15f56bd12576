//! [`Broker`]: the `gregor` binary run as a child process on a [`DataDir`].

use std::fs::{self, File};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::datadir::DataDir;

/// How long the broker may take to accept connections.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How long [`Broker::stop`] waits for a clean exit after SIGTERM.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// A running `gregor` process. Killed (SIGKILL) on drop; when the test is panicking, the
/// end of its log is printed first.
#[derive(Debug)]
pub struct Broker {
    child: Option<Child>,
    work: TempDir,
    addr: SocketAddr,
    controller_addr: SocketAddr,
    config_path: PathBuf,
    log_path: PathBuf,
    exit: Option<ExitStatus>,
    /// The log was already part of a panic message (not printed again on drop).
    log_shown: bool,
}

impl Broker {
    /// Starts the broker on `data` (its `log.dirs`, node id and ports) and waits until it
    /// accepts connections.
    pub fn start(data: &DataDir) -> Broker {
        Broker::start_with(data, &[])
    }

    /// Like [`Broker::start`], with extra `server.properties` keys (a key given here
    /// replaces the default line for it).
    pub fn start_with(data: &DataDir, extra: &[(&str, &str)]) -> Broker {
        let broker = Broker::spawn(data, extra, &[("RUST_LOG", "info")]);
        broker.wait_ready()
    }

    /// Like [`Broker::start_with`], with extra environment variables for the process
    /// (`RUST_LOG=debug` for example; the default is `RUST_LOG=info`).
    pub fn start_with_env(data: &DataDir, extra: &[(&str, &str)], env: &[(&str, &str)]) -> Broker {
        let mut vars = vec![("RUST_LOG", "info")];
        vars.extend_from_slice(env);
        Broker::spawn(data, extra, &vars).wait_ready()
    }

    /// Starts the process without waiting for it to listen (for tests of start-up
    /// failures: see [`Broker::wait_exit`]).
    pub fn spawn(data: &DataDir, extra: &[(&str, &str)], env: &[(&str, &str)]) -> Broker {
        Broker::spawn_properties(data, &server_properties(data, extra), env)
    }

    /// Starts the process on `data` with exactly `properties` as its `server.properties`
    /// (without waiting; see [`Broker::wait_ready`] and [`Broker::wait_ready_at`]).
    pub fn spawn_properties(data: &DataDir, properties: &str, env: &[(&str, &str)]) -> Broker {
        let work = tempfile::Builder::new()
            .prefix("gregor-broker-")
            .tempdir()
            .expect("create the broker's work directory");
        let config_path = work.path().join("server.properties");
        fs::write(&config_path, properties).expect("write server.properties");
        let log_path = work.path().join("broker.log");
        let log = File::create(&log_path).expect("create the broker log");
        let mut command = Command::new(env!("CARGO_BIN_EXE_gregor"));
        command
            .arg(&config_path)
            .current_dir(work.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log handle"))
            .stderr(log);
        for (key, value) in env {
            command.env(key, value);
        }
        let child = command.spawn().expect("start the gregor binary");
        Broker {
            child: Some(child),
            work,
            addr: SocketAddr::from(([127, 0, 0, 1], data.ports.plaintext)),
            controller_addr: SocketAddr::from(([127, 0, 0, 1], data.ports.controller)),
            config_path,
            log_path,
            exit: None,
            log_shown: false,
        }
    }

    /// Waits until the PLAINTEXT port accepts a connection; panics with the log when the
    /// process exits first or [`START_TIMEOUT`] passes.
    pub fn wait_ready(self) -> Broker {
        let addr = self.addr;
        self.wait_ready_at(addr)
    }

    /// Like [`Broker::wait_ready`], waiting for `addr` (the CONTROLLER listener of a
    /// controller-only node, say).
    pub fn wait_ready_at(mut self, addr: SocketAddr) -> Broker {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return self;
            }
            if let Some(status) = self.try_exit() {
                self.log_shown = true;
                panic!(
                    "gregor exited before accepting connections ({status})\n--- broker log ---\n{}",
                    self.log_text()
                );
            }
            if Instant::now() > deadline {
                self.log_shown = true;
                panic!(
                    "gregor did not accept connections on {addr} within {START_TIMEOUT:?}\n--- broker log ---\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The PLAINTEXT listener's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `127.0.0.1:<port>`, the bootstrap address for clients.
    pub fn bootstrap(&self) -> String {
        self.addr.to_string()
    }

    /// The CONTROLLER listener's address (as configured; the broker may not serve it).
    pub fn controller_addr(&self) -> SocketAddr {
        self.controller_addr
    }

    /// The process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The `server.properties` the broker was started with.
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// The broker's work directory (config and log).
    pub fn work_dir(&self) -> &Path {
        self.work.path()
    }

    /// Everything the process printed so far (stdout and stderr, in order).
    pub fn log_text(&self) -> String {
        String::from_utf8_lossy(&fs::read(&self.log_path).unwrap_or_default()).into_owned()
    }

    /// Waits up to `timeout` for a log line containing `needle`; returns that line.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(line) = self.log_text().lines().find(|l| l.contains(needle)) {
                return Some(line.to_string());
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The exit status if the process has ended.
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            if let Some(child) = self.child.as_mut() {
                self.exit = child.try_wait().expect("poll the broker process");
            }
        }
        self.exit
    }

    /// Waits up to `timeout` for the process to end by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_exit() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGTERM (a clean shutdown, as `kafka-server-stop.sh` does) and waits up to
    /// [`STOP_TIMEOUT`] for the exit; panics with the log if it does not exit.
    pub fn stop(&mut self) -> ExitStatus {
        if let Some(status) = self.try_exit() {
            return status;
        }
        let pid = self.pid().expect("a process").to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill -TERM");
        assert!(sent.success(), "kill -TERM {pid} failed");
        match self.wait_exit(STOP_TIMEOUT) {
            Some(status) => status,
            None => {
                self.kill9();
                self.log_shown = true;
                panic!(
                    "gregor did not exit within {STOP_TIMEOUT:?} of SIGTERM\n--- broker log ---\n{}",
                    self.log_text()
                );
            }
        }
    }

    /// Sends `signal` (a name `kill` knows: `STOP`, `CONT`, ...) to the running process.
    pub fn signal(&self, signal: &str) {
        let pid = self.pid().expect("a process").to_string();
        let sent = Command::new("kill")
            .args([format!("-{signal}").as_str(), &pid])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -{signal} {pid} failed");
    }

    /// Kills the process with SIGKILL (a crash) and reaps it.
    pub fn kill9(&mut self) -> ExitStatus {
        if let Some(status) = self.try_exit() {
            return status;
        }
        let child = self.child.as_mut().expect("a process");
        let _ = child.kill();
        let status = child.wait().expect("reap the broker process");
        self.exit = Some(status);
        status
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if self.child.is_some() && self.try_exit().is_none() {
            self.kill9();
        }
        if std::thread::panicking()
            && let Some(dir) = std::env::var_os("GREGOR_TEST_KEEP_LOGS")
        {
            // For debugging a failure: the whole log, named after the work directory.
            let name = self.work.path().file_name().unwrap_or_default();
            let _ = fs::create_dir_all(&dir);
            let _ = fs::copy(
                &self.log_path,
                PathBuf::from(dir).join(name).with_extension("log"),
            );
        }
        if std::thread::panicking() && !self.log_shown {
            let log = self.log_text();
            let lines: Vec<&str> = log.lines().collect();
            let tail = &lines[lines.len().saturating_sub(200)..];
            eprintln!(
                "--- gregor log ({}, last {} lines) ---\n{}\n--- end of gregor log ---",
                self.log_path.display(),
                tail.len(),
                tail.join("\n")
            );
        }
    }
}

/// The `server.properties` of a one-node combined KRaft broker and controller, as in
/// Kafka's `config/server.properties`, on `data`'s ports and directory; `extra` keys replace
/// or add lines.
pub fn server_properties(data: &DataDir, extra: &[(&str, &str)]) -> String {
    let node = data.node_id;
    let (plaintext, controller) = (data.ports.plaintext, data.ports.controller);
    let mut lines: Vec<(String, String)> = [
        ("process.roles", "broker,controller".to_string()),
        ("node.id", node.to_string()),
        (
            "controller.quorum.voters",
            format!("{node}@127.0.0.1:{controller}"),
        ),
        (
            "listeners",
            format!("PLAINTEXT://127.0.0.1:{plaintext},CONTROLLER://127.0.0.1:{controller}"),
        ),
        ("inter.broker.listener.name", "PLAINTEXT".to_string()),
        (
            "advertised.listeners",
            format!("PLAINTEXT://127.0.0.1:{plaintext}"),
        ),
        ("controller.listener.names", "CONTROLLER".to_string()),
        (
            "listener.security.protocol.map",
            "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL"
                .to_string(),
        ),
        ("num.network.threads", "3".to_string()),
        ("num.io.threads", "8".to_string()),
        ("socket.request.max.bytes", "104857600".to_string()),
        ("log.dirs", data.path().display().to_string()),
        ("num.partitions", "1".to_string()),
        ("offsets.topic.replication.factor", "1".to_string()),
        ("transaction.state.log.replication.factor", "1".to_string()),
        ("transaction.state.log.min.isr", "1".to_string()),
        ("log.retention.hours", "168".to_string()),
        ("log.segment.bytes", "1073741824".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    for (key, value) in extra {
        match lines.iter_mut().find(|(k, _)| k == key) {
            Some(line) => line.1 = value.to_string(),
            None => lines.push((key.to_string(), value.to_string())),
        }
    }
    let mut text = String::from("# Written by gregor's test harness.\n");
    for (key, value) in lines {
        text.push_str(&format!("{key}={}\n", escape_property(&value)));
    }
    text
}

/// Escapes a value for a Java properties file (backslashes; the rest of our values are
/// plain).
fn escape_property(value: &str) -> String {
    value.replace('\\', "\\\\")
}
