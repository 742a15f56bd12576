//! `gregor format` and `gregor random-uuid`: Kafka's `kafka-storage.sh` (`StorageTool`,
//! `Formatter`) for the nodes of a cluster, which must share one cluster id: each node's
//! directories (every `log.dirs` entry and `metadata.log.dir`) get a version 1
//! `meta.properties` with the given cluster id, this node's id and a directory id of their
//! own.
//!
//! The voters of a dynamic quorum (KIP-853, `kraft.version` 1) come from the options of
//! Kafka's formatter ([`InitialVoters`]): `--standalone` makes this controller the only
//! voter, `--initial-controllers id@host:port:directory,...` names them all (this node's
//! directory id is taken from the list), and both write the bootstrap snapshot
//! `00000000000000000000-0000000000.checkpoint` (a header, the `KRaftVersionRecord`, the
//! `VotersRecord`, a footer) into `__cluster_metadata-0`; `--no-initial-controllers`
//! writes none (the controller learns the voters from the leader once it is added). A
//! controller without `controller.quorum.voters` needs one of the three, as in Kafka.
//!
//! Differences from Kafka: no `bootstrap.checkpoint` is written; the first active
//! controller of an empty metadata log writes the bootstrap records itself (at the
//! `metadata.version` this broker writes), which is the content Kafka's formatter would
//! have put in that file. `--release-version`, `--feature` and `--add-scram` are not
//! offered (`gregor.bootstrap.scram` carries SCRAM credentials).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use gregor_protocol::Uuid;
use gregor_protocol::messages::voters_record::VotersRecord;

use super::meta_properties::{MetaProperties, uuid_from_base64};
use super::quorum::VoterNode;
use super::quorum::entry::{KRAFT_VERSION_MAX, voter_entry};
use super::replay::{METADATA_PARTITION_DIR, SnapshotId};
use super::snapshot::{KRaftState, encode_snapshot};
use crate::config::Config;

/// The initial voters of a dynamic quorum, as `format`'s options give them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum InitialVoters {
    /// None of the options: the static `controller.quorum.voters` (`kraft.version` 0).
    #[default]
    Static,
    /// `--standalone`: this controller alone.
    Standalone,
    /// `--initial-controllers`: these voters.
    Listed(Vec<InitialVoter>),
    /// `--no-initial-controllers`: a dynamic quorum this node joins later.
    NoneYet,
}

/// One voter of `--initial-controllers`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InitialVoter {
    /// Its node id.
    pub id: i32,
    /// Host of its controller listener.
    pub host: String,
    /// Port of its controller listener.
    pub port: u16,
    /// Its metadata log directory id.
    pub directory_id: Uuid,
}

/// Parses `--initial-controllers`: comma-separated `id@host:port:directory-id` (Kafka's
/// `DynamicVoters.parse`; an IPv6 host in brackets).
pub fn parse_initial_controllers(text: &str) -> Result<Vec<InitialVoter>, String> {
    let mut voters: Vec<InitialVoter> = Vec::new();
    for item in text.split(',').map(str::trim) {
        let bad = |why: &str| format!("Unable to parse {item:?} in --initial-controllers: {why}");
        let (id, rest) = item.split_once('@').ok_or_else(|| bad("no @ found"))?;
        let id: i32 = id
            .parse()
            .ok()
            .filter(|id| *id >= 0)
            .ok_or_else(|| bad("the node id is not a non-negative integer"))?;
        let (address, directory) = rest
            .rsplit_once(':')
            .ok_or_else(|| bad("no directory id found"))?;
        let (host, port) = address
            .rsplit_once(':')
            .ok_or_else(|| bad("no port found"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(bad("no hostname found"));
        }
        let port: u16 = port.parse().map_err(|_| bad("the port is not a number"))?;
        let directory_id = uuid_from_base64(directory)
            .map_err(|e| bad(&format!("the directory id is not a valid id: {e}")))?;
        if voters.iter().any(|v| v.id == id) {
            return Err(format!(
                "Node id {id} was specified more than once in --initial-controllers"
            ));
        }
        voters.push(InitialVoter {
            id,
            host: host.to_string(),
            port,
            directory_id,
        });
    }
    Ok(voters)
}

/// The directories `format` writes: every log directory and the metadata log directory.
pub fn directories(config: &Config) -> Vec<PathBuf> {
    let mut seen = BTreeSet::new();
    config
        .log_dirs
        .iter()
        .map(PathBuf::as_path)
        .chain(std::iter::once(config.effective_metadata_log_dir()))
        .filter(|dir| seen.insert(dir.to_path_buf()))
        .map(Path::to_path_buf)
        .collect()
}

/// Formats this node's directories with `cluster_id` (Kafka's `Formatter.doFormat`):
/// refuses a directory whose `meta.properties` names another cluster or node, and any
/// formatted directory unless `ignore_formatted` (which then formats the others). Returns
/// the lines to print.
pub fn format(
    config: &Config,
    cluster_id: &str,
    ignore_formatted: bool,
    initial: &InitialVoters,
) -> Result<Vec<String>, String> {
    uuid_from_base64(cluster_id).map_err(|e| {
        format!("Cluster ID string {cluster_id} does not appear to be a valid UUID: {e}")
    })?;
    if config.node_id < 0 {
        return Err("You must specify a valid non-negative node ID.".to_string());
    }
    let voters = initial_voter_list(config, initial)?;
    let dirs = directories(config);
    let mut empty = Vec::new();
    let mut formatted = Vec::new();
    for dir in &dirs {
        match MetaProperties::read(dir) {
            Ok(None) => empty.push(dir.clone()),
            Ok(Some(meta)) => {
                let path = dir.join("meta.properties");
                if meta.cluster_id != cluster_id {
                    return Err(format!(
                        "Invalid cluster.id in: {}. Expected {cluster_id}, but read {}",
                        path.display(),
                        meta.cluster_id
                    ));
                }
                meta.check_node_id(config.node_id, &path)
                    .map_err(|e| e.to_string())?;
                formatted.push(dir.clone());
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    if let Some(first) = formatted.first()
        && !ignore_formatted
    {
        return Err(format!(
            "Log directory {} is already formatted. Use --ignore-formatted to ignore this \
             directory and format the others.",
            first.display()
        ));
    }
    if empty.is_empty() {
        return Ok(vec![
            "All of the log directories are already formatted.".to_string(),
        ]);
    }
    let metadata_dir = config.effective_metadata_log_dir();
    let mut lines = Vec::new();
    for dir in empty {
        std::fs::create_dir_all(&dir).map_err(|e| {
            format!(
                "Error while writing meta.properties file {}: {e}",
                dir.display()
            )
        })?;
        // A directory id of its own (`MetaProperties::new` draws one), but the metadata
        // directory of an initial voter has the one the voter list names.
        let mut meta = MetaProperties::new(cluster_id, config.node_id);
        let own_voter = voters
            .as_ref()
            .and_then(|v| v.iter().find(|v| v.id == config.node_id));
        if dir == metadata_dir
            && let Some(voter) = own_voter
        {
            meta.directory_id = Some(voter.directory_id);
        }
        meta.write(&dir).map_err(|e| {
            format!(
                "Error while writing meta.properties file {}: {e}",
                dir.display()
            )
        })?;
        let kind = if dir != metadata_dir {
            "data directory"
        } else if let Some(voters) = &voters {
            write_bootstrap_snapshot(&dir, config, voters)?;
            if own_voter.is_some() {
                "dynamic metadata voter directory"
            } else {
                "dynamic metadata directory"
            }
        } else {
            "metadata log directory"
        };
        lines.push(format!(
            "Formatting {kind} {} with cluster id {cluster_id}.",
            dir.display()
        ));
    }
    Ok(lines)
}

/// The initial voters to write (`None`: no bootstrap snapshot), checked as Kafka's
/// `StorageTool` checks them.
fn initial_voter_list(
    config: &Config,
    initial: &InitialVoters,
) -> Result<Option<Vec<InitialVoter>>, String> {
    match initial {
        InitialVoters::Static => {
            if config.is_controller() && config.controller_quorum_voters.is_empty() {
                return Err(
                    "Because controller.quorum.voters is not set on this controller, \
                            you must specify one of the following: --standalone, \
                            --initial-controllers, or --no-initial-controllers."
                        .to_string(),
                );
            }
            Ok(None)
        }
        InitialVoters::NoneYet => Ok(None),
        InitialVoters::Standalone => {
            if !config.is_controller() {
                return Err("You can only use --standalone on a controller.".to_string());
            }
            let listener = config
                .controller_listener_names
                .first()
                .and_then(|name| config.advertised_listener_for(name))
                .ok_or_else(|| "No controller listeners found.".to_string())?;
            Ok(Some(vec![InitialVoter {
                id: config.node_id,
                host: if listener.host.is_empty() {
                    "localhost".to_string()
                } else {
                    listener.host.clone()
                },
                port: listener.port,
                directory_id: super::meta_properties::random_uuid(),
            }]))
        }
        InitialVoters::Listed(voters) => {
            if voters.is_empty() {
                return Err("--initial-controllers names no controller".to_string());
            }
            Ok(Some(voters.clone()))
        }
    }
}

/// Writes the bootstrap snapshot of a dynamic quorum (see the module docs) into the
/// metadata directory `dir`.
fn write_bootstrap_snapshot(
    dir: &Path,
    config: &Config,
    voters: &[InitialVoter],
) -> Result<(), String> {
    let listener = config
        .controller_listener_names
        .first()
        .cloned()
        .unwrap_or_else(|| "CONTROLLER".to_string());
    let record = VotersRecord {
        version: 0,
        voters: voters
            .iter()
            .map(|v| {
                let node = VoterNode {
                    directory_id: v.directory_id,
                    listener: listener.clone(),
                    host: v.host.clone(),
                    port: v.port,
                };
                voter_entry(v.id, &node)
            })
            .collect(),
        ..Default::default()
    };
    let kraft = KRaftState {
        kraft_version: KRAFT_VERSION_MAX,
        voters: Some(record),
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let (bytes, _) = encode_snapshot(0, &[], now, &kraft, now).map_err(|e| e.to_string())?;
    let partition = dir.join(METADATA_PARTITION_DIR);
    let path = partition.join(
        SnapshotId {
            end_offset: 0,
            epoch: 0,
        }
        .file_name(),
    );
    let written = std::fs::create_dir_all(&partition).and_then(|()| {
        let mut file = std::fs::File::create(&path)?;
        std::io::Write::write_all(&mut file, &bytes)?;
        file.sync_all()
    });
    written.map_err(|e| format!("Error while writing {}: {e}", path.display()))
}

/// Kafka's refusal to start a KRaft node on an unformatted directory
/// (`KafkaRaftServer.initializeLogDirs`).
pub fn unformatted_message(dir: &Path) -> String {
    format!(
        "No `meta.properties` found in {} (have you run `gregor format` to format the \
         directory?)",
        dir.display()
    )
}

/// A new random cluster id (`random-uuid`).
pub fn random_cluster_id() -> String {
    super::meta_properties::random_cluster_id()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::meta_properties::uuid_to_base64;

    #[test]
    fn initial_controllers_parse_as_kafka_writes_them_and_bad_entries_are_refused() {
        let a = super::super::meta_properties::random_uuid();
        let b = super::super::meta_properties::random_uuid();
        let text = format!(
            "1@host-a:9093:{},2@[::1]:9094:{}",
            uuid_to_base64(a),
            uuid_to_base64(b)
        );
        let voters = parse_initial_controllers(&text).unwrap();
        assert_eq!(voters.len(), 2);
        assert_eq!(
            (voters[0].id, voters[0].host.as_str(), voters[0].port),
            (1, "host-a", 9093)
        );
        assert_eq!(voters[0].directory_id, a);
        assert_eq!(
            (voters[1].host.as_str(), voters[1].directory_id),
            ("::1", b)
        );
        let dir = uuid_to_base64(a);
        for bad in [
            format!("1host:9093:{dir}"),
            format!("x@host:9093:{dir}"),
            format!("-1@host:9093:{dir}"),
            format!("1@host:port:{dir}"),
            "1@host:9093:not-an-id".to_string(),
            format!("1@:9093:{dir}"),
            format!("1@h:9093:{dir},1@g:9094:{dir}"),
        ] {
            assert!(parse_initial_controllers(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_standalone_format_writes_a_bootstrap_snapshot_the_start_up_reads_as_the_voters() {
        let root = tempfile::tempdir().unwrap();
        let text = format!(
            "process.roles=controller\nnode.id=3\nlisteners=CONTROLLER://127.0.0.1:19093\n\
             controller.listener.names=CONTROLLER\n\
             controller.quorum.bootstrap.servers=127.0.0.1:19093\nlog.dirs={}\n",
            root.path().display()
        );
        let config = Config::parse(&text).unwrap();
        let cluster_id = super::super::meta_properties::random_cluster_id();
        // Without voters and without an option a controller is refused.
        let refused = format(&config, &cluster_id, false, &InitialVoters::Static).unwrap_err();
        assert!(refused.contains("--no-initial-controllers"), "{refused}");
        let lines = format(&config, &cluster_id, false, &InitialVoters::Standalone).unwrap();
        assert!(
            lines[0].contains("dynamic metadata voter directory"),
            "{lines:?}"
        );
        let loaded = crate::cluster::replay::load(root.path()).unwrap();
        assert_eq!(loaded.kraft.kraft_version, 1);
        let voters = loaded.kraft.voters.expect("voters");
        assert_eq!(voters.voters.len(), 1);
        let voter = &voters.voters[0];
        assert_eq!(voter.voter_id, 3);
        assert_eq!(
            Some(voter.voter_directory_id),
            loaded.meta.unwrap().directory_id
        );
        assert_eq!(voter.endpoints[0].port, 19093);
        assert_eq!(&*voter.endpoints[0].name, "CONTROLLER");
        assert_eq!(loaded.next_offset, 0);
        // --standalone is for controllers only.
        let broker_text = text
            .replace("process.roles=controller", "process.roles=broker")
            .replace(
                "CONTROLLER://127.0.0.1:19093",
                "PLAINTEXT://127.0.0.1:19092",
            );
        let broker = Config::parse(&broker_text).unwrap();
        assert!(format(&broker, &cluster_id, true, &InitialVoters::Standalone).is_err());
    }
}
