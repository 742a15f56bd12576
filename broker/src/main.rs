//! `gregor [PATH/server.properties] [--override key=value ...]`: runs the broker.
//!
//! `gregor format --cluster-id ID [--config FILE] [--override key=value ...]
//! [--ignore-formatted] [--standalone | --initial-controllers LIST | --no-initial-controllers]` and `gregor random-uuid` are Kafka's `kafka-storage.sh format` and
//! `random-uuid` (a cluster's nodes are formatted with one cluster id before their first
//! start; see `cluster/storage_tool.rs`). A configuration file literally named `format` or
//! `random-uuid` is given as `./format`.
//!
//! Without a file it uses an embedded default equivalent to Kafka's KRaft quickstart
//! configuration (PLAINTEXT on :9092, data under /tmp/kraft-combined-logs).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use gregor_broker::config::Config;
use tracing_subscriber::EnvFilter;

/// Command line, following kafka-server-start.sh.
#[derive(Parser, Debug)]
#[command(
    name = "gregor",
    version,
    about = "A Kafka broker on Kafka's own wire protocol and data layout"
)]
struct Cli {
    /// Kafka server.properties file (Kafka's keys); an embedded default when omitted.
    config: Option<PathBuf>,
    /// Overrides a property of the file, as `key=value` (repeatable).
    #[arg(long = "override", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
}

/// `gregor format` / `gregor random-uuid`, following kafka-storage.sh.
#[derive(Parser, Debug)]
#[command(name = "gregor", about = "Formats a node's directories for a cluster")]
enum StorageCli {
    /// Writes meta.properties with the cluster id into every log directory and the
    /// metadata log directory.
    Format {
        /// The cluster id every node of the cluster is formatted with (see random-uuid).
        #[arg(short = 't', long = "cluster-id")]
        cluster_id: String,
        /// Kafka server.properties file; the embedded default when omitted.
        #[arg(short = 'c', long = "config")]
        config: Option<PathBuf>,
        /// Overrides a property of the file, as `key=value` (repeatable).
        #[arg(long = "override", value_name = "KEY=VALUE")]
        overrides: Vec<String>,
        /// Leaves directories already formatted alone and formats the others.
        #[arg(short = 'g', long = "ignore-formatted")]
        ignore_formatted: bool,
        /// Makes this controller the only voter of a new dynamic quorum (KIP-853).
        #[arg(short = 's', long = "standalone", group = "voters")]
        standalone: bool,
        /// The voters of a new dynamic quorum: `id@host:port:directory-id,...`, the same
        /// list on every node.
        #[arg(short = 'I', long = "initial-controllers", group = "voters")]
        initial_controllers: Option<String>,
        /// A node of a dynamic quorum that is not one of its first voters.
        #[arg(short = 'N', long = "no-initial-controllers", group = "voters")]
        no_initial_controllers: bool,
    },
    /// Prints a new random cluster id.
    RandomUuid,
}

/// Runs `gregor format` / `gregor random-uuid`.
fn storage_tool() -> ExitCode {
    match StorageCli::parse() {
        StorageCli::RandomUuid => {
            println!(
                "{}",
                gregor_broker::cluster::storage_tool::random_cluster_id()
            );
            ExitCode::SUCCESS
        }
        StorageCli::Format {
            cluster_id,
            config,
            overrides,
            ignore_formatted,
            standalone,
            initial_controllers,
            no_initial_controllers,
        } => {
            use gregor_broker::cluster::storage_tool::{self, InitialVoters};
            let cli = Cli { config, overrides };
            let initial = match (standalone, initial_controllers, no_initial_controllers) {
                (true, _, _) => Ok(InitialVoters::Standalone),
                (_, Some(list), _) => {
                    storage_tool::parse_initial_controllers(&list).map(InitialVoters::Listed)
                }
                (_, _, true) => Ok(InitialVoters::NoneYet),
                _ => Ok(InitialVoters::Static),
            };
            let formatted = initial.and_then(|initial| {
                load_config(&cli).and_then(|config| {
                    storage_tool::format(&config, &cluster_id, ignore_formatted, &initial)
                })
            });
            match formatted {
                Ok(lines) => {
                    for line in lines {
                        println!("{line}");
                    }
                    ExitCode::SUCCESS
                }
                Err(err) => {
                    eprintln!("{err}");
                    ExitCode::from(1)
                }
            }
        }
    }
}

fn main() -> ExitCode {
    if matches!(
        std::env::args().nth(1).as_deref(),
        Some("format" | "random-uuid")
    ) {
        return storage_tool();
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("info,openraft=warn")),
        )
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
    let cli = Cli::parse();
    let config = match load_config(&cli) {
        Ok(config) => config,
        Err(err) => {
            tracing::error!("{err}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            tracing::error!("cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(gregor_broker::server::run(
        config,
        gregor_broker::server::shutdown_signal(),
    )) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err}");
            ExitCode::FAILURE
        }
    }
}

fn load_config(cli: &Cli) -> Result<Config, String> {
    let config = match &cli.config {
        Some(path) => Config::load(path).map_err(|e| e.to_string())?,
        None => {
            tracing::info!(
                "no configuration file given: using the embedded default (KRaft quickstart)"
            );
            Config::embedded_default()
        }
    };
    let mut pairs = Vec::new();
    for item in &cli.overrides {
        let (key, value) = item
            .split_once('=')
            .ok_or_else(|| format!("--override {item:?}: expected key=value"))?;
        pairs.push((key.trim().to_string(), value.trim().to_string()));
    }
    let config = if pairs.is_empty() {
        config
    } else {
        config.with_overrides(&pairs).map_err(|e| e.to_string())?
    };
    // Before anything is opened or bound: a listener must never be served with less
    // security than the configuration names.
    config.check_enforceable().map_err(|e| match &cli.config {
        Some(path) => format!("{}: {e}", path.display()),
        None => e.to_string(),
    })?;
    // Keystores, truststores, mechanisms and JAAS users of the TLS and SASL listeners.
    gregor_broker::security::ListenerSecurity::for_config(&config).map_err(|e| {
        match &cli.config {
            Some(path) => format!("{}: {e}", path.display()),
            None => e.to_string(),
        }
    })?;
    // The authorizer keys (only the StandardAuthorizer is implemented).
    gregor_broker::authorizer::Authorizer::from_config(&config).map_err(|e| match &cli.config {
        Some(path) => format!("{}: {e}; refusing to start", path.display()),
        None => format!("{e}; refusing to start"),
    })?;
    for key in config.inert_security_keys() {
        tracing::warn!("configuration key {key:?} has no effect: no listener uses TLS or SASL");
    }
    for key in &config.unknown_keys {
        tracing::warn!("unknown configuration key {key:?} ignored");
    }
    for key in &config.ignored_keys {
        tracing::debug!("configuration key {key:?} accepted but has no effect here");
    }
    Ok(config)
}
