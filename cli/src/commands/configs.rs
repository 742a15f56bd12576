//! `gregorctl configs describe|alter`, with kafka-configs.sh's flags
//! (`--entity-type`, `--entity-name`, `--add-config`, `--delete-config`).

use gregor_protocol::messages::describe_configs_request::{
    DescribeConfigsRequest, DescribeConfigsResource,
};
use gregor_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig, IncrementalAlterConfigsRequest,
};

use super::{Context, parse_key_value};
use crate::client::{Error, Result};
use crate::output::{self, Table};

/// The config subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Show a topic's or broker's configs (DescribeConfigs).
    Describe(DescribeArgs),
    /// Set or delete configs (IncrementalAlterConfigs).
    Alter(AlterArgs),
}

/// Which resource.
#[derive(clap::Args, Debug)]
pub struct Entity {
    /// topics, brokers, broker-loggers or groups.
    #[arg(long, value_name = "TYPE")]
    pub entity_type: String,
    /// The topic name, broker id, or group id.
    #[arg(long, value_name = "NAME")]
    pub entity_name: String,
}

/// `configs describe`.
#[derive(clap::Args, Debug)]
pub struct DescribeArgs {
    #[command(flatten)]
    entity: Entity,
    /// Also list configs at their defaults.
    #[arg(long)]
    all: bool,
}

/// `configs alter`.
#[derive(clap::Args, Debug)]
pub struct AlterArgs {
    #[command(flatten)]
    entity: Entity,
    /// Configs to set: `k1=v1,k2=[v1,v2]` (brackets group a list value).
    #[arg(long, value_name = "K=V,...")]
    add_config: Option<String>,
    /// Config names to delete (back to their defaults): `k1,k2`.
    #[arg(long, value_name = "K,...", value_delimiter = ',')]
    delete_config: Vec<String>,
    /// Ask the broker to validate only.
    #[arg(long)]
    validate_only: bool,
}

/// Kafka's ConfigResource type for a kafka-configs.sh entity type.
pub fn resource_type(entity_type: &str) -> Result<i8> {
    Ok(match entity_type {
        "topics" | "topic" => 2,
        "brokers" | "broker" => 4,
        "broker-loggers" | "broker-logger" => 8,
        "client-metrics" => 16,
        "groups" | "group" => 32,
        other => {
            return Err(Error::Usage(format!(
                "--entity-type {other:?}: expected topics, brokers, broker-loggers, client-metrics or groups"
            )));
        }
    })
}

/// Kafka's name for a config source.
pub fn source_name(source: i8) -> &'static str {
    match source {
        1 => "DYNAMIC_TOPIC_CONFIG",
        2 => "DYNAMIC_BROKER_CONFIG",
        3 => "DYNAMIC_DEFAULT_BROKER_CONFIG",
        4 => "STATIC_BROKER_CONFIG",
        5 => "DEFAULT_CONFIG",
        6 => "DYNAMIC_BROKER_LOGGER_CONFIG",
        7 => "CLIENT_METRICS_CONFIG",
        8 => "GROUP_CONFIG",
        _ => "UNKNOWN",
    }
}

/// Splits `k1=v1,k2=[a,b]` into pairs; a bracketed value becomes `a,b`.
pub fn parse_config_list(text: &str) -> Result<Vec<(String, String)>> {
    let mut items = Vec::new();
    let mut depth = 0usize;
    let mut current = String::new();
    for c in text.chars() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                items.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    items.push(current);
    items
        .into_iter()
        .filter(|i| !i.trim().is_empty())
        .map(|item| {
            let (key, value) = parse_key_value(&item)?;
            let value = value
                .strip_prefix('[')
                .and_then(|v| v.strip_suffix(']'))
                .map(str::to_string)
                .unwrap_or(value);
            Ok((key, value))
        })
        .collect()
}

/// Runs a config subcommand.
pub async fn run(context: &Context, command: &Command) -> Result<()> {
    match command {
        Command::Describe(args) => describe(context, args).await,
        Command::Alter(args) => alter(context, args).await,
    }
}

async fn describe(context: &Context, args: &DescribeArgs) -> Result<()> {
    let resource_type = resource_type(&args.entity.entity_type)?;
    let cluster = context.cluster().await?;
    let request = DescribeConfigsRequest {
        resources: vec![DescribeConfigsResource {
            resource_type,
            resource_name: args.entity.entity_name.as_str().into(),
            configuration_keys: None,
            ..Default::default()
        }],
        ..Default::default()
    };
    let response = cluster.any().send(&request).await?;
    for result in &response.results {
        Error::check(result.error_code, result.error_message.as_deref(), || {
            format!(
                "describe configs of {} {:?}",
                args.entity.entity_type, args.entity.entity_name
            )
        })?;
    }
    if context.json {
        return output::json_pretty(&response);
    }
    let mut table = Table::new(&["NAME", "VALUE", "SOURCE", "READ-ONLY", "SENSITIVE"]);
    for result in &response.results {
        for config in &result.configs {
            if !args.all && config.config_source == 5 {
                continue;
            }
            let value = if config.is_sensitive {
                "(sensitive)".to_string()
            } else {
                config.value.as_deref().unwrap_or("null").to_string()
            };
            table.row(vec![
                config.name.to_string(),
                value,
                source_name(config.config_source).into(),
                config.read_only.to_string(),
                config.is_sensitive.to_string(),
            ]);
        }
    }
    if table.is_empty() {
        return output::line(&format!(
            "No non-default configs for {} {} (use --all to list every config).",
            args.entity.entity_type, args.entity.entity_name
        ));
    }
    table.print()
}

async fn alter(context: &Context, args: &AlterArgs) -> Result<()> {
    let resource_type = resource_type(&args.entity.entity_type)?;
    let mut configs = Vec::new();
    if let Some(add) = &args.add_config {
        for (name, value) in parse_config_list(add)? {
            configs.push(AlterableConfig {
                name: name.into(),
                config_operation: 0,
                value: Some(value.into()),
                ..Default::default()
            });
        }
    }
    for name in args.delete_config.iter().filter(|n| !n.trim().is_empty()) {
        configs.push(AlterableConfig {
            name: name.trim().into(),
            config_operation: 1,
            value: None,
            ..Default::default()
        });
    }
    if configs.is_empty() {
        return Err(Error::Usage(
            "nothing to alter: give --add-config and/or --delete-config".into(),
        ));
    }
    let cluster = context.cluster().await?;
    let request = IncrementalAlterConfigsRequest {
        resources: vec![AlterConfigsResource {
            resource_type,
            resource_name: args.entity.entity_name.as_str().into(),
            configs,
            ..Default::default()
        }],
        validate_only: args.validate_only,
        ..Default::default()
    };
    let response = cluster.any().send(&request).await?;
    for result in &response.responses {
        Error::check(result.error_code, result.error_message.as_deref(), || {
            format!(
                "alter configs of {} {:?}",
                args.entity.entity_type, args.entity.entity_name
            )
        })?;
    }
    if context.json {
        return output::json_pretty(&response);
    }
    output::line(&format!(
        "Completed updating config for {} {}.",
        args.entity.entity_type, args.entity.entity_name
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_lists_split_outside_brackets() {
        assert_eq!(
            parse_config_list("retention.ms=1000,cleanup.policy=[compact,delete]").unwrap(),
            vec![
                ("retention.ms".into(), "1000".into()),
                ("cleanup.policy".into(), "compact,delete".into())
            ]
        );
        assert!(parse_config_list("oops").is_err());
        assert_eq!(resource_type("topics").unwrap(), 2);
        assert!(resource_type("tables").is_err());
    }
}
