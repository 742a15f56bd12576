//! `gregorctl topics create|delete|list|alter`, with kafka-topics.sh's flags.

use gregor_protocol::error_code::{TOPIC_ALREADY_EXISTS, UNKNOWN_TOPIC_OR_PARTITION};
use gregor_protocol::messages::create_partitions_request::{
    CreatePartitionsRequest, CreatePartitionsTopic,
};
use gregor_protocol::messages::create_topics_request::{
    CreatableTopic, CreatableTopicConfig, CreateTopicsRequest,
};
use gregor_protocol::messages::delete_topics_request::{DeleteTopicState, DeleteTopicsRequest};
use serde::Serialize;

use super::{Context, parse_key_value};
use crate::client::{Error, Result};
use crate::output::{self, kafka_uuid};

/// The topic subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Create a topic (CreateTopics).
    Create(CreateArgs),
    /// Delete a topic (DeleteTopics).
    Delete(DeleteArgs),
    /// List topic names (Metadata).
    List(ListArgs),
    /// Increase a topic's partition count (CreatePartitions).
    Alter(AlterArgs),
}

/// `topics create`.
#[derive(clap::Args, Debug)]
pub struct CreateArgs {
    /// The topic name.
    #[arg(long)]
    pub topic: String,
    /// Number of partitions (-1: the broker's num.partitions).
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub partitions: i32,
    /// Replication factor (-1: the broker's default.replication.factor).
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub replication_factor: i16,
    /// A topic config as KEY=VALUE (repeatable).
    #[arg(long = "config", value_name = "KEY=VALUE")]
    pub configs: Vec<String>,
    /// Succeed without doing anything when the topic exists.
    #[arg(long)]
    pub if_not_exists: bool,
    /// Ask the broker to validate only, without creating.
    #[arg(long)]
    pub validate_only: bool,
}

/// `topics delete`.
#[derive(clap::Args, Debug)]
pub struct DeleteArgs {
    /// The topic name.
    #[arg(long)]
    pub topic: String,
    /// Succeed without doing anything when the topic does not exist.
    #[arg(long)]
    pub if_exists: bool,
}

/// `topics list`.
#[derive(clap::Args, Debug)]
pub struct ListArgs {
    /// Leave out internal topics (`__consumer_offsets`, ...).
    #[arg(long)]
    pub exclude_internal: bool,
}

/// `topics alter`.
#[derive(clap::Args, Debug)]
pub struct AlterArgs {
    /// The topic name.
    #[arg(long)]
    pub topic: String,
    /// The new (larger) partition count.
    #[arg(long)]
    pub partitions: i32,
}

/// Runs a topic subcommand.
pub async fn run(context: &Context, command: &Command) -> Result<()> {
    match command {
        Command::Create(args) => create(context, args).await,
        Command::Delete(args) => delete(context, args).await,
        Command::List(args) => list(context, args).await,
        Command::Alter(args) => alter(context, args).await,
    }
}

async fn create(context: &Context, args: &CreateArgs) -> Result<()> {
    let cluster = context.cluster().await?;
    let mut configs = Vec::new();
    for item in &args.configs {
        let (name, value) = parse_key_value(item)?;
        configs.push(CreatableTopicConfig {
            name: name.into(),
            value: Some(value.into()),
            ..Default::default()
        });
    }
    let request = CreateTopicsRequest {
        topics: vec![CreatableTopic {
            name: args.topic.as_str().into(),
            num_partitions: args.partitions,
            replication_factor: args.replication_factor,
            configs,
            ..Default::default()
        }],
        timeout_ms: context
            .options
            .request_timeout
            .as_millis()
            .min(i32::MAX as u128) as i32,
        validate_only: args.validate_only,
        ..Default::default()
    };
    let response = cluster.any().send(&request).await?;
    let Some(result) = response.topics.first() else {
        return Err(Error::Protocol(
            "CreateTopics answered without a topic".into(),
        ));
    };
    if result.error_code == TOPIC_ALREADY_EXISTS && args.if_not_exists {
        if context.json {
            return output::json_pretty(&response);
        }
        return output::line(&format!("Topic {} already exists.", args.topic));
    }
    Error::check(result.error_code, result.error_message.as_deref(), || {
        format!("create topic {:?}", args.topic)
    })?;
    if context.json {
        return output::json_pretty(&response);
    }
    let verb = if args.validate_only {
        "Validated"
    } else {
        "Created"
    };
    output::line(&format!(
        "{verb} topic {} (id {}, {} partitions, replication factor {}).",
        args.topic,
        kafka_uuid(&result.topic_id),
        result.num_partitions,
        result.replication_factor
    ))
}

async fn delete(context: &Context, args: &DeleteArgs) -> Result<()> {
    let cluster = context.cluster().await?;
    let connection = cluster.any();
    let version = connection.version(gregor_protocol::ApiKey::DeleteTopics)?;
    let request = if version >= 6 {
        DeleteTopicsRequest {
            topics: vec![DeleteTopicState {
                name: Some(args.topic.as_str().into()),
                ..Default::default()
            }],
            ..Default::default()
        }
    } else {
        DeleteTopicsRequest {
            topic_names: vec![args.topic.as_str().into()],
            ..Default::default()
        }
    };
    let request = DeleteTopicsRequest {
        timeout_ms: context
            .options
            .request_timeout
            .as_millis()
            .min(i32::MAX as u128) as i32,
        ..request
    };
    let response = connection
        .dispatch_at(&request, version)
        .await?
        .wait()
        .await?;
    let Some(result) = response.responses.first() else {
        return Err(Error::Protocol(
            "DeleteTopics answered without a topic".into(),
        ));
    };
    if result.error_code == UNKNOWN_TOPIC_OR_PARTITION && args.if_exists {
        if context.json {
            return output::json_pretty(&response);
        }
        return output::line(&format!("Topic {} does not exist.", args.topic));
    }
    Error::check(result.error_code, result.error_message.as_deref(), || {
        format!("delete topic {:?}", args.topic)
    })?;
    if context.json {
        return output::json_pretty(&response);
    }
    output::line(&format!("Deleted topic {}.", args.topic))
}

/// One line of `topics list --json`.
#[derive(Serialize)]
struct ListedTopic<'a> {
    name: &'a str,
    topic_id: String,
    partitions: usize,
    internal: bool,
}

async fn list(context: &Context, args: &ListArgs) -> Result<()> {
    let cluster = context.cluster().await?;
    let response = cluster.metadata(None).await?;
    let mut topics: Vec<_> = response
        .topics
        .iter()
        .filter(|t| !(args.exclude_internal && t.is_internal))
        .filter_map(|t| t.name.as_deref().map(|name| (name, t)))
        .collect();
    topics.sort_by(|a, b| a.0.cmp(b.0));
    if context.json {
        let listed: Vec<ListedTopic<'_>> = topics
            .iter()
            .map(|(name, t)| ListedTopic {
                name,
                topic_id: kafka_uuid(&t.topic_id),
                partitions: t.partitions.len(),
                internal: t.is_internal,
            })
            .collect();
        return output::json_pretty(&listed);
    }
    // Like kafka-topics.sh --list: one name per line.
    for (name, _) in topics {
        output::line(name)?;
    }
    Ok(())
}

async fn alter(context: &Context, args: &AlterArgs) -> Result<()> {
    let cluster = context.cluster().await?;
    let request = CreatePartitionsRequest {
        topics: vec![CreatePartitionsTopic {
            name: args.topic.as_str().into(),
            count: args.partitions,
            assignments: None,
            ..Default::default()
        }],
        timeout_ms: context
            .options
            .request_timeout
            .as_millis()
            .min(i32::MAX as u128) as i32,
        ..Default::default()
    };
    let response = cluster.any().send(&request).await?;
    for result in &response.results {
        Error::check(result.error_code, result.error_message.as_deref(), || {
            format!(
                "alter topic {:?} to {} partitions",
                args.topic, args.partitions
            )
        })?;
    }
    if context.json {
        return output::json_pretty(&response);
    }
    output::line(&format!(
        "Topic {} now has {} partitions.",
        args.topic, args.partitions
    ))
}
