//! `gregorctl`: the tools a Kafka operator reaches for, on gregor-protocol's generated
//! types, for any Kafka-protocol broker (Gregor or Apache Kafka).
//!
//! ```text
//! gregorctl [--bootstrap-server HOST:PORT] [--json] <command>
//!   api-versions | metadata | describe-topic TOPIC
//!   topics create|delete|list|alter     configs describe|alter     groups list|describe
//!   get-offsets --topic T               produce TOPIC     consume TOPIC
//!   dump-log PATH...                    perf produce|consume|requests
//! ```
//!
//! Flags follow Kafka's own tools (`kafka-topics.sh`, `kafka-configs.sh`,
//! `kafka-console-producer.sh`, `kafka-producer-perf-test.sh`, `kafka-dump-log.sh`, ...).
//! Exit code 0 on success, 1 on any error (printed as one line on stderr), 2 for bad
//! arguments.

mod client;
mod commands;
mod errors;
mod output;
mod perf;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use client::ConnectOptions;
use commands::Context;

/// Command line.
#[derive(Parser, Debug)]
#[command(
    name = "gregorctl",
    version,
    about = "Kafka tools on gregor-protocol: inspect and drive any Kafka-protocol broker, decode log files, generate load"
)]
struct Cli {
    /// Broker(s) to bootstrap from: HOST:PORT[,HOST:PORT...].
    #[arg(
        long,
        global = true,
        default_value = "localhost:9092",
        value_name = "HOST:PORT"
    )]
    bootstrap_server: String,
    /// Print JSON (one document, or one object per line for streams) instead of tables.
    #[arg(long, global = true)]
    json: bool,
    /// The client.id sent with every request.
    #[arg(long, global = true, default_value = "gregorctl")]
    client_id: String,
    /// Longest wait for a TCP connection, in milliseconds.
    #[arg(long, global = true, default_value_t = 10_000, value_name = "MS")]
    connect_timeout_ms: u64,
    /// Longest wait for each response, in milliseconds (Kafka's request.timeout.ms).
    #[arg(long, global = true, default_value_t = 30_000, value_name = "MS")]
    request_timeout_ms: u64,
    /// Client properties (Kafka's keys): security.protocol, sasl.mechanism, sasl.jaas.config,
    /// ssl.truststore.location, ssl.keystore.location, ... (as kafka-*.sh --command-config).
    #[arg(long, global = true, value_name = "FILE")]
    command_config: Option<std::path::PathBuf>,
    /// One client property, over the --command-config file (repeatable).
    #[arg(long, global = true, value_name = "KEY=VALUE")]
    command_property: Vec<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// The APIs and versions the broker supports, and the version gregorctl will use.
    ApiVersions,
    /// Brokers, controller and topics, from a Metadata request.
    Metadata(commands::metadata::Args),
    /// One topic's partitions (DescribeTopicPartitions, or Metadata on older brokers).
    DescribeTopic(commands::describe_topic::Args),
    /// Create, delete, list or alter topics (kafka-topics.sh).
    #[command(subcommand)]
    Topics(commands::topics::Command),
    /// Earliest, latest or by-time offsets of a topic's partitions (kafka-get-offsets.sh).
    GetOffsets(commands::get_offsets::Args),
    /// Describe or alter topic and broker configs (kafka-configs.sh).
    #[command(subcommand)]
    Configs(commands::configs::Command),
    /// List or describe consumer groups (kafka-consumer-groups.sh).
    #[command(subcommand)]
    Groups(commands::groups::Command),
    /// Produce one record per stdin line (kafka-console-producer.sh).
    Produce(commands::produce::Args),
    /// Consume records, one value per stdout line (kafka-console-consumer.sh).
    Consume(commands::consume::Args),
    /// Decode log segments, indexes and KRaft metadata logs (kafka-dump-log.sh).
    DumpLog(commands::dump_log::Args),
    /// Load generator (kafka-producer-perf-test.sh, kafka-consumer-perf-test.sh, request rates).
    #[command(subcommand)]
    Perf(perf::Command),
}

/// The security settings of `--command-config` and `--command-property`.
fn security(cli: &Cli) -> client::Result<client::security::Security> {
    let mut props = match &cli.command_config {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                client::Error::io(format!("--command-config {}", path.display()), e)
            })?;
            client::security::parse_properties(&text)
        }
        None => Default::default(),
    };
    for property in &cli.command_property {
        let Some((key, value)) = property.split_once('=') else {
            return Err(client::Error::Usage(format!(
                "--command-property {property}: expected KEY=VALUE"
            )));
        };
        props.insert(key.trim().to_string(), value.trim().to_string());
    }
    client::security::Security::from_properties(&props)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let security = match security(&cli) {
        Ok(security) => security,
        Err(e) => return finish(Err(e)),
    };
    let context = Context {
        bootstrap: cli.bootstrap_server.clone(),
        json: cli.json,
        options: ConnectOptions {
            client_id: cli.client_id.clone(),
            connect_timeout: Duration::from_millis(cli.connect_timeout_ms),
            request_timeout: Duration::from_millis(cli.request_timeout_ms),
            security,
            ..ConnectOptions::default()
        },
    };
    // dump-log reads files only: no runtime needed.
    if let Command::DumpLog(args) = &cli.command {
        return finish(commands::dump_log::run(&context, args));
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("gregorctl: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(&context, cli.command));
    // Do not wait for connection tasks still blocked on sockets.
    runtime.shutdown_timeout(Duration::from_millis(100));
    finish(result)
}

async fn run(context: &Context, command: Command) -> client::Result<()> {
    match command {
        Command::ApiVersions => commands::api_versions::run(context).await,
        Command::Metadata(args) => commands::metadata::run(context, &args).await,
        Command::DescribeTopic(args) => commands::describe_topic::run(context, &args).await,
        Command::Topics(command) => commands::topics::run(context, &command).await,
        Command::GetOffsets(args) => commands::get_offsets::run(context, &args).await,
        Command::Configs(command) => commands::configs::run(context, &command).await,
        Command::Groups(command) => commands::groups::run(context, &command).await,
        Command::Produce(args) => commands::produce::run(context, &args).await,
        Command::Consume(args) => commands::consume::run(context, &args).await,
        Command::Perf(command) => perf::run(context, &command).await,
        Command::DumpLog(args) => commands::dump_log::run(context, &args),
    }
}

/// Exit code 0, or 1 with the error on stderr (a closed stdout is not an error).
fn finish(result: client::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is_broken_pipe() => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gregorctl: error: {e}");
            ExitCode::FAILURE
        }
    }
}
