//! Running Shopify's Sarama (Go): the driver program `tests/clients/sarama/main.go`, built
//! once per test run against Debian's `golang-github-shopify-sarama-dev` (1.22.1, a client
//! of the Kafka 0.10-2.1 era) with Debian's `golang-go`, in GOPATH mode and offline.
//!
//! Where they are: `GREGOR_GO` (else `go` on `PATH`) and `GREGOR_SARAMA_GOPATH` (else
//! `/usr/share/gocode`, where Debian puts Go sources), as `scripts/install-test-clients.sh`
//! installs them. Missing, the test skips (or fails with `GREGOR_REQUIRE_CLIENTS=1`), as
//! with the other clients (see [`super::clients`]).
//!
//! The binary is cached under `target/sarama-driver/<key>/`, the key hashing the driver's
//! source, the Go version and the GOPATH, so a test run builds it at most once (a few
//! seconds) and later runs not at all.

use std::collections::hash_map::DefaultHasher;
use std::env;
use std::fs;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use super::clients::{ClientOutput, find_on_path, missing, run};

/// Time limit of one Sarama run (the driver's own `--timeout` is shorter).
pub const SARAMA_TIMEOUT: Duration = Duration::from_secs(90);

/// The Go toolchain: `GREGOR_GO`, else `go` on `PATH`.
fn go_path() -> Option<PathBuf> {
    match env::var_os("GREGOR_GO") {
        Some(path) if !path.is_empty() => Some(PathBuf::from(path)).filter(|p| p.is_file()),
        _ => find_on_path("go"),
    }
}

/// The GOPATH entry holding Sarama's and its dependencies' sources.
fn sarama_gopath() -> PathBuf {
    match env::var_os("GREGOR_SARAMA_GOPATH") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => PathBuf::from("/usr/share/gocode"),
    }
}

/// The driver's source directory.
fn driver_source_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/sarama")
}

/// The built driver, or why there is none (`Err(None)`: Go or Sarama not installed).
fn build() -> Result<PathBuf, Option<String>> {
    let Some(go) = go_path() else {
        return Err(None);
    };
    let gopath = sarama_gopath();
    if !gopath.join("src/github.com/Shopify/sarama").is_dir() {
        return Err(None);
    }
    let source = driver_source_dir().join("main.go");
    let text = fs::read(&source).map_err(|e| Some(format!("read {}: {e}", source.display())))?;
    let version = Command::new(&go)
        .arg("version")
        .output()
        .map_err(|e| Some(format!("run {} version: {e}", go.display())))?;
    let mut hasher = DefaultHasher::new();
    text.hash(&mut hasher);
    version.stdout.hash(&mut hasher);
    gopath.hash(&mut hasher);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/sarama-driver")
        .join(format!("{:016x}", hasher.finish()));
    let binary = dir.join("sarama_driver");
    if binary.is_file() {
        return Ok(binary);
    }
    fs::create_dir_all(&dir).map_err(|e| Some(format!("create {}: {e}", dir.display())))?;
    // Built under a temporary name and renamed, so a concurrent test binary never runs a
    // half-written file.
    let partial = dir.join(format!("sarama_driver.{}.partial", std::process::id()));
    // GOPATH mode (Debian ships sources, not modules): a private first entry for Go's
    // own writes, then Debian's tree; no network (GOPROXY=off). cgo off: Sarama then
    // leaves out zstd (DataDog/zstd is cgo), which no test uses, and no C compiler is needed.
    let private = dir.join("gopath");
    let mut gopath_value = private.into_os_string();
    gopath_value.push(":");
    gopath_value.push(&gopath);
    let output = Command::new(&go)
        .args(["build", "-o"])
        .arg(&partial)
        .arg("main.go")
        .current_dir(driver_source_dir())
        .env("GO111MODULE", "off")
        .env("GOPATH", gopath_value)
        .env("GOCACHE", dir.join("cache"))
        .env("GOFLAGS", "")
        .env("GOPROXY", "off")
        .env("CGO_ENABLED", "0")
        .output()
        .map_err(|e| Some(format!("run {} build: {e}", go.display())))?;
    if !output.status.success() {
        return Err(Some(format!(
            "go build of {} failed ({}):\n{}{}",
            source.display(),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    fs::rename(&partial, &binary).map_err(|e| Some(format!("rename the driver: {e}")))?;
    // The build cache is only needed for this one build, and drivers of older sources not
    // at all (each is a few MB).
    let _ = fs::remove_dir_all(dir.join("cache"));
    if let Some(parent) = dir.parent() {
        for entry in fs::read_dir(parent).into_iter().flatten().flatten() {
            if entry.path() != dir {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
    }
    Ok(binary)
}

/// The driver binary, built on first use; `None` when Go or Sarama is missing and not
/// required. A failed build panics (the driver's source is ours).
pub fn sarama_driver() -> Option<PathBuf> {
    static BUILT: OnceLock<Result<PathBuf, Option<String>>> = OnceLock::new();
    match BUILT.get_or_init(build) {
        Ok(path) => Some(path.clone()),
        Err(Some(why)) => panic!("{why}"),
        Err(None) => {
            missing(
                "Sarama (golang-go and golang-github-shopify-sarama-dev)",
                "no `go` (GREGOR_GO) or no Sarama under GREGOR_SARAMA_GOPATH (default /usr/share/gocode)",
            );
            None
        }
    }
}

/// Runs the Sarama driver with `args`; `None` when it is not installed and not required.
pub fn sarama(args: &[&str]) -> Option<ClientOutput> {
    let driver = sarama_driver()?;
    Some(run(Command::new(driver).args(args), SARAMA_TIMEOUT))
}

/// Debian's version of the Sarama package (`1.22.1-1`), if dpkg knows it.
pub fn sarama_package_version() -> Option<String> {
    let output = Command::new("dpkg-query")
        .args(["-W", "-f", "${Version}", "golang-github-shopify-sarama-dev"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout).trim().to_string();
    (output.status.success() && !text.is_empty()).then_some(text)
}
