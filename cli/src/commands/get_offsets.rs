//! `gregorctl get-offsets --topic T [--partitions 0,1] [--time latest]`, like
//! kafka-get-offsets.sh: one `topic:partition:offset` line per partition.

use serde::Serialize;

use super::{Context, list_offsets, parse_time, select_partitions};
use crate::client::Result;
use crate::output;

/// Arguments.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The topic.
    #[arg(long)]
    pub topic: String,
    /// Only these partitions (comma-separated); all by default.
    #[arg(long, value_delimiter = ',')]
    pub partitions: Vec<i32>,
    /// earliest, latest, max-timestamp, or a timestamp in milliseconds.
    #[arg(long, default_value = "latest", allow_hyphen_values = true)]
    pub time: String,
}

#[derive(Serialize)]
struct Line<'a> {
    topic: &'a str,
    partition: i32,
    offset: i64,
    timestamp: i64,
}

/// Prints the offsets.
pub async fn run(context: &Context, args: &Args) -> Result<()> {
    let time = parse_time(&args.time)?;
    let cluster = context.cluster().await?;
    let topic = cluster.topic(&args.topic, false).await?;
    let partitions = select_partitions(&topic, &args.partitions)?;
    let offsets = list_offsets(&cluster, &topic, &partitions, time).await?;
    if context.json {
        let lines: Vec<Line<'_>> = offsets
            .values()
            .map(|o| Line {
                topic: &args.topic,
                partition: o.partition,
                offset: o.offset,
                timestamp: o.timestamp,
            })
            .collect();
        return output::json_pretty(&lines);
    }
    for o in offsets.values() {
        output::line(&format!("{}:{}:{}", args.topic, o.partition, o.offset))?;
    }
    Ok(())
}
