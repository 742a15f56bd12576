//! `<log.dir>/meta.properties`: the identity of a formatted data directory, as Kafka's
//! `kafka-storage.sh format` writes it.
//!
//! ```text
//! #
//! #Tue Jan 09 10:00:00 UTC 2024
//! cluster.id=4L6g3nShT-eMCtK--X86sw
//! directory.id=ZeFpGo4wQvS7tmAXJHVlkg
//! node.id=1
//! version=1
//! ```
//!
//! Only version 1 (KRaft) is accepted; version 0 is what ZooKeeper-mode brokers wrote (the
//! version is 0 when the key is missing) and a KRaft broker cannot use it. Kafka's UUIDs are
//! written as the URL-safe base64 of their 16 bytes without padding (22 characters):
//! [`uuid_to_base64`] and [`uuid_from_base64`] convert, [`random_uuid`] and
//! [`random_cluster_id`] generate them as `kafka-storage.sh random-uuid` does.

use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use uuid::Uuid;

/// Name of the file in every log directory.
pub const META_PROPERTIES_FILE: &str = "meta.properties";

/// The only `version` a KRaft node reads and writes.
pub const META_PROPERTIES_VERSION: i32 = 1;

/// Kafka's reserved id of the `__cluster_metadata` topic (`Uuid.METADATA_TOPIC_ID`, which
/// prints as `AAAAAAAAAAAAAAAAAAAAAQ`); never handed out by [`random_uuid`].
pub const METADATA_TOPIC_ID: Uuid = Uuid::from_u64_pair(0, 1);

/// Kafka's text form of a UUID (see [`gregor_protocol::uuid_text`]).
pub fn uuid_to_base64(id: Uuid) -> String {
    gregor_protocol::uuid_text::to_text(&id)
}

/// A string that is not Kafka's base64 form of a UUID.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Base64UuidError(#[from] pub gregor_protocol::uuid_text::UuidTextError);

/// Parses Kafka's text form of a UUID (see [`gregor_protocol::uuid_text::parse`]).
pub fn uuid_from_base64(text: &str) -> Result<Uuid, Base64UuidError> {
    Ok(gregor_protocol::uuid_text::parse(text)?)
}

/// A random UUID as Kafka's `Uuid.randomUuid` makes them: version 4, never one of the
/// reserved ids (nil, [`METADATA_TOPIC_ID`]) and never one whose text starts with `-` (which
/// command-line tools would take for an option).
pub fn random_uuid() -> Uuid {
    loop {
        let id = Uuid::new_v4();
        if id != Uuid::nil() && id != METADATA_TOPIC_ID && !uuid_to_base64(id).starts_with('-') {
            return id;
        }
    }
}

/// A fresh cluster id, as `kafka-storage.sh random-uuid` prints it.
pub fn random_cluster_id() -> String {
    uuid_to_base64(random_uuid())
}

/// Everything that can go wrong reading, writing or checking `meta.properties`.
#[derive(Debug, thiserror::Error)]
pub enum MetaPropertiesError {
    /// The file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file (or directory) involved.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The file is not a valid version 1 `meta.properties`.
    #[error("{}: {reason}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The stored node id is not the configured `node.id` (Kafka refuses to start too).
    #[error(
        "stored node id {stored} doesn't match the configured node.id {configured} in {}. If you \
         moved your data, make sure your configured node id matches. If you intend to create a \
         new node, you should remove all data in your data directories.",
        path.display()
    )]
    NodeIdMismatch {
        /// The file.
        path: PathBuf,
        /// `node.id` in the file.
        stored: i32,
        /// `node.id` of the configuration.
        configured: i32,
    },
    /// The stored cluster id is not the expected one (another log directory's, say).
    #[error("{}: cluster id {stored} doesn't match the expected cluster id {expected}", path.display())]
    ClusterIdMismatch {
        /// The file.
        path: PathBuf,
        /// `cluster.id` in the file.
        stored: String,
        /// The cluster id it should have.
        expected: String,
    },
}

/// The contents of `meta.properties` (version 1, KRaft).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetaProperties {
    /// `version`: always [`META_PROPERTIES_VERSION`] once parsed.
    pub version: i32,
    /// `cluster.id`: the cluster's id, normally a base64 UUID (see [`Self::cluster_uuid`]).
    pub cluster_id: String,
    /// `node.id`: must equal the configured `node.id`.
    pub node_id: i32,
    /// `directory.id`: this log directory's id, if the file has one (Kafka 3.7+ writes it).
    pub directory_id: Option<Uuid>,
}

impl MetaProperties {
    /// Version 1 properties for `cluster_id` and `node_id`, with a random directory id.
    pub fn new(cluster_id: impl Into<String>, node_id: i32) -> MetaProperties {
        MetaProperties {
            version: META_PROPERTIES_VERSION,
            cluster_id: cluster_id.into(),
            node_id,
            directory_id: Some(random_uuid()),
        }
    }

    /// Properties for a brand new cluster: a random cluster id and directory id.
    pub fn generate(node_id: i32) -> MetaProperties {
        MetaProperties::new(random_cluster_id(), node_id)
    }

    /// The cluster id as a UUID (fails for a cluster id that is not a base64 UUID).
    pub fn cluster_uuid(&self) -> Result<Uuid, Base64UuidError> {
        uuid_from_base64(&self.cluster_id)
    }

    /// Parses the text of a `meta.properties` file (Java properties syntax).
    pub fn parse(text: &str) -> Result<MetaProperties, MetaPropertiesError> {
        MetaProperties::parse_at(text.as_bytes(), Path::new(META_PROPERTIES_FILE))
    }

    /// Parses the bytes of a file (ISO-8859-1 with `\uXXXX` escapes, as Java reads them).
    fn parse_at(bytes: &[u8], path: &Path) -> Result<MetaProperties, MetaPropertiesError> {
        let invalid = |reason: String| MetaPropertiesError::Invalid {
            path: path.to_path_buf(),
            reason,
        };
        let props: HashMap<String, String> = java_properties::read(bytes)
            .map_err(|e| invalid(format!("not a properties file: {e}")))?;
        // Numbers and UUIDs are trimmed; the cluster id is kept exactly as Java reads it.
        let get = |key: &str| props.get(key).map(|v| v.trim());
        let version = match get("version") {
            None => 0,
            Some(v) => v
                .parse::<i32>()
                .map_err(|_| invalid(format!("version {v:?} is not an integer")))?,
        };
        match version {
            META_PROPERTIES_VERSION => {}
            0 => {
                return Err(invalid(
                    "version 0 (ZooKeeper mode) is not supported: a KRaft node needs version 1"
                        .to_string(),
                ));
            }
            other => return Err(invalid(format!("unknown meta.properties version {other}"))),
        }
        let cluster_id = props
            .get("cluster.id")
            .filter(|v| !v.is_empty())
            .ok_or_else(|| invalid("cluster.id was not found".to_string()))?
            .to_string();
        let node_id = get("node.id").ok_or_else(|| invalid("node.id was not found".to_string()))?;
        let node_id = node_id
            .parse::<i32>()
            .map_err(|_| invalid(format!("failed to parse node.id {node_id:?} as an int")))?;
        let directory_id = match get("directory.id") {
            None => None,
            Some(text) => {
                Some(uuid_from_base64(text).map_err(|e| invalid(format!("directory.id: {e}")))?)
            }
        };
        Ok(MetaProperties {
            version,
            cluster_id,
            node_id,
            directory_id,
        })
    }

    /// The file's text as Kafka writes it (`Properties.store`): a comment header, then the
    /// keys in order, with Java's escapes (characters outside printable ASCII as `\uXXXX`;
    /// characters beyond the Basic Multilingual Plane become surrogate pairs, as in Java,
    /// which the `java-properties` reader does not read back: cluster ids are ASCII).
    pub fn to_properties_string(&self) -> String {
        let mut text = String::from("#\n#Written by gregor\n");
        let mut entry = |key: &str, value: &str| {
            escape_into(&mut text, key, true);
            text.push('=');
            escape_into(&mut text, value, false);
            text.push('\n');
        };
        entry("cluster.id", &self.cluster_id);
        if let Some(id) = self.directory_id {
            entry("directory.id", &uuid_to_base64(id));
        }
        entry("node.id", &self.node_id.to_string());
        entry("version", &self.version.to_string());
        text
    }

    /// Reads and parses the file at `path`.
    pub fn read_file(path: &Path) -> Result<MetaProperties, MetaPropertiesError> {
        let bytes = fs::read(path).map_err(|source| MetaPropertiesError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        MetaProperties::parse_at(&bytes, path)
    }

    /// Reads `<log_dir>/meta.properties`; `None` if the file does not exist (an unformatted
    /// directory).
    pub fn read(log_dir: &Path) -> Result<Option<MetaProperties>, MetaPropertiesError> {
        let path = log_dir.join(META_PROPERTIES_FILE);
        match fs::metadata(&path) {
            Ok(_) => MetaProperties::read_file(&path).map(Some),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(MetaPropertiesError::Io { path, source }),
        }
    }

    /// Writes `<log_dir>/meta.properties` as Kafka does: to a temporary file that is synced
    /// and then renamed over the old one, then syncs the directory. Creates `log_dir` if
    /// needed.
    pub fn write(&self, log_dir: &Path) -> Result<(), MetaPropertiesError> {
        let io_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| MetaPropertiesError::Io { path, source }
        };
        fs::create_dir_all(log_dir).map_err(io_err(log_dir))?;
        let path = log_dir.join(META_PROPERTIES_FILE);
        let tmp = log_dir.join(format!("{META_PROPERTIES_FILE}.tmp"));
        {
            let mut file = fs::File::create(&tmp).map_err(io_err(&tmp))?;
            file.write_all(self.to_properties_string().as_bytes())
                .map_err(io_err(&tmp))?;
            file.sync_all().map_err(io_err(&tmp))?;
        }
        fs::rename(&tmp, &path).map_err(io_err(&path))?;
        // Make the rename durable; directories cannot be opened for syncing everywhere.
        if let Ok(dir) = fs::File::open(log_dir) {
            let _ = dir.sync_all();
        }
        Ok(())
    }

    /// Fails unless the stored `node.id` is `configured` (`path` names the file in the error).
    pub fn check_node_id(&self, configured: i32, path: &Path) -> Result<(), MetaPropertiesError> {
        if self.node_id != configured {
            return Err(MetaPropertiesError::NodeIdMismatch {
                path: path.to_path_buf(),
                stored: self.node_id,
                configured,
            });
        }
        Ok(())
    }

    /// Opens a log directory at start-up: reads `meta.properties` and checks its node id (and
    /// cluster id, when `cluster_id` is given), or, when the directory is not formatted yet,
    /// formats it: writes version 1 properties with `cluster_id` (or a random one) and a
    /// random directory id. Returns the properties and whether they were just written.
    pub fn load_or_format(
        log_dir: &Path,
        node_id: i32,
        cluster_id: Option<&str>,
    ) -> Result<(MetaProperties, bool), MetaPropertiesError> {
        let path = log_dir.join(META_PROPERTIES_FILE);
        if let Some(meta) = MetaProperties::read(log_dir)? {
            meta.check_node_id(node_id, &path)?;
            if let Some(expected) = cluster_id
                && meta.cluster_id != expected
            {
                return Err(MetaPropertiesError::ClusterIdMismatch {
                    path,
                    stored: meta.cluster_id,
                    expected: expected.to_string(),
                });
            }
            return Ok((meta, false));
        }
        let meta = match cluster_id {
            Some(id) => MetaProperties::new(id, node_id),
            None => MetaProperties::generate(node_id),
        };
        meta.write(log_dir)?;
        Ok((meta, true))
    }
}

/// Appends `s` with the escapes of Java's `Properties.store` (every space in a key, a leading
/// space in a value, separators, comment characters, control and non-ASCII characters).
fn escape_into(out: &mut String, s: &str, is_key: bool) {
    for (i, c) in s.chars().enumerate() {
        match c {
            ' ' if is_key || i == 0 => out.push_str("\\ "),
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\x0c' => out.push_str("\\f"),
            '=' | ':' | '#' | '!' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04X}"));
                }
            }
        }
    }
}

impl fmt::Display for MetaProperties {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cluster.id={} node.id={}", self.cluster_id, self.node_id)?;
        if let Some(id) = self.directory_id {
            write!(f, " directory.id={}", uuid_to_base64(id))?;
        }
        Ok(())
    }
}
