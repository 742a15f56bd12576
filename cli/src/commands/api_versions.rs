//! `gregorctl api-versions`: what the broker supports, and the version gregorctl picks.

use gregor_protocol::ApiKey;

use super::Context;
use crate::client::negotiate::{client_range, pick};
use crate::client::{Connection, Result};
use crate::output::{self, Table};

/// Prints the bootstrap broker's ApiVersions answer.
pub async fn run(context: &Context) -> Result<()> {
    let cluster = context.cluster().await?;
    let connection: &Connection = cluster.any();
    let versions = connection.versions();
    if context.json {
        return output::json_pretty(&versions.response);
    }
    output::line(&format!(
        "{} answered ApiVersions v{}",
        connection.addr(),
        versions.api_versions_version
    ))?;
    let mut table = Table::new(&["API", "KEY", "BROKER", "GREGORCTL", "USED"]);
    for key in &versions.response.api_keys {
        let broker = format!("{}-{}", key.min_version, key.max_version);
        let (name, ours, used) = match ApiKey::from_i16(key.api_key) {
            Some(api) => {
                let ours = client_range(api);
                let theirs = versions.broker_range(api);
                let used = match pick(ours, theirs) {
                    Ok(v) => v.to_string(),
                    Err(_) => "none".into(),
                };
                (
                    api.name().to_string(),
                    format!("{}-{}", ours.min, ours.max),
                    used,
                )
            }
            None => ("(unknown)".into(), "-".into(), "-".into()),
        };
        table.row(vec![name, key.api_key.to_string(), broker, ours, used]);
    }
    table.print()?;
    for feature in &versions.response.finalized_features {
        output::line(&format!(
            "finalized feature {} = {}",
            feature.name, feature.max_version_level
        ))?;
    }
    Ok(())
}
