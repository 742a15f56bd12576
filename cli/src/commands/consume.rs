//! `gregorctl consume TOPIC`: one value per stdout line, like kafka-console-consumer.sh.
//!
//! Fetches from each partition's leader (one pipelined Fetch per leader per round), from
//! the latest offset by default, `--from-beginning`, `--offset`, or with `--group` from the
//! group's committed offsets (joining the group as a classic consumer, committing on exit).
//! Runs until `--max-messages`, `--timeout-ms` without a record, or Ctrl-C.

use gregor_protocol::error_code::OFFSET_OUT_OF_RANGE;
use std::collections::BTreeMap;
use std::time::Duration;

use gregor_protocol::ApiKey;
use tokio::time::Instant;

use super::groups::{GroupMember, HEARTBEAT_INTERVAL, fetch_committed};
use super::{
    ConsumedRecord, Context, EARLIEST, LATEST, decode_fetched, fetch_partitions, fetch_request,
    list_offsets, select_partitions,
};
use crate::client::cluster::TopicInfo;
use crate::client::{Cluster, Error, Result};
use crate::errors::is_retriable_metadata_error;
use crate::output;

/// Arguments.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The topic.
    pub topic: String,
    /// Start at the earliest offset (when there is no committed offset).
    #[arg(long)]
    pub from_beginning: bool,
    /// Only these partitions (repeatable or comma-separated).
    #[arg(long = "partition", value_delimiter = ',')]
    pub partitions: Vec<i32>,
    /// Start offset: earliest, latest, or a number.
    #[arg(long)]
    pub offset: Option<String>,
    /// Consume as a member of this group (committed offsets, commit on exit).
    #[arg(long)]
    pub group: Option<String>,
    /// Stop after this many records.
    #[arg(long)]
    pub max_messages: Option<u64>,
    /// Stop when no record arrives for this long, in milliseconds.
    #[arg(long)]
    pub timeout_ms: Option<u64>,
    /// Print the key before the value.
    #[arg(long)]
    pub print_key: bool,
    /// Print the partition.
    #[arg(long)]
    pub print_partition: bool,
    /// Print the offset.
    #[arg(long)]
    pub print_offset: bool,
    /// Print the timestamp.
    #[arg(long)]
    pub print_timestamp: bool,
    /// Print the headers.
    #[arg(long)]
    pub print_headers: bool,
    /// Separator between printed fields.
    #[arg(long, default_value = "\t")]
    pub key_separator: String,
    /// Longest time the broker may hold a fetch waiting for data, in milliseconds.
    #[arg(long, default_value_t = 500)]
    pub max_wait_ms: i32,
    /// Most bytes per partition per fetch.
    #[arg(long, default_value_t = 1024 * 1024)]
    pub max_partition_fetch_bytes: i32,
}

/// Where each partition starts when nothing is committed.
fn default_reset(args: &Args) -> i64 {
    if args.from_beginning {
        EARLIEST
    } else {
        LATEST
    }
}

/// Start offsets for `partitions`.
async fn start_offsets(
    cluster: &Cluster,
    topic: &TopicInfo,
    partitions: &[i32],
    args: &Args,
    committed: &BTreeMap<i32, i64>,
) -> Result<BTreeMap<i32, i64>> {
    let explicit = match args.offset.as_deref() {
        None => None,
        Some("earliest") => Some(EARLIEST),
        Some("latest") => Some(LATEST),
        Some(n) => match n.parse::<i64>() {
            Ok(n) if n >= 0 => {
                return Ok(partitions.iter().map(|&p| (p, n)).collect());
            }
            _ => {
                return Err(Error::Usage(format!(
                    "--offset {n:?}: expected earliest, latest or a non-negative number"
                )));
            }
        },
    };
    let mut out = BTreeMap::new();
    let mut unresolved = Vec::new();
    for &p in partitions {
        match committed.get(&p) {
            Some(&offset) if offset >= 0 && explicit.is_none() => {
                out.insert(p, offset);
            }
            _ => unresolved.push(p),
        }
    }
    if !unresolved.is_empty() {
        let reset = explicit.unwrap_or_else(|| default_reset(args));
        for (p, o) in list_offsets(cluster, topic, &unresolved, reset).await? {
            out.insert(p, o.offset);
        }
    }
    Ok(out)
}

/// Prints one record as the flags ask.
fn print_record(args: &Args, json: bool, record: &ConsumedRecord) -> Result<()> {
    if json {
        return output::json(record);
    }
    let mut prefix = String::new();
    let sep = &args.key_separator;
    if args.print_timestamp {
        prefix.push_str(&format!("CreateTime:{}{sep}", record.timestamp));
    }
    if args.print_partition {
        prefix.push_str(&format!("Partition:{}{sep}", record.partition));
    }
    if args.print_offset {
        prefix.push_str(&format!("Offset:{}{sep}", record.offset));
    }
    if args.print_headers {
        let headers: Vec<String> = record
            .headers
            .iter()
            .map(|(k, v)| format!("{k}:{}", v.as_deref().unwrap_or("NULL")))
            .collect();
        if headers.is_empty() {
            prefix.push_str(&format!("NO_HEADERS{sep}"));
        } else {
            prefix.push_str(&format!("{}{sep}", headers.join(",")));
        }
    }
    if args.print_key {
        prefix.push_str(record.key.as_deref().unwrap_or("null"));
        prefix.push_str(sep);
    }
    let mut line = prefix.into_bytes();
    match &record.value {
        Some(value) => line.extend_from_slice(value),
        None => line.extend_from_slice(b"null"),
    }
    output::bytes_line(&line)
}

/// Consumes and prints.
pub async fn run(context: &Context, args: &Args) -> Result<()> {
    let cluster = context.cluster().await?;
    // Fail early, with the API named, when the broker cannot serve fetches.
    cluster.any().version(ApiKey::Fetch)?;
    let topic = cluster.topic(&args.topic, false).await?;
    let (member, partitions, committed) = match &args.group {
        Some(group) => {
            if !args.partitions.is_empty() {
                return Err(Error::Usage(
                    "--partition and --group cannot be combined: the group assigns partitions"
                        .into(),
                ));
            }
            let member = GroupMember::join(&cluster, group, &topic).await?;
            let partitions = member.assigned.clone();
            let committed = fetch_committed(
                &cluster,
                &member.coordinator,
                group,
                Some((&topic, &partitions)),
            )
            .await?
            .into_iter()
            .map(|c| (c.partition, c.committed_offset))
            .collect();
            (Some(member), partitions, committed)
        }
        None => (
            None,
            select_partitions(&topic, &args.partitions)?,
            BTreeMap::new(),
        ),
    };
    let mut positions = start_offsets(&cluster, &topic, &partitions, args, &committed).await?;
    let result = consume_loop(
        context,
        args,
        &cluster,
        &topic,
        &mut positions,
        member.as_ref(),
    )
    .await;
    if let Some(member) = &member {
        let committed = member.commit(&topic, &positions).await;
        member.leave().await;
        committed?;
    }
    let count = result?;
    eprintln!("Processed a total of {count} messages");
    Ok(())
}

async fn consume_loop(
    context: &Context,
    args: &Args,
    cluster: &Cluster,
    topic: &TopicInfo,
    positions: &mut BTreeMap<i32, i64>,
    member: Option<&GroupMember>,
) -> Result<u64> {
    let mut count = 0u64;
    let max = args.max_messages.unwrap_or(u64::MAX);
    let idle = args.timeout_ms.map(Duration::from_millis);
    let mut last_record = Instant::now();
    let mut last_heartbeat = Instant::now();
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    while count < max && !positions.is_empty() {
        if let Some(idle) = idle {
            if last_record.elapsed() >= idle {
                break;
            }
        }
        if let Some(member) = member {
            if last_heartbeat.elapsed() >= HEARTBEAT_INTERVAL {
                last_heartbeat = Instant::now();
                if !member.heartbeat().await? {
                    eprintln!(
                        "group {} is rebalancing; stopping (committed offsets let the next run resume)",
                        member.group
                    );
                    break;
                }
            }
        }
        // One fetch per leader, all in flight at once.
        let wanted: Vec<i32> = positions.keys().copied().collect();
        let by_leader = cluster.partitions_by_leader(&topic.name, &wanted).await?;
        let max_wait = match idle {
            Some(idle) => args
                .max_wait_ms
                .min(idle.as_millis().min(i32::MAX as u128) as i32),
            None => args.max_wait_ms,
        };
        let mut inflight = Vec::new();
        for (leader, partitions) in by_leader {
            let connection = cluster.broker(leader).await?;
            let fetch_positions: Vec<(i32, i64)> =
                partitions.iter().map(|p| (*p, positions[p])).collect();
            let request = fetch_request(
                topic,
                &fetch_positions,
                max_wait,
                1,
                i32::MAX,
                args.max_partition_fetch_bytes,
            );
            let pending = connection
                .dispatch(&request)
                .await?
                .extend_timeout(Duration::from_millis(max_wait.max(0) as u64));
            inflight.push(pending);
        }
        let mut refresh = false;
        let mut resets = Vec::new();
        for pending in inflight {
            let response = tokio::select! {
                response = pending.wait() => response?,
                _ = &mut ctrl_c => return Ok(count),
            };
            Error::check(response.error_code, None, || {
                format!("fetch {}", topic.name)
            })?;
            for (partition, data) in fetch_partitions(&response, topic) {
                match data.error_code {
                    0 => {}
                    OFFSET_OUT_OF_RANGE => {
                        resets.push(partition);
                        continue;
                    }
                    code if is_retriable_metadata_error(code) => {
                        refresh = true;
                        continue;
                    }
                    code => {
                        return Err(Error::Kafka {
                            context: format!("fetch {}-{partition}", topic.name),
                            code,
                            message: None,
                        });
                    }
                }
                let Some(from) = positions.get(&partition).copied() else {
                    continue;
                };
                let records = data.records.clone().unwrap_or_default();
                let (records, next, _) = decode_fetched(partition, records, from)?;
                for record in &records {
                    if count >= max {
                        break;
                    }
                    print_record(args, context.json, record)?;
                    positions.insert(partition, record.offset + 1);
                    count += 1;
                    last_record = Instant::now();
                }
                if count < max {
                    positions.insert(partition, next.max(from));
                }
            }
        }
        output::flush()?;
        if !resets.is_empty() {
            let reset = default_reset(args);
            for (p, o) in list_offsets(cluster, topic, &resets, reset).await? {
                positions.insert(p, o.offset);
            }
        }
        if refresh {
            cluster.topic(&topic.name, true).await?;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(count)
}
