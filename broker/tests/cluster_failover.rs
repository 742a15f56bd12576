//! Failovers of a cluster (issue 15) that the controller must get right, on real processes:
//!
//! * a broker killed with SIGKILL and restarted at once, within its session timeout, while
//!   an idempotent acks=all producer and a consumer group run: its partitions get leaders
//!   among the other replicas (its new incarnation leads nothing it has not caught up on),
//!   no acknowledged record is lost, and it rejoins every ISR;
//! * the active controller killed with SIGKILL (and restarted), three times: the brokers
//!   heartbeat to whichever controller is elected, and none of them is ever fenced
//!   (Metadata lists both all along, no controller logs a session expiry). A controller
//!   active again after another was is `cluster::controller`'s unit test (SIGSTOP makes
//!   it here, but with elections too unsteady for a test that must not flake). Then a
//!   broker stopped cleanly registers again naming the epoch it stopped with.

mod support;

use std::time::{Duration, Instant};

use support::cluster::{Cluster, broker_ids_listed_by, wait_for};
use support::load::{create_topic, metadata, under_load, wait_for_topic};

/// How long the partitions of a killed broker may stay without a live leader: its session
/// (`broker.session.timeout.ms` = 9 s in the harness) and some slack for the election.
const NEW_LEADERS: Duration = Duration::from_secs(30);

/// What the controller logs once it fenced a broker whose session expired.
const SESSION_EXPIRY: &str = "fenced the broker: its session had timed out";

#[test]
fn a_broker_restarted_within_its_session_leads_nothing_stale_and_loses_nothing() {
    if support::clients::python_path().is_none() && !support::clients_required() {
        return;
    }
    let mut cluster = Cluster::combined(3);
    cluster.start();
    let topic = "restart-in-session";
    create_topic(&cluster, topic, 3, 3, &["min.insync.replicas=2"]);
    wait_for_topic(&cluster, topic, 3, 3);
    under_load(&mut cluster, topic, 3, 20, |cluster| {
        std::thread::sleep(Duration::from_secs(3));
        let active = cluster.wait_for_active_controller();
        let view = wait_for_topic(cluster, topic, 3, 3);
        // A broker that is not the active controller, so only the broker side fails over.
        let victim = view
            .values()
            .map(|p| p.leader)
            .find(|&leader| leader != active)
            .unwrap_or(view[&0].leader);
        let led: Vec<i32> = view
            .iter()
            .filter(|(_, p)| p.leader == victim)
            .map(|(&i, _)| i)
            .collect();
        let witness = cluster
            .nodes
            .iter()
            .map(|n| n.id)
            .find(|&id| id != victim)
            .expect("another node");
        cluster.kill9(victim);
        let killed = Instant::now();
        cluster.restart(victim);
        // The old incarnation is fenced when its session expires or when the new one
        // registers, whichever comes first; either way its partitions move to the others.
        wait_for(
            "leaders other than the restarted broker",
            NEW_LEADERS,
            || {
                let (_, view) = metadata(cluster.node(witness).addr(), topic)?;
                led.iter()
                    .all(|i| view[i].leader >= 0 && view[i].leader != victim)
                    .then_some(())
            },
        );
        eprintln!(
            "partitions {led:?} of broker {victim} had new leaders {:?} after the kill",
            killed.elapsed()
        );
    });
    // under_load waited for every ISR to be whole again: the restarted broker caught up.
}

#[test]
fn brokers_heartbeating_to_a_new_active_controller_are_not_fenced() {
    let mut cluster = Cluster::split(3, 2);
    cluster.start();
    let brokers = cluster.broker_ids();
    let mut actives = Vec::new();
    for _ in 0..3 {
        let active = cluster.wait_for_active_controller();
        actives.push(active);
        cluster.kill9(active);
        // Past a session timeout: the brokers' heartbeats find the controller elected
        // meanwhile, which gives every broker a fresh session and keeps it.
        assert_brokers_listed(&cluster, &brokers, Duration::from_secs(10));
        cluster.restart(active);
    }
    let last = cluster.wait_for_active_controller();
    assert_brokers_listed(&cluster, &brokers, Duration::from_secs(3));
    // A clean shutdown (SIGTERM) names its broker epoch in the next registration (KIP-966);
    // the SIGKILLed controllers' brokers above had none to name.
    let broker = brokers[0];
    cluster.stop(broker);
    cluster.restart(broker);
    cluster.wait_for_brokers();
    wait_for(
        "the clean restart registered",
        Duration::from_secs(10),
        || {
            let mut controllers = cluster.nodes.iter().filter(|n| n.role.is_controller());
            controllers
                .any(|n| {
                    n.all_logs().lines().any(|l| {
                        l.contains("registered a new incarnation")
                            && l.contains(&format!("broker={broker} "))
                            && l.contains("clean_shutdown=true")
                    })
                })
                .then_some(())
        },
    );
    for node in cluster.nodes.iter().filter(|n| n.role.is_controller()) {
        let logs = node.all_logs();
        assert!(
            !logs.contains(SESSION_EXPIRY),
            "controller {} fenced a live broker (killed {actives:?}, active {last}):\n{logs}",
            node.id
        );
    }
}

/// For `period`, every answer of every broker's Metadata lists all of `brokers` (a broker
/// fenced by the controller drops out of every broker's list).
fn assert_brokers_listed(cluster: &Cluster, brokers: &[i32], period: Duration) {
    let end = Instant::now() + period;
    while Instant::now() < end {
        for id in brokers {
            if let Some(listed) = broker_ids_listed_by(cluster.node(*id).addr()) {
                assert_eq!(listed, brokers, "broker {id}'s Metadata");
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
