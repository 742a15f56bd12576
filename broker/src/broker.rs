//! The state every handler shares: configuration, identity, the current metadata image and
//! the partition logs.

use std::path::Path;
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::cluster::meta_properties::MetaProperties;
use crate::cluster::{self, MetadataImage};
use crate::config::Config;
use crate::storage::LogManager;

/// Why the broker could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The data directory is not usable.
    #[error("data directory {path}: {message}")]
    DataDir {
        /// The directory.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// Replaying the metadata log failed.
    #[error("cannot load the metadata log: {0}")]
    Metadata(String),
    /// Opening the partition logs failed.
    #[error("cannot open the partition logs: {0}")]
    Storage(String),
    /// A listener could not be bound.
    #[error("cannot listen on {address} ({listener}): {source}")]
    Bind {
        /// The listener name.
        listener: String,
        /// The address.
        address: String,
        /// The error.
        source: std::io::Error,
    },
}

/// Shared broker state.
pub struct Broker {
    /// The configuration.
    pub config: Config,
    /// This node's id.
    pub node_id: i32,
    /// The cluster id from `meta.properties`.
    pub cluster_id: String,
    /// The partition logs.
    pub logs: LogManager,
    image: ArcSwap<MetadataImage>,
}

impl Broker {
    /// Opens the data directory: `meta.properties` (written on first start, as
    /// `kafka-storage.sh format` would), the metadata log, and the partition logs.
    pub fn open(config: Config) -> Result<Arc<Broker>, StartError> {
        let dir = config.primary_log_dir().to_path_buf();
        let data_dir_error = |message: String| StartError::DataDir {
            path: dir.display().to_string(),
            message,
        };
        std::fs::create_dir_all(&dir).map_err(|e| data_dir_error(e.to_string()))?;
        // Like `kafka-storage.sh format` on first start; node.id must match afterwards.
        let (meta, formatted) = MetaProperties::load_or_format(&dir, config.node_id, None)
            .map_err(|e| data_dir_error(e.to_string()))?;
        if formatted {
            tracing::info!(
                "formatted {} with new cluster id {}",
                dir.display(),
                meta.cluster_id
            );
        }
        let loaded =
            cluster::replay::load(&dir).map_err(|e| StartError::Metadata(e.to_string()))?;
        if let Some((file, position)) = &loaded.truncate_at {
            tracing::warn!(
                "metadata log {} ends with a torn batch at byte {position}; records after it are ignored",
                file.display()
            );
        }
        let logs =
            LogManager::open(&config.log_dirs).map_err(|e| StartError::Storage(e.to_string()))?;
        Ok(Arc::new(Broker {
            node_id: config.node_id,
            cluster_id: meta.cluster_id.clone(),
            config,
            logs,
            image: ArcSwap::from_pointee(loaded.image),
        }))
    }

    /// The current metadata image.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.image.load_full()
    }

    /// The host and port clients should use, for the listener a request arrived on.
    pub fn advertised_endpoint(&self, listener: &str) -> (String, u16) {
        let advertised = self
            .config
            .advertised_listener_for(listener)
            .or_else(|| self.config.broker_listeners().next());
        match advertised {
            Some(l) if !l.host.is_empty() => (l.host.clone(), l.port),
            Some(l) => ("localhost".to_string(), l.port),
            None => ("localhost".to_string(), 9092),
        }
    }

    /// The data directory holding the metadata log and `meta.properties`.
    pub fn data_dir(&self) -> &Path {
        self.config.primary_log_dir()
    }
}
