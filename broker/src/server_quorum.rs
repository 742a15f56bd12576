//! Start-up of a cluster controller's metadata quorum (`Config::is_cluster` with the
//! `controller` role), before the broker opens: Kafka's `KafkaRaftServer` starts its
//! `RaftManager` before the controller and broker on top of it. The quorum's voters are
//! `controller.quorum.voters` (static), or those of its log (KIP-853: the bootstrap
//! snapshot `gregor format` wrote, then `VotersRecord`s); its RPCs are served on the controller listener
//! (`connection_quorum.rs`).

use crate::broker::StartError;
use crate::cluster::meta_properties::MetaProperties;
use crate::cluster::quorum::{Quorum, QuorumOptions};
use crate::cluster::storage_tool;
use crate::config::Config;

/// Opens the quorum of a cluster controller; `None` for a single node or a broker-only
/// node. The metadata log directory must be formatted (`gregor format`).
pub async fn open(config: &Config) -> Result<Option<Quorum>, StartError> {
    if !config.is_cluster() || !config.is_controller() {
        return Ok(None);
    }
    let (dir, meta) = formatted_metadata_dir(config).await?;
    if config.controller_quorum_voters.is_empty()
        && config.controller_quorum_bootstrap_servers.is_empty()
    {
        return Err(StartError::Config(
            "a cluster controller needs controller.quorum.voters (a static quorum) or \
             controller.quorum.bootstrap.servers (a dynamic one, formatted with --standalone, \
             --initial-controllers or --no-initial-controllers)"
                .to_string(),
        ));
    }
    let voters = QuorumOptions::voters_from_config(&config.controller_quorum_voters);
    let mut options = QuorumOptions::new(config.node_id, dir.clone(), voters);
    options.cluster_id = Some(meta.cluster_id.clone());
    options.directory_id = meta.directory_id.unwrap_or_default();
    options.log.segment_bytes = config.metadata_log.segment_bytes.max(1) as u64;
    options.log.segment_ms = config.metadata_log.segment_ms;
    // This node's controller endpoint as a voter entry names it (Kafka's
    // `effectiveAdvertisedControllerListeners`, an empty host as localhost).
    options.own_endpoint = config
        .controller_listener_names
        .first()
        .and_then(|name| config.advertised_listener_for(name))
        .map(|l| crate::cluster::quorum::VoterNode {
            directory_id: meta.directory_id.unwrap_or_default(),
            listener: config.controller_listener_names[0].clone(),
            host: if l.host.is_empty() {
                "localhost".to_string()
            } else {
                l.host.clone()
            },
            port: l.port,
        });
    options.connector = crate::security::node_client::NodeConnector::controller(config)
        .map_err(|e| StartError::Config(e.to_string()))?;
    let quorum = Quorum::open(options)
        .await
        .map_err(|e| StartError::Metadata(e.to_string()))?;
    tracing::info!(
        node = config.node_id,
        voters = quorum.voter_nodes().len(),
        kraft_version = quorum.kraft_version(),
        cluster = %meta.cluster_id,
        "opened the metadata quorum"
    );
    Ok(Some(quorum))
}

/// The metadata log directory of a cluster node and its `meta.properties`, which must be
/// there (`gregor format`) and name this node: a cluster node never formats itself.
pub(crate) async fn formatted_metadata_dir(
    config: &Config,
) -> Result<(std::path::PathBuf, MetaProperties), StartError> {
    let dir = config.effective_metadata_log_dir().to_path_buf();
    let read_dir = dir.clone();
    let meta = tokio::task::spawn_blocking(move || MetaProperties::read(&read_dir))
        .await
        .map_err(|e| StartError::Storage(format!("start-up task failed: {e}")))?
        .map_err(|e| StartError::DataDir {
            path: dir.display().to_string(),
            message: e.to_string(),
        })?
        .ok_or_else(|| StartError::DataDir {
            path: dir.display().to_string(),
            message: storage_tool::unformatted_message(&dir),
        })?;
    meta.check_node_id(config.node_id, &dir.join("meta.properties"))
        .map_err(|e| StartError::DataDir {
            path: dir.display().to_string(),
            message: e.to_string(),
        })?;
    Ok((dir, meta))
}
