//! The cluster as a client sees it: bootstrap from `--bootstrap-server`, Metadata, one
//! connection per broker id (opened on first use), and the leader of each partition, so
//! Produce, Fetch and ListOffsets go to the broker that leads the partition.

use gregor_protocol::error_code::{LEADER_NOT_AVAILABLE, UNKNOWN_TOPIC_OR_PARTITION};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use gregor_protocol::Uuid;
use gregor_protocol::messages::metadata_request::{MetadataRequest, MetadataRequestTopic};
use gregor_protocol::messages::metadata_response::MetadataResponse;
use tokio::sync::Mutex;

use super::connection::{ConnectOptions, Connection};
use super::{Error, Result};

/// How long [`Cluster::topic_for_writing`] waits for an auto-created topic to appear.
const CREATION_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// A partition as Metadata describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionInfo {
    /// The partition index.
    pub index: i32,
    /// The leader's broker id (-1 without one).
    pub leader: i32,
    /// The leader epoch.
    pub leader_epoch: i32,
    /// The partition's error code in the Metadata response.
    pub error_code: i16,
}

/// A topic as Metadata describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicInfo {
    /// The name.
    pub name: String,
    /// The topic id (nil before Metadata v10).
    pub id: Uuid,
    /// The partitions by index.
    pub partitions: BTreeMap<i32, PartitionInfo>,
}

/// What the client knows of the cluster.
#[derive(Clone, Debug, Default)]
struct Known {
    /// Broker id to `host:port`.
    brokers: BTreeMap<i32, String>,
    topics: BTreeMap<String, TopicInfo>,
}

/// Connections to a cluster, routed by Metadata.
pub struct Cluster {
    options: ConnectOptions,
    bootstrap: Arc<Connection>,
    connections: Mutex<HashMap<i32, Arc<Connection>>>,
    known: RwLock<Known>,
}

impl Cluster {
    /// Connects to the first reachable address of `bootstrap_servers` (comma-separated
    /// `host:port` list); the error of the last one tried otherwise.
    pub async fn connect(bootstrap_servers: &str, options: ConnectOptions) -> Result<Cluster> {
        let mut last = None;
        for addr in bootstrap_servers
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
        {
            let addr = if addr.contains(':') {
                addr.to_string()
            } else {
                format!("{addr}:9092")
            };
            match Connection::connect(&addr, &options).await {
                Ok(connection) => {
                    return Ok(Cluster {
                        options,
                        bootstrap: Arc::new(connection),
                        connections: Mutex::default(),
                        known: RwLock::default(),
                    });
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::Usage("--bootstrap-server is empty".into())))
    }

    /// The bootstrap connection (for requests any broker answers).
    pub fn any(&self) -> &Arc<Connection> {
        &self.bootstrap
    }

    /// Sends Metadata for `topics` (every topic for `None`) and remembers the answer. Never
    /// creates a topic (from v4 on, where the request can say so).
    pub async fn metadata(&self, topics: Option<&[String]>) -> Result<MetadataResponse> {
        self.metadata_request(topics, false).await
    }

    /// Sends Metadata for `topics` with `allow_auto_topic_creation` as given (before v4 every
    /// Metadata request allows it), and remembers the answer.
    async fn metadata_request(
        &self,
        topics: Option<&[String]>,
        allow_auto_topic_creation: bool,
    ) -> Result<MetadataResponse> {
        let connection = &self.bootstrap;
        let version = connection.version(gregor_protocol::ApiKey::Metadata)?;
        let request = MetadataRequest {
            topics: match topics {
                None if version == 0 => Some(Vec::new()),
                None => None,
                Some(names) => Some(
                    names
                        .iter()
                        .map(|name| MetadataRequestTopic {
                            name: Some(name.as_str().into()),
                            ..Default::default()
                        })
                        .collect(),
                ),
            },
            allow_auto_topic_creation: allow_auto_topic_creation || version < 4,
            ..Default::default()
        };
        let response = connection
            .dispatch_at(&request, version)
            .await?
            .wait()
            .await?;
        self.remember(&response, topics.is_none());
        Ok(response)
    }

    fn remember(&self, response: &MetadataResponse, all_topics: bool) {
        let mut known = self.known.write().unwrap_or_else(|e| e.into_inner());
        known.brokers = response
            .brokers
            .iter()
            .map(|b| (b.node_id, format!("{}:{}", b.host, b.port)))
            .collect();
        if all_topics {
            known.topics.clear();
        }
        for topic in &response.topics {
            let Some(name) = topic.name.as_deref() else {
                continue;
            };
            if topic.error_code != 0 {
                known.topics.remove(name);
                continue;
            }
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    (
                        p.partition_index,
                        PartitionInfo {
                            index: p.partition_index,
                            leader: p.leader_id,
                            leader_epoch: p.leader_epoch,
                            error_code: p.error_code,
                        },
                    )
                })
                .collect();
            known.topics.insert(
                name.to_string(),
                TopicInfo {
                    name: name.to_string(),
                    id: topic.topic_id,
                    partitions,
                },
            );
        }
    }

    /// The topic, from Metadata (asked again with `refresh`); UNKNOWN_TOPIC_OR_PARTITION
    /// (or the broker's error for it) when it does not exist.
    pub async fn topic(&self, name: &str, refresh: bool) -> Result<TopicInfo> {
        if !refresh {
            if let Some(topic) = self.known_topic(name) {
                return Ok(topic);
            }
        }
        let response = self.metadata(Some(&[name.to_string()])).await?;
        if let Some(topic) = response
            .topics
            .iter()
            .find(|t| t.name.as_deref() == Some(name))
        {
            Error::check(topic.error_code, None, || format!("topic {name:?}"))?;
        }
        self.known_topic(name).ok_or_else(|| Error::Kafka {
            context: format!("topic {name:?}"),
            code: UNKNOWN_TOPIC_OR_PARTITION,
            message: None,
        })
    }

    /// The topic to write to, as Kafka's producers look it up: Metadata with
    /// `allow_auto_topic_creation=true`, so a broker with `auto.create.topics.enable=true`
    /// creates it (a Produce never does), asked again while the answer is retriable
    /// (LEADER_NOT_AVAILABLE while a new topic gets its leaders, for at most the request
    /// timeout, as the Java producer waits up to `max.block.ms`; UNKNOWN_TOPIC_OR_PARTITION
    /// for at most [`CREATION_GRACE`], the time a creation takes to reach the broker's
    /// metadata, so a broker that does not auto-create gets a prompt error).
    pub async fn topic_for_writing(&self, name: &str) -> Result<TopicInfo> {
        if let Some(topic) = self.known_topic(name) {
            return Ok(topic);
        }
        let started = tokio::time::Instant::now();
        let deadline = started + self.options.request_timeout;
        let names = [name.to_string()];
        loop {
            let response = self.metadata_request(Some(&names), true).await?;
            let error = response
                .topics
                .iter()
                .find(|t| t.name.as_deref() == Some(name))
                .map_or(UNKNOWN_TOPIC_OR_PARTITION, |t| t.error_code);
            let leaderless = self
                .known_topic(name)
                .is_some_and(|t| t.partitions.values().any(|p| p.leader < 0));
            let retriable = match error {
                LEADER_NOT_AVAILABLE => true,
                UNKNOWN_TOPIC_OR_PARTITION => started.elapsed() < CREATION_GRACE,
                0 => leaderless,
                _ => false,
            };
            if !retriable || tokio::time::Instant::now() >= deadline {
                Error::check(error, None, || format!("topic {name:?}"))?;
                return self.known_topic(name).ok_or_else(|| Error::Kafka {
                    context: format!("topic {name:?}"),
                    code: UNKNOWN_TOPIC_OR_PARTITION,
                    message: None,
                });
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    fn known_topic(&self, name: &str) -> Option<TopicInfo> {
        self.known
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .topics
            .get(name)
            .cloned()
    }

    /// The name of the topic with this id, if Metadata listed it.
    pub fn topic_name(&self, id: &Uuid) -> Option<String> {
        self.known
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .topics
            .values()
            .find(|t| t.id == *id)
            .map(|t| t.name.clone())
    }

    /// The connection to broker `node_id` (opened on first use, from Metadata's address;
    /// the bootstrap connection when the address is the same).
    pub async fn broker(&self, node_id: i32) -> Result<Arc<Connection>> {
        let mut connections = self.connections.lock().await;
        if let Some(connection) = connections.get(&node_id) {
            return Ok(connection.clone());
        }
        let addr = self
            .known
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .brokers
            .get(&node_id)
            .cloned();
        let addr = match addr {
            Some(addr) => addr,
            None => {
                drop(connections);
                self.metadata(Some(&[])).await?;
                connections = self.connections.lock().await;
                self.known
                    .read()
                    .unwrap_or_else(|e| e.into_inner())
                    .brokers
                    .get(&node_id)
                    .cloned()
                    .ok_or_else(|| {
                        Error::Protocol(format!("broker {node_id} is not in the metadata"))
                    })?
            }
        };
        let connection = if addr == self.bootstrap.addr() {
            self.bootstrap.clone()
        } else {
            Arc::new(Connection::connect(&addr, &self.options).await?)
        };
        connections.insert(node_id, connection.clone());
        Ok(connection)
    }

    /// A new connection to broker `node_id`, not shared (the load generator spreads its
    /// load over several).
    pub async fn new_connection(&self, node_id: i32) -> Result<Connection> {
        let addr = self
            .known
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .brokers
            .get(&node_id)
            .cloned()
            .ok_or_else(|| Error::Protocol(format!("broker {node_id} is not in the metadata")))?;
        Connection::connect(&addr, &self.options).await
    }

    /// Groups partitions of `topic` by their leader.
    pub async fn partitions_by_leader(
        &self,
        topic: &str,
        partitions: &[i32],
    ) -> Result<BTreeMap<i32, Vec<i32>>> {
        let info = self.topic(topic, false).await?;
        let mut by_leader: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
        for &partition in partitions {
            let leader = info.partitions.get(&partition).map(|p| p.leader);
            match leader {
                Some(leader) if leader >= 0 => by_leader.entry(leader).or_default().push(partition),
                Some(_) => {
                    return Err(Error::Kafka {
                        context: format!("partition {topic}-{partition}"),
                        code: 5,
                        message: None,
                    });
                }
                None => {
                    return Err(Error::Kafka {
                        context: format!("partition {topic}-{partition}"),
                        code: 3,
                        message: None,
                    });
                }
            }
        }
        Ok(by_leader)
    }
}
