//! `gossip-sim`: N libp2p nodes in this one process, each running the mesh's own gossipsub
//! (`beemesh_mesh_backend::mesh::gossipsub_behaviour`: same configuration, signing, peer
//! scoring and member score), measuring how long a publication takes to reach every node
//! and over how many hops.
//!
//! A node here is a swarm with only that gossipsub behaviour and a recorder in place of a
//! replica: 1,000 fjall replicas and 1,000 real `Mesh` event loops (full connectivity,
//! ~500,000 connections) do not fit one 2-core process, and the real mesh's full
//! connectivity is what the scale path replaces with partial views anyway. Each node
//! dials `--dials` random nodes started before it (a connected random graph), subscribes
//! to one resource topic, and accepts every message after the same manual validation step
//! the mesh uses (forwarding waits for it).
//!
//! Hops: a signed gossipsub message cannot carry a counter that relays increment, so hops
//! are rebuilt from gossipsub's own propagation: every node records the peer that
//! delivered the message to it first (`propagation_source`). The publisher is hop 0; a
//! node's hop is its source's hop + 1. A node only forwards what it has received, so
//! every source's hop is known.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use beemesh_mesh_backend::mesh::{MEMBER_SCORE, gossipsub_behaviour, topic_of};
use clap::ValueEnum;
use futures::StreamExt;
use libp2p::core::transport::MemoryTransport;
use libp2p::core::upgrade;
use libp2p::gossipsub::{self, IdentTopic, MessageAcceptance};
use libp2p::identity::Keypair;
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, Swarm, SwarmBuilder, Transport, noise, tcp, yamux};
use rand::rngs::StdRng;
use rand::seq::index::sample;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use super::stats::{Summary, own_rss_bytes, process_cpu_seconds};

/// Payloads start with this tag and the publication's sequence number.
const PAYLOAD_TAG: &[u8; 8] = b"BMGSIM01";
/// The largest mesh this bench starts (file descriptors, memory).
const MAX_NODES: usize = 3000;
/// How long after the last publication stragglers may still arrive.
const DELIVERY_GRACE: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SimTransport {
    /// TCP on 127.0.0.1 with noise and yamux, as real nodes connect.
    Tcp,
    /// libp2p's in-process memory transport with noise and yamux (no sockets).
    Memory,
}

#[derive(clap::Args, Debug, Clone)]
pub struct SimArgs {
    /// Mesh sizes to simulate, one after the other.
    #[arg(long, value_delimiter = ',', default_value = "100,200,500,1000")]
    pub nodes: Vec<usize>,
    /// Connections each new node opens to random nodes started before it. 5 = gossipsub's
    /// D_lo, so even the last node can fill its mesh.
    #[arg(long, default_value_t = 5)]
    pub dials: usize,
    /// Publications per mesh size, each from a random node.
    #[arg(long, default_value_t = 40)]
    pub publications: usize,
    /// Pause between publications, milliseconds. Long enough that one publication's
    /// spread is over before the next starts: on 2 cores a 1,000-node mesh needs ~0.5 s of
    /// CPU per publication, and overlapping spreads measure CPU queueing instead.
    #[arg(long, default_value_t = 1000)]
    pub interval_ms: u64,
    /// Bytes per publication (a 1 KiB object's publication is about this size).
    #[arg(long, default_value_t = 1200)]
    pub payload_bytes: usize,
    #[arg(long, value_enum, default_value = "tcp")]
    pub transport: SimTransport,
    /// Seconds between connecting everything and the first publication (gossipsub's
    /// heartbeat is 1 s: meshes need a few to settle).
    #[arg(long, default_value_t = 4.0)]
    pub warmup: f64,
    /// Seed of the topology and publisher choice.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// JSON results [default: bench/results/gossip-sim.json]; plots go next to it.
    #[arg(long)]
    pub output: Option<PathBuf>,
}

/// What one mesh size measured.
#[derive(Debug, Clone, Serialize)]
pub struct SimRun {
    pub nodes: usize,
    pub transport: SimTransport,
    pub dials_per_node: usize,
    pub connections: usize,
    pub connect_seconds: f64,
    /// Gossipsub mesh peers per node on the topic just before publishing.
    pub mesh_degree_min: usize,
    pub mesh_degree_median: usize,
    pub mesh_degree_max: usize,
    pub publications: usize,
    pub publish_failures: usize,
    /// Publications that reached every other node.
    pub publications_reaching_all: usize,
    pub deliveries_expected: usize,
    pub deliveries: usize,
    /// Publish call → first arrival at each node, over all (publication, node) pairs.
    pub delivery: Option<Summary>,
    /// Publish call → arrival at the last node, per publication that reached all.
    pub delivered_to_all: Option<Summary>,
    /// Hops per delivery: mean, max, and how many deliveries took 1, 2, ... hops.
    pub hops_mean: f64,
    pub hops_max: usize,
    pub hops_histogram: Vec<usize>,
    pub rss_bytes: u64,
    /// CPU cores this process kept busy while idle (heartbeats of every node) and while
    /// publishing: the whole mesh shares this machine's cores, so a publication's spread
    /// can be no faster than its total CPU work divided by the cores left.
    pub idle_cpu_cores: f64,
    pub publishing_cpu_cores: f64,
    /// CPU time one publication costs the whole mesh (signature checks, forwarding), ms:
    /// publishing-phase CPU minus the idle rate, per publication.
    pub cpu_ms_per_publication: f64,
    pub load_average_start: String,
    pub load_average_end: String,
}

enum NodeCommand {
    Dial(Multiaddr),
    Publish { seq: u64, data: Vec<u8> },
    MeshDegree(oneshot::Sender<usize>),
}

enum Record {
    Published {
        seq: u64,
        node: usize,
        at: Instant,
    },
    PublishFailed {
        seq: u64,
        error: String,
    },
    Delivered {
        seq: u64,
        node: usize,
        at: Instant,
        relay: PeerId,
    },
}

struct SimNode {
    peer: PeerId,
    addr: Multiaddr,
    commands: mpsc::UnboundedSender<NodeCommand>,
    task: tokio::task::JoinHandle<()>,
}

/// Runs every mesh size in `args.nodes` and returns their figures.
pub async fn run(args: &SimArgs) -> anyhow::Result<Vec<SimRun>> {
    anyhow::ensure!(
        args.nodes.iter().all(|&n| (2..=MAX_NODES).contains(&n)),
        "--nodes must be within 2..={MAX_NODES}"
    );
    anyhow::ensure!((1..=50).contains(&args.dials), "--dials must be 1..=50");
    anyhow::ensure!(
        (1..=10_000).contains(&args.publications),
        "--publications must be 1..=10000"
    );
    anyhow::ensure!(
        (16..=60_000).contains(&args.payload_bytes),
        "--payload-bytes must be 16..=60000"
    );
    anyhow::ensure!(
        (0.0..=60.0).contains(&args.warmup),
        "--warmup must be 0..=60 s"
    );
    let mut runs = Vec::new();
    for &n in &args.nodes {
        eprintln!(
            "== gossip sim: {n} nodes over {:?}, {} dials each",
            args.transport, args.dials
        );
        let run = run_one(args, n)
            .await
            .with_context(|| format!("{n} nodes"))?;
        eprintln!("   {}", one_line(&run));
        runs.push(run);
    }
    Ok(runs)
}

fn one_line(r: &SimRun) -> String {
    let d = r.delivery.as_ref();
    let all = r.delivered_to_all.as_ref();
    format!(
        "{} nodes: {}/{} publications reached all; delivery p50 {:.1} ms p99 {:.1} ms; \
         all reached p50 {:.1} ms max {:.1} ms; hops mean {:.2} max {}; mesh degree {}..{}; RSS {:.0} MiB; \
         CPU idle {:.2} cores, {:.0} ms per publication",
        r.nodes,
        r.publications_reaching_all,
        r.publications,
        d.map_or(f64::NAN, |s| s.p50_ms),
        d.map_or(f64::NAN, |s| s.p99_ms),
        all.map_or(f64::NAN, |s| s.p50_ms),
        all.map_or(f64::NAN, |s| s.max_ms),
        r.hops_mean,
        r.hops_max,
        r.mesh_degree_min,
        r.mesh_degree_max,
        r.rss_bytes as f64 / 1048576.0,
        r.idle_cpu_cores,
        r.cpu_ms_per_publication
    )
}

async fn run_one(args: &SimArgs, n: usize) -> anyhow::Result<SimRun> {
    let load_average_start = crate::report::load_average();
    let topic = IdentTopic::new(topic_of(b"/core/configmaps/default/bench"));
    let (records_tx, mut records_rx) = mpsc::unbounded_channel();
    let connections = Arc::new(AtomicUsize::new(0));
    let mut rng = StdRng::seed_from_u64(args.seed ^ n as u64);

    let started = Instant::now();
    let mut nodes: Vec<SimNode> = Vec::with_capacity(n);
    let mut dials = 0usize;
    let result = async {
        for index in 0..n {
            let node = spawn_node(
                index,
                args.transport,
                &topic,
                records_tx.clone(),
                connections.clone(),
            )
            .await?;
            let earlier = nodes.len();
            let wanted = args.dials.min(earlier);
            for j in sample(&mut rng, earlier, wanted) {
                node.commands
                    .send(NodeCommand::Dial(nodes[j].addr.clone()))
                    .context("node task ended")?;
                dials += 1;
            }
            nodes.push(node);
            // Let connections keep up with node creation (TCP backlogs, noise handshakes).
            if index % 50 == 49 {
                wait_connections(&connections, 2 * dials, Duration::from_secs(30)).await?;
            }
        }
        wait_connections(&connections, 2 * dials, Duration::from_secs(60)).await?;
        let connect_seconds = started.elapsed().as_secs_f64();
        eprintln!(
            "   {n} nodes up and {dials} connections open in {connect_seconds:.2} s; warming up {:.1} s",
            args.warmup
        );
        let idle_from = (Instant::now(), process_cpu_seconds());
        tokio::time::sleep(Duration::from_secs_f64(args.warmup)).await;
        let idle_cpu_cores =
            (process_cpu_seconds() - idle_from.1) / idle_from.0.elapsed().as_secs_f64();
        let mut degrees = Vec::with_capacity(n);
        for node in &nodes {
            let (tx, rx) = oneshot::channel();
            node.commands
                .send(NodeCommand::MeshDegree(tx))
                .context("node task ended")?;
            degrees.push(rx.await.context("node task ended")?);
        }
        degrees.sort_unstable();
        let rss_bytes = own_rss_bytes();

        let peers: HashMap<PeerId, usize> =
            nodes.iter().enumerate().map(|(i, n)| (n.peer, i)).collect();
        let publishing_from = (Instant::now(), process_cpu_seconds());
        let mut publishers = Vec::with_capacity(args.publications);
        for seq in 0..args.publications as u64 {
            let publisher = rng.random_range(0..n);
            publishers.push(publisher);
            nodes[publisher]
                .commands
                .send(NodeCommand::Publish {
                    seq,
                    data: payload(seq, args.payload_bytes),
                })
                .context("node task ended")?;
            tokio::time::sleep(Duration::from_millis(args.interval_ms)).await;
        }

        // Collect until every publication reached every node, or the grace period ends.
        let expected = args.publications * (n - 1);
        let mut published: HashMap<u64, (usize, Instant)> = HashMap::new();
        let mut failures = 0usize;
        let mut arrivals: HashMap<u64, HashMap<usize, (Instant, PeerId)>> = HashMap::new();
        let mut delivered = 0usize;
        let deadline = tokio::time::Instant::now() + DELIVERY_GRACE;
        while delivered < expected {
            let record = match tokio::time::timeout_at(deadline, records_rx.recv()).await {
                Ok(Some(r)) => r,
                Ok(None) | Err(_) => break,
            };
            match record {
                Record::Published { seq, node, at } => {
                    published.insert(seq, (node, at));
                }
                Record::PublishFailed { seq, error } => {
                    failures += 1;
                    eprintln!("   publication {seq} failed: {error}");
                }
                Record::Delivered {
                    seq,
                    node,
                    at,
                    relay,
                } => {
                    let per_node = arrivals.entry(seq).or_default();
                    if let std::collections::hash_map::Entry::Vacant(slot) = per_node.entry(node) {
                        slot.insert((at, relay));
                        delivered += 1;
                    }
                }
            }
        }
        let publishing_seconds = publishing_from.0.elapsed().as_secs_f64();
        let publishing_cpu = process_cpu_seconds() - publishing_from.1;
        // Publication records may still sit in the queue if every delivery came first.
        while let Ok(record) = records_rx.try_recv() {
            if let Record::Published { seq, node, at } = record {
                published.insert(seq, (node, at));
            }
        }

        let mut latencies = Vec::with_capacity(expected);
        let mut all_reached = Vec::new();
        let mut hop_counts: Vec<usize> = Vec::with_capacity(expected);
        for seq in 0..args.publications as u64 {
            let (Some(&(publisher, at)), Some(per_node)) = (published.get(&seq), arrivals.get(&seq))
            else {
                continue;
            };
            let mut latest = 0.0f64;
            for (arrived, _) in per_node.values() {
                let ms = arrived.saturating_duration_since(at).as_secs_f64() * 1000.0;
                latest = latest.max(ms);
                latencies.push(ms);
            }
            if per_node.len() == n - 1 {
                all_reached.push(latest);
            }
            hop_counts.extend(hops(publisher, per_node, &peers).into_iter().flatten());
        }
        let hops_max = hop_counts.iter().copied().max().unwrap_or(0);
        let mut hops_histogram = vec![0usize; hops_max + 1];
        for &h in &hop_counts {
            hops_histogram[h] += 1;
        }
        let hops_mean = if hop_counts.is_empty() {
            f64::NAN
        } else {
            hop_counts.iter().sum::<usize>() as f64 / hop_counts.len() as f64
        };
        Ok(SimRun {
            nodes: n,
            transport: args.transport,
            dials_per_node: args.dials,
            connections: dials,
            connect_seconds,
            mesh_degree_min: degrees.first().copied().unwrap_or(0),
            mesh_degree_median: degrees.get(degrees.len() / 2).copied().unwrap_or(0),
            mesh_degree_max: degrees.last().copied().unwrap_or(0),
            publications: args.publications,
            publish_failures: failures,
            publications_reaching_all: all_reached.len(),
            deliveries_expected: expected,
            deliveries: delivered,
            delivery: Summary::of(&mut latencies),
            delivered_to_all: Summary::of(&mut all_reached),
            hops_mean,
            hops_max,
            hops_histogram,
            rss_bytes,
            idle_cpu_cores,
            publishing_cpu_cores: publishing_cpu / publishing_seconds,
            cpu_ms_per_publication: (publishing_cpu - idle_cpu_cores * publishing_seconds)
                * 1000.0
                / args.publications as f64,
            load_average_start: load_average_start.clone(),
            load_average_end: crate::report::load_average(),
        })
    }
    .await;
    // Stop every node (their swarms close their connections and listeners).
    for node in nodes {
        drop(node.commands);
        let _ = tokio::time::timeout(Duration::from_secs(5), node.task).await;
    }
    result
}

/// Hop count per delivered node of one publication (`None` where the chain is broken).
fn hops(
    publisher: usize,
    arrivals: &HashMap<usize, (Instant, PeerId)>,
    peers: &HashMap<PeerId, usize>,
) -> Vec<Option<usize>> {
    let mut memo: HashMap<usize, Option<usize>> = HashMap::new();
    memo.insert(publisher, Some(0));
    let mut out = Vec::with_capacity(arrivals.len());
    for &node in arrivals.keys() {
        // Walk back along first-arrival sources until a node with a known hop count.
        let mut chain = Vec::new();
        let mut current = node;
        let base = loop {
            if let Some(&known) = memo.get(&current) {
                break known;
            }
            if chain.len() > arrivals.len() {
                break None; // a cycle: impossible for first arrivals, but never loop
            }
            chain.push(current);
            match arrivals
                .get(&current)
                .and_then(|(_, relay)| peers.get(relay))
            {
                Some(&source) => current = source,
                None => break None,
            }
        };
        for (depth, &n) in chain.iter().rev().enumerate() {
            memo.insert(n, base.map(|b| b + depth + 1));
        }
        out.push(memo.get(&node).copied().flatten());
    }
    out
}

fn payload(seq: u64, bytes: usize) -> Vec<u8> {
    let mut data = vec![0u8; bytes.max(PAYLOAD_TAG.len() + 8)];
    data[..8].copy_from_slice(PAYLOAD_TAG);
    data[8..16].copy_from_slice(&seq.to_be_bytes());
    crate::load::fill_value(seq, &mut data[16..]);
    data
}

fn payload_seq(data: &[u8]) -> Option<u64> {
    if data.len() < 16 || &data[..8] != PAYLOAD_TAG {
        return None;
    }
    let mut seq = [0u8; 8];
    seq.copy_from_slice(&data[8..16]);
    Some(u64::from_be_bytes(seq))
}

async fn wait_connections(
    connections: &AtomicUsize,
    want: usize,
    limit: Duration,
) -> anyhow::Result<()> {
    let started = Instant::now();
    while connections.load(Ordering::Relaxed) < want {
        if started.elapsed() > limit {
            bail!(
                "only {} of {want} connection ends established after {limit:?}",
                connections.load(Ordering::Relaxed)
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

fn build_swarm(transport: SimTransport) -> anyhow::Result<Swarm<gossipsub::Behaviour>> {
    let key = Keypair::generate_ed25519();
    let behaviour = |key: &Keypair| {
        gossipsub_behaviour(key)
            .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)
    };
    // Connections stay up for the whole run, like the mesh's.
    let idle = |c: libp2p::swarm::Config| c.with_idle_connection_timeout(Duration::from_secs(3600));
    let swarm = match transport {
        SimTransport::Tcp => SwarmBuilder::with_existing_identity(key)
            .with_tokio()
            .with_tcp(
                tcp::Config::default().nodelay(true),
                noise::Config::new,
                yamux::Config::default,
            )?
            .with_behaviour(behaviour)?
            .with_swarm_config(idle)
            .build(),
        SimTransport::Memory => SwarmBuilder::with_existing_identity(key)
            .with_tokio()
            .with_other_transport(|key| {
                let noise = noise::Config::new(key)
                    .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)?;
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(
                    MemoryTransport::default()
                        .upgrade(upgrade::Version::V1)
                        .authenticate(noise)
                        .multiplex(yamux::Config::default()),
                )
            })?
            .with_behaviour(behaviour)?
            .with_swarm_config(idle)
            .build(),
    };
    Ok(swarm)
}

async fn spawn_node(
    index: usize,
    transport: SimTransport,
    topic: &IdentTopic,
    records: mpsc::UnboundedSender<Record>,
    connections: Arc<AtomicUsize>,
) -> anyhow::Result<SimNode> {
    let mut swarm = build_swarm(transport)?;
    swarm
        .behaviour_mut()
        .subscribe(topic)
        .map_err(|e| anyhow::anyhow!("subscribe: {e}"))?;
    let listen: Multiaddr = match transport {
        SimTransport::Tcp => "/ip4/127.0.0.1/tcp/0".parse()?,
        SimTransport::Memory => "/memory/0".parse()?,
    };
    swarm.listen_on(listen)?;
    let addr = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let SwarmEvent::NewListenAddr { address, .. } = swarm.select_next_some().await {
                return address;
            }
        }
    })
    .await
    .context("no listen address within 10 s")?;
    let peer = *swarm.local_peer_id();
    let (commands, commands_rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(drive_node(
        index,
        swarm,
        topic.clone(),
        commands_rx,
        records,
        connections,
    ));
    Ok(SimNode {
        peer,
        addr,
        commands,
        task,
    })
}

/// One node's event loop: accept and record publications, publish and dial on command.
async fn drive_node(
    index: usize,
    mut swarm: Swarm<gossipsub::Behaviour>,
    topic: IdentTopic,
    mut commands: mpsc::UnboundedReceiver<NodeCommand>,
    records: mpsc::UnboundedSender<Record>,
    connections: Arc<AtomicUsize>,
) {
    let mut open = 0usize;
    loop {
        tokio::select! {
            event = swarm.select_next_some() => match event {
                SwarmEvent::Behaviour(gossipsub::Event::Message { propagation_source, message_id, message }) => {
                    let at = Instant::now();
                    // The mesh validates before gossipsub forwards; accept at once here.
                    let _ = swarm.behaviour_mut().report_message_validation_result(
                        &message_id,
                        &propagation_source,
                        MessageAcceptance::Accept,
                    );
                    if let Some(seq) = payload_seq(&message.data) {
                        let _ = records.send(Record::Delivered { seq, node: index, at, relay: propagation_source });
                    }
                }
                SwarmEvent::ConnectionEstablished { peer_id, .. } => {
                    // Every simulated peer is a member, as the mesh scores members.
                    swarm.behaviour_mut().set_application_score(&peer_id, MEMBER_SCORE);
                    open += 1;
                    connections.fetch_add(1, Ordering::Relaxed);
                }
                SwarmEvent::ConnectionClosed { .. } => {
                    open = open.saturating_sub(1);
                    connections.fetch_sub(1, Ordering::Relaxed);
                }
                _ => {}
            },
            command = commands.recv() => match command {
                None => break,
                Some(NodeCommand::Dial(addr)) => {
                    if let Err(e) = swarm.dial(addr) {
                        eprintln!("   node {index}: dial failed: {e}");
                    }
                }
                Some(NodeCommand::Publish { seq, data }) => {
                    let at = Instant::now();
                    let record = match swarm.behaviour_mut().publish(topic.clone(), data) {
                        Ok(_) => Record::Published { seq, node: index, at },
                        Err(e) => Record::PublishFailed { seq, error: e.to_string() },
                    };
                    let _ = records.send(record);
                }
                Some(NodeCommand::MeshDegree(reply)) => {
                    let _ = reply.send(swarm.behaviour().mesh_peers(&topic.hash()).count());
                }
            },
        }
    }
    connections.fetch_sub(open, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_carries_its_sequence_number() {
        let p = payload(42, 1200);
        assert_eq!(p.len(), 1200);
        assert_eq!(payload_seq(&p), Some(42));
        assert_ne!(payload(43, 1200)[16..], p[16..]);
        assert_eq!(payload_seq(b"something else entirely"), None);
    }

    #[test]
    fn hops_follow_first_arrival_sources_back_to_the_publisher() {
        let ids: Vec<PeerId> = (0..5).map(|_| PeerId::random()).collect();
        let peers: HashMap<PeerId, usize> = ids.iter().enumerate().map(|(i, p)| (*p, i)).collect();
        let now = Instant::now();
        // 0 publishes; 1 and 2 hear it from 0, 3 from 2, 4 from 3.
        let arrivals: HashMap<usize, (Instant, PeerId)> = [(1, 0), (2, 0), (3, 2), (4, 3)]
            .into_iter()
            .map(|(node, source)| (node, (now, ids[source])))
            .collect();
        let mut got: Vec<(usize, Option<usize>)> = arrivals
            .keys()
            .copied()
            .zip(hops(0, &arrivals, &peers))
            .collect();
        got.sort();
        assert_eq!(
            got,
            vec![(1, Some(1)), (2, Some(1)), (3, Some(2)), (4, Some(3))]
        );
    }

    #[test]
    fn a_source_outside_the_sim_breaks_the_chain_without_looping() {
        let ids: Vec<PeerId> = (0..3).map(|_| PeerId::random()).collect();
        let peers: HashMap<PeerId, usize> = ids.iter().enumerate().map(|(i, p)| (*p, i)).collect();
        let now = Instant::now();
        let arrivals: HashMap<usize, (Instant, PeerId)> =
            [(1, (now, PeerId::random())), (2, (now, ids[1]))]
                .into_iter()
                .collect();
        assert!(hops(0, &arrivals, &peers).iter().all(Option::is_none));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_small_mesh_delivers_every_publication_to_every_node() {
        let args = SimArgs {
            nodes: vec![12],
            dials: 3,
            publications: 5,
            interval_ms: 50,
            payload_bytes: 256,
            transport: SimTransport::Memory,
            warmup: 2.0,
            seed: 1,
            output: None,
        };
        let runs = run(&args).await.unwrap();
        let r = &runs[0];
        assert_eq!(r.publish_failures, 0);
        assert_eq!(r.deliveries, 5 * 11);
        assert_eq!(r.publications_reaching_all, 5);
        assert!(r.hops_mean >= 1.0 && r.hops_max >= 1);
        assert_eq!(r.hops_histogram[0], 0, "no node but the publisher is hop 0");
        assert_eq!(r.hops_histogram.iter().sum::<usize>(), 5 * 11);
    }
}
