//! Running the real clients: Debian's `kcat` and the Python drivers in `tests/clients/`
//! (kafka-python, confluent-kafka) from the virtualenv of `scripts/install-test-clients.sh`.
//!
//! Where they are: `GREGOR_KCAT` (else `kcat` or `kafkacat` on `PATH`) and
//! `GREGOR_CLIENTS_VENV` (else `target/clients-venv` of the workspace, if present). A client
//! that is not there skips the test (a line `skipped: ...` and `None`), unless
//! `GREGOR_REQUIRE_CLIENTS=1`, as `scripts/test.sh` sets, which makes it a failure.

use std::env;
use std::fmt;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::json::{Json, JsonExt};

/// Default time limit of one client run (drivers get a shorter `--timeout` of their own, so
/// they report what they saw before this kills them).
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(120);

/// What a client run printed, and how it ended.
#[derive(Debug)]
pub struct ClientOutput {
    /// The command line, for messages.
    pub command: String,
    /// Exit status (`None` when it was killed at the time limit).
    pub status: Option<ExitStatus>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// How long it ran.
    pub elapsed: Duration,
}

impl ClientOutput {
    /// True when it exited with status 0.
    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    /// True when it was killed at its time limit.
    pub fn timed_out(&self) -> bool {
        self.status.is_none()
    }

    /// Panics with everything it printed unless it exited with status 0.
    pub fn assert_success(&self) -> &ClientOutput {
        assert!(self.success(), "client failed: {self}");
        self
    }

    /// Standard output parsed as JSON lines.
    pub fn json_lines(&self) -> Vec<Json> {
        Json::parse_lines(&self.stdout)
            .unwrap_or_else(|e| panic!("{e} in the output of {}\n{self}", self.command))
    }

    /// Standard output parsed as one JSON document.
    pub fn json(&self) -> Json {
        Json::parse(&self.stdout)
            .unwrap_or_else(|e| panic!("{e} in the output of {}\n{self}", self.command))
    }
}

impl fmt::Display for ClientOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = match self.status {
            Some(status) => status.to_string(),
            None => format!("killed after {:?} (time limit)", self.elapsed),
        };
        let tail = |text: &str| {
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(80)..].join("\n")
        };
        write!(
            f,
            "`{}`: {status}\n--- stdout (tail) ---\n{}\n--- stderr (tail) ---\n{}",
            self.command,
            tail(&self.stdout),
            tail(&self.stderr)
        )
    }
}

/// True when `GREGOR_REQUIRE_CLIENTS=1`: a missing client is then a failure.
pub fn clients_required() -> bool {
    env::var("GREGOR_REQUIRE_CLIENTS").is_ok_and(|v| v == "1")
}

/// Reports a missing client: panics when clients are required, else prints the skip line.
pub fn missing(client: &str, why: &str) {
    if clients_required() {
        panic!(
            "{client} not installed ({why}), and GREGOR_REQUIRE_CLIENTS=1: run `source scripts/install-test-clients.sh`"
        );
    }
    println!("skipped: {client} not installed (run scripts/test.sh)");
}

/// Why a client named by `variable` (a path) was not found.
fn not_found(variable: &str, fallback: &str) -> String {
    match env::var_os(variable) {
        Some(value) if !value.is_empty() => {
            format!("{variable}={} is not there", value.to_string_lossy())
        }
        _ => format!("{variable} unset and {fallback}"),
    }
}

/// The first file called `name` in a directory of `PATH`.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    env::split_paths(&env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
}

/// The kcat binary: `GREGOR_KCAT`, else `kcat` or `kafkacat` on `PATH`.
pub fn kcat_path() -> Option<PathBuf> {
    match env::var_os("GREGOR_KCAT") {
        Some(path) if !path.is_empty() => Some(PathBuf::from(path)).filter(|p| p.is_file()),
        _ => find_on_path("kcat").or_else(|| find_on_path("kafkacat")),
    }
}

/// The virtualenv with the Python clients: `GREGOR_CLIENTS_VENV`, else the workspace's
/// `target/clients-venv` when it exists.
pub fn venv_path() -> Option<PathBuf> {
    let venv = match env::var_os("GREGOR_CLIENTS_VENV") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/clients-venv"),
    };
    venv.join("bin/python").is_file().then_some(venv)
}

/// The virtualenv's Python interpreter.
pub fn python_path() -> Option<PathBuf> {
    venv_path().map(|venv| venv.join("bin/python"))
}

/// The directory of the Python drivers (`broker/tests/clients`).
pub fn drivers_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients")
}

/// Runs kcat with `args` (time limit [`CLIENT_TIMEOUT`]); `None` when kcat is missing
/// and not required.
pub fn kcat(args: &[&str]) -> Option<ClientOutput> {
    kcat_with_timeout(args, CLIENT_TIMEOUT)
}

/// [`kcat`] with a time limit.
pub fn kcat_with_timeout(args: &[&str], timeout: Duration) -> Option<ClientOutput> {
    let Some(path) = kcat_path() else {
        missing("kcat", &not_found("GREGOR_KCAT", "no kcat on PATH"));
        return None;
    };
    Some(run(Command::new(path).args(args), timeout))
}

/// Runs the driver `script` (a file in `tests/clients/`) with the virtualenv's Python
/// (time limit [`CLIENT_TIMEOUT`]); `None` when the virtualenv is missing and not
/// required.
pub fn python(script: &str, args: &[&str]) -> Option<ClientOutput> {
    python_with_timeout(script, args, CLIENT_TIMEOUT)
}

/// [`python`] with a time limit.
pub fn python_with_timeout(script: &str, args: &[&str], timeout: Duration) -> Option<ClientOutput> {
    let Some(python) = python_path() else {
        missing(
            "the Python clients' virtualenv",
            &not_found("GREGOR_CLIENTS_VENV", "no target/clients-venv"),
        );
        return None;
    };
    let script = drivers_dir().join(script);
    assert!(script.is_file(), "no driver {}", script.display());
    Some(run(
        Command::new(python)
            .arg(script)
            .args(args)
            .env("PYTHONUNBUFFERED", "1")
            .env("PYTHONDONTWRITEBYTECODE", "1"),
        timeout,
    ))
}

/// kcat's version line (`kcat 1.7.1, librdkafka 2.0.2`), if kcat is installed.
pub fn kcat_version() -> Option<String> {
    let output = Command::new(kcat_path()?).arg("-V").output().ok()?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    let line = text.lines().find(|l| l.starts_with("Version "))?;
    let kcat = line.split_whitespace().nth(1)?;
    let librdkafka = line
        .split("librdkafka ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or("?");
    Some(format!("kcat {kcat}, librdkafka {librdkafka}"))
}

/// Versions of the Python clients (`kafka-python X, confluent-kafka Y (librdkafka Z)`).
pub fn python_client_versions() -> Option<String> {
    let output = Command::new(python_path()?)
        .args([
            "-c",
            "import kafka, confluent_kafka; print('kafka-python', kafka.__version__ + ', confluent-kafka', confluent_kafka.__version__, '(librdkafka ' + confluent_kafka.libversion()[0] + ')')",
        ])
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// Runs `command` with its output in temporary files (no pipe to fill up), killing it at
/// `timeout`.
pub fn run(command: &mut Command, timeout: Duration) -> ClientOutput {
    let dir = tempfile::Builder::new()
        .prefix("gregor-client-")
        .tempdir()
        .expect("create a temporary directory");
    let (out_path, err_path) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let line = format!(
        "{} {}",
        command.get_program().to_string_lossy(),
        command
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    );
    let start = Instant::now();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(File::create(&out_path).expect("create stdout file"))
        .stderr(File::create(&err_path).expect("create stderr file"))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run `{line}`: {e}"));
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll the client") {
            break Some(status);
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let read =
        |path: &Path| String::from_utf8_lossy(&fs::read(path).unwrap_or_default()).into_owned();
    ClientOutput {
        command: line,
        status,
        stdout: read(&out_path),
        stderr: read(&err_path),
        elapsed: start.elapsed(),
    }
}
