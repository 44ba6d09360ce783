//! Real swarms on 127.0.0.1, several meshes in one process.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic};
use libp2p::multiaddr::Protocol;
use libp2p::request_response;
use libp2p::swarm::SwarmEvent;
use tempfile::TempDir;

use super::behaviour::{MeshBehaviourEvent, build_swarm};
use super::routing::distance;
use super::wire::{Hello, RpcRequest, RpcResponse, encode_publication};
use super::*;
use crate::replica::{Entry, Expected, Replica, ReplicaConfig};
use crate::version::Version;

struct Node {
    _dir: TempDir,
    keypair: Keypair,
    replica: Arc<Replica>,
    mesh: MeshHandle,
}

impl Node {
    fn peer(&self) -> PeerId {
        self.mesh.local_peer_id()
    }

    fn tcp_addr(&self) -> Multiaddr {
        tcp_addr(&self.mesh)
    }
}

fn tcp_addr(mesh: &MeshHandle) -> Multiaddr {
    mesh.listen_addrs()
        .into_iter()
        .find(|a| a.iter().any(|p| matches!(p, Protocol::Tcp(_))))
        .expect("a TCP listen address")
}

fn open_replica(dir: &Path, keypair: &Keypair, durable: bool) -> Arc<Replica> {
    Replica::open(
        dir,
        ReplicaConfig {
            origin: keypair.public().to_peer_id().to_bytes().into(),
            durable,
            ..ReplicaConfig::default()
        },
    )
    .unwrap()
}

fn config(keypair: Keypair, join: Vec<Multiaddr>) -> MeshConfig {
    let mut config = MeshConfig::new(keypair);
    config.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()];
    config.join = join;
    config.anti_entropy_interval = Duration::from_millis(500);
    config.forward_timeout = Duration::from_secs(2);
    config
}

async fn start_with(config: MeshConfig) -> Node {
    start_with_durability(config, false).await
}

/// Durable replicas fsync every write, as a real node's do.
async fn start_with_durability(config: MeshConfig, durable: bool) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let replica = open_replica(dir.path(), &config.keypair, durable);
    let keypair = config.keypair.clone();
    let mesh = Mesh::start(config, replica.clone()).await.unwrap();
    Node {
        _dir: dir,
        keypair,
        replica,
        mesh,
    }
}

async fn start(join: &[&Node]) -> Node {
    let join = join.iter().map(|n| n.tcp_addr()).collect();
    start_with(config(Keypair::generate_ed25519(), join)).await
}

async fn eventually(what: &str, limit: Duration, mut check: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    started.elapsed()
}

fn fully_meshed(nodes: &[&Node]) -> bool {
    nodes.iter().all(|n| {
        n.mesh.is_synced()
            && n.mesh.members().len() == nodes.len()
            && n.mesh.member_view().peers.values().all(|ready| *ready)
    })
}

async fn three_nodes() -> (Node, Node, Node) {
    let a = start(&[]).await;
    let b = start(&[&a]).await;
    let c = start(&[&a]).await;
    let took = eventually("three nodes meshed", Duration::from_secs(10), || {
        fully_meshed(&[&a, &b, &c])
    })
    .await;
    println!("3 nodes fully meshed and ready in {took:?}");
    (a, b, c)
}

fn value(text: &str) -> Bytes {
    Bytes::from(format!("{{\"data\":\"{text}\"}}"))
}

fn has(node: &Node, key: &str, version: &Version) -> bool {
    node.replica
        .version(key.as_bytes())
        .unwrap()
        .is_some_and(|(v, _)| v == *version)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_commit_reaches_every_node() {
    let (a, b, c) = three_nodes().await;
    let homes: std::collections::BTreeSet<PeerId> = (0..30)
        .map(|i| {
            a.mesh
                .home_of(format!("/apps/deployments/default/web-{i}").as_bytes())
        })
        .collect();
    assert!(homes.len() > 1, "keys spread over several homes");
    let mut commits = Vec::new();
    let mut delays = Vec::new();
    for i in 0..30 {
        let key = format!("/apps/deployments/default/web-{i}");
        let started = Instant::now();
        let entry = a
            .mesh
            .commit(key.as_bytes(), Expected::Absent, false, value(&key))
            .await
            .unwrap()
            .unwrap();
        commits.push(started.elapsed());
        // Read-your-writes on the node that took the write, whoever the home was.
        assert_eq!(a.replica.get(key.as_bytes()).unwrap(), Some(value(&key)));
        assert_eq!(entry.value, value(&key));
        assert_eq!(
            entry.version.origin.as_ref(),
            a.mesh.home_of(key.as_bytes()).to_bytes().as_slice()
        );
        eventually(
            "publication applied everywhere",
            Duration::from_secs(3),
            || has(&b, &key, &entry.version) && has(&c, &key, &entry.version),
        )
        .await;
        delays.push(started.elapsed());
    }
    commits.sort();
    delays.sort();
    println!(
        "commit on A answered: p50 {:?}, max {:?}; applied on A, B and C: p50 {:?}, max {:?} \
         (30 writes, homes spread over the 3 nodes)",
        commits[commits.len() / 2],
        commits[commits.len() - 1],
        delays[delays.len() / 2],
        delays[delays.len() - 1]
    );
    assert_eq!(a.replica.digests(), b.replica.digests());
    assert_eq!(a.replica.digests(), c.replica.digests());
    let stats = a.mesh.stats();
    assert!(stats.forwarded_commits > 0 && stats.forward_failures == 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn racing_updates_through_two_nodes_have_one_winner() {
    let (a, b, c) = three_nodes().await;
    for i in 0..10 {
        let key = format!("/core/configmaps/default/race-{i}");
        let created = a
            .mesh
            .commit(key.as_bytes(), Expected::Absent, false, value("v0"))
            .await
            .unwrap()
            .unwrap();
        eventually("create replicated", Duration::from_secs(3), || {
            has(&b, &key, &created.version) && has(&c, &key, &created.version)
        })
        .await;
        let expected = Expected::Version(created.version.clone());
        let (via_b, via_c) = tokio::join!(
            b.mesh
                .commit(key.as_bytes(), expected.clone(), false, value("from-b")),
            c.mesh
                .commit(key.as_bytes(), expected.clone(), false, value("from-c")),
        );
        let (via_b, via_c) = (via_b.unwrap(), via_c.unwrap());
        assert!(
            via_b.is_ok() != via_c.is_ok(),
            "exactly one racing update wins: {via_b:?} / {via_c:?}"
        );
        let (winner, loser) = match (via_b, via_c) {
            (Ok(w), Err(l)) | (Err(l), Ok(w)) => (w, l),
            _ => unreachable!(),
        };
        // The loser learns the winner's version, as a 409 would tell the client.
        assert_eq!(loser.current, Some((winner.version.clone(), false)));
        eventually("winner everywhere", Duration::from_secs(3), || {
            [&a, &b, &c].iter().all(|n| has(n, &key, &winner.version))
        })
        .await;
        // A stale update through the third node conflicts as well.
        let stale = a
            .mesh
            .commit(key.as_bytes(), expected, false, value("late"))
            .await
            .unwrap();
        assert!(stale.is_err());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_delete_propagates_and_leaves_tombstones() {
    let (a, b, c) = three_nodes().await;
    // Deleted through c while another node is home: the delete is forwarded.
    let key = (0..)
        .map(|i| format!("/apps/deployments/default/doomed-{i}"))
        .find(|k| c.mesh.home_of(k.as_bytes()) != c.peer())
        .unwrap();
    let key = key.as_str();
    let created = b
        .mesh
        .commit(key.as_bytes(), Expected::Absent, false, value("x"))
        .await
        .unwrap()
        .unwrap();
    eventually("create replicated", Duration::from_secs(3), || {
        has(&a, key, &created.version) && has(&c, key, &created.version)
    })
    .await;
    let gone = c
        .mesh
        .commit(
            key.as_bytes(),
            Expected::Version(created.version),
            true,
            value("x"),
        )
        .await
        .unwrap()
        .unwrap();
    assert!(gone.deleted);
    // The answer carries the object's final state (DELETE returns it to clients).
    assert_eq!(gone.value, value("x"));
    assert_eq!(c.replica.get(key.as_bytes()).unwrap(), None);
    eventually("delete everywhere", Duration::from_secs(3), || {
        [&a, &b, &c].iter().all(|n| {
            n.replica.get(key.as_bytes()).unwrap().is_none()
                && n.replica.version(key.as_bytes()).unwrap() == Some((gone.version.clone(), true))
        })
    })
    .await;
    assert_eq!(a.replica.digests(), c.replica.digests());
    // Deleting again conflicts; creating anew is allowed.
    let again = a
        .mesh
        .commit(
            key.as_bytes(),
            Expected::Version(gone.version.clone()),
            true,
            value("x"),
        )
        .await
        .unwrap();
    assert!(again.is_err());
    assert!(
        b.mesh
            .commit(key.as_bytes(), Expected::Absent, false, value("reborn"))
            .await
            .unwrap()
            .is_ok()
    );
}

async fn write_many(node: &Node, prefix: &str, count: usize, bytes: usize) {
    let filler = "x".repeat(bytes);
    let writes = (0..count).map(|i| {
        let key = format!("{prefix}/item-{i:06}");
        let mesh = node.mesh.clone();
        let filler = filler.clone();
        async move {
            mesh.commit(key.as_bytes(), Expected::Absent, false, value(&filler))
                .await
                .unwrap()
                .unwrap();
        }
    });
    futures::stream::iter(writes)
        .buffer_unordered(64)
        .collect::<Vec<()>>()
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn late_and_restarted_nodes_catch_up() {
    let a = start(&[]).await;
    let b = start(&[&a]).await;
    eventually("two nodes", Duration::from_secs(10), || {
        fully_meshed(&[&a, &b])
    })
    .await;
    write_many(&a, "/core/secrets/default", 50, 200).await;
    eventually("a and b agree", Duration::from_secs(5), || {
        a.replica.digests() == b.replica.digests()
    })
    .await;

    // A node that starts later joins through B and catches up before it is ready.
    let c = start(&[&b]).await;
    tokio::time::timeout(Duration::from_secs(10), c.mesh.synced())
        .await
        .expect("late node synced");
    assert_eq!(c.replica.digests(), a.replica.digests());
    eventually("three nodes", Duration::from_secs(10), || {
        fully_meshed(&[&a, &b, &c])
    })
    .await;

    // C goes away, the mesh moves on, C comes back with its old replica and identity.
    c.mesh.shutdown().await;
    eventually("c left", Duration::from_secs(10), || {
        a.mesh.members().len() == 2 && b.mesh.members().len() == 2
    })
    .await;
    write_many(&a, "/core/secrets/other", 40, 200).await;
    let key = "/core/secrets/default/item-000001";
    let current = a.replica.entry(key.as_bytes()).unwrap().unwrap();
    a.mesh
        .commit(
            key.as_bytes(),
            Expected::Version(current.version),
            true,
            value(""),
        )
        .await
        .unwrap()
        .unwrap();
    assert_ne!(c.replica.digests(), a.replica.digests());

    let restarted = Mesh::start(
        config(c.keypair.clone(), vec![a.tcp_addr()]),
        c.replica.clone(),
    )
    .await
    .unwrap();
    assert_eq!(restarted.local_peer_id(), c.peer());
    assert!(
        !restarted.is_synced(),
        "a restarted node is not ready before it syncs"
    );
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(10), restarted.synced())
        .await
        .expect("restarted node synced");
    println!(
        "restarted node caught up 41 changes in {:?}",
        started.elapsed()
    );
    assert_eq!(c.replica.digests(), a.replica.digests());
    assert!(c.replica.get(key.as_bytes()).unwrap().is_none());
    restarted.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn members_redial_a_member_that_comes_back() {
    let (a, b, c) = three_nodes().await;
    let mut c_listen = tcp_addr(&c.mesh);
    if matches!(c_listen.iter().last(), Some(Protocol::P2p(_))) {
        c_listen.pop();
    }
    c.mesh.shutdown().await;
    eventually("c left", Duration::from_secs(10), || {
        a.mesh.members().len() == 2 && b.mesh.members().len() == 2
    })
    .await;
    // Nothing else is under way that could dial C (a forward, a sync round).
    tokio::time::sleep(Duration::from_secs(2)).await;

    // C comes back on its old address but knows nobody to join: A and B, which still
    // have each other, must look for it.
    let mut again = config(c.keypair.clone(), Vec::new());
    again.listen = vec![c_listen];
    let restarted = Mesh::start(again, c.replica.clone()).await.unwrap();
    let took = eventually("a and b redialled c", Duration::from_secs(5), || {
        a.mesh.members().len() == 3 && b.mesh.members().len() == 3
    })
    .await;
    println!("members found the returning node {took:?} after it listened again");
    restarted.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fresh_node_pulls_2000_entries() {
    let a = start(&[]).await;
    let started = Instant::now();
    write_many(&a, "/core/configmaps/bulk", 2000, 1024).await;
    println!("2,000 local commits of 1 KiB on A: {:?}", started.elapsed());
    let started = Instant::now();
    let d = start(&[&a]).await;
    tokio::time::timeout(Duration::from_secs(10), d.mesh.synced())
        .await
        .expect("fresh node synced");
    let took = started.elapsed();
    println!("fresh node joined and pulled 2,000 entries in {took:?}");
    assert_eq!(d.replica.digests(), a.replica.digests());
    // Each entry arrived once: pulled, or published by A while A was still publishing.
    let stats = d.mesh.stats();
    assert_eq!(stats.entries_pulled + stats.publications_applied, 2000);
    // The pulled resource's topic is followed, so later changes arrive by publication.
    let key = "/core/configmaps/bulk/item-000007";
    let current = a.replica.entry(key.as_bytes()).unwrap().unwrap();
    let updated = d
        .mesh
        .commit(
            key.as_bytes(),
            Expected::Version(current.version),
            false,
            value("new"),
        )
        .await
        .unwrap()
        .unwrap();
    eventually("update back on A", Duration::from_secs(3), || {
        has(&a, key, &updated.version)
    })
    .await;
}

/// The 100k-object join target (run with `--ignored`, ideally `--release`).
#[tokio::test(flavor = "multi_thread")]
#[ignore]
async fn a_fresh_node_pulls_100k_entries() {
    let a = start_with_durability(config(Keypair::generate_ed25519(), Vec::new()), true).await;
    let origin: Bytes = a.peer().to_bytes().into();
    let filler = "y".repeat(1000);
    let started = Instant::now();
    for chunk in 0..100 {
        let entries = (0..1000)
            .map(|i| Entry {
                key: Bytes::from(format!("/core/pods/ns-{chunk}/pod-{i:04}")),
                version: Version {
                    hlc: 1 + chunk * 1000 + i,
                    origin: origin.clone(),
                },
                deleted: false,
                value: value(&filler),
            })
            .collect();
        a.replica.apply_many(entries).await.unwrap();
    }
    println!(
        "100,000 entries of 1 KiB loaded on A in {:?}",
        started.elapsed()
    );
    let started = Instant::now();
    let d = start_with_durability(
        config(Keypair::generate_ed25519(), vec![a.tcp_addr()]),
        true,
    )
    .await;
    tokio::time::timeout(Duration::from_secs(60), d.mesh.synced())
        .await
        .expect("fresh node synced");
    let took = started.elapsed();
    println!("fresh node joined and pulled 100,000 entries (durable replicas) in {took:?}");
    assert_eq!(d.replica.digests(), a.replica.digests());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_peer_never_becomes_a_member() {
    let outsider = Keypair::generate_ed25519();
    let outsider_id = outsider.public().to_peer_id();
    let guarded = || {
        let mut config = config(Keypair::generate_ed25519(), Vec::new());
        config.authorizer = PeerAuthorizer(Arc::new(move |peer, _| {
            Box::pin(async move { peer != outsider_id })
        }));
        config
    };
    let a = start_with(guarded()).await;
    let mut friend_config = guarded();
    friend_config.join = vec![a.tcp_addr()];
    let friend = start_with(friend_config).await;
    let intruder = start_with(config(outsider, vec![a.tcp_addr()])).await;
    eventually("friend admitted", Duration::from_secs(10), || {
        fully_meshed(&[&a, &friend])
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for member in [&a, &friend] {
        assert!(!member.mesh.members().contains(&intruder.peer()));
    }
    // The intruder never syncs from the mesh: it stays not ready.
    assert!(!intruder.mesh.is_synced());
    assert!(intruder.mesh.member_view().peers.is_empty());
}

fn key_homed_at(home: PeerId, other: PeerId, prefix: &str) -> String {
    (0..)
        .map(|i| format!("{prefix}-{i}"))
        .find(|k| distance(k.as_bytes(), &home) < distance(k.as_bytes(), &other))
        .unwrap()
}

/// A peer built from our behaviour but driven by the test: it claims to be ready and
/// then misbehaves as told.
struct FakePeer {
    swarm: libp2p::Swarm<behaviour::MeshBehaviour>,
    id: PeerId,
}

impl FakePeer {
    async fn new() -> FakePeer {
        let keypair = Keypair::generate_ed25519();
        let id = keypair.public().to_peer_id();
        let swarm = build_swarm(&keypair, false).unwrap();
        FakePeer { swarm, id }
    }

    /// Answers hellos (ready, no peers) and digests (refused); hands other requests and
    /// gossip events to `on_event`, which returns false to stop.
    async fn drive(
        &mut self,
        limit: Duration,
        mut on_event: impl FnMut(
            &mut libp2p::Swarm<behaviour::MeshBehaviour>,
            MeshBehaviourEvent,
        ) -> bool,
    ) {
        let deadline = tokio::time::sleep(limit);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                _ = &mut deadline => return,
                event = self.swarm.select_next_some() => {
                    let SwarmEvent::Behaviour(event) = event else { continue };
                    match event {
                        MeshBehaviourEvent::Rpc(request_response::Event::Message {
                            message: request_response::Message::Request { request: RpcRequest::Hello(_), channel, .. },
                            ..
                        }) => {
                            let hello = Hello { ready: true, peers: Vec::new() };
                            let _ = self.swarm.behaviour_mut().rpc.send_response(channel, RpcResponse::Hello(hello));
                        }
                        MeshBehaviourEvent::Rpc(request_response::Event::Message {
                            message: request_response::Message::Request { request: RpcRequest::Digests, channel, .. },
                            ..
                        }) => {
                            let _ = self.swarm.behaviour_mut().rpc.send_response(channel, RpcResponse::Error("no".into()));
                        }
                        other => {
                            if !on_event(&mut self.swarm, other) {
                                return;
                            }
                        }
                    }
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_home_that_hangs_or_vanishes_mid_forward_yields_an_error() {
    let mut cfg = config(Keypair::generate_ed25519(), Vec::new());
    cfg.forward_timeout = Duration::from_secs(3);
    let real = start_with(cfg).await;
    let mut fake = FakePeer::new().await;
    fake.swarm.dial(real.tcp_addr()).unwrap();
    let fake_id = fake.id;
    let real_mesh = real.mesh.clone();
    fake.drive(Duration::from_secs(5), |_, _| {
        real_mesh.member_view().peers.get(&fake_id) != Some(&true)
    })
    .await;
    assert_eq!(real.mesh.member_view().peers.get(&fake_id), Some(&true));

    // A home that takes the request and never answers: a timeout, not a success.
    let hung_key = key_homed_at(fake_id, real.peer(), "/apps/deployments/default/hung");
    assert_eq!(real.mesh.home_of(hung_key.as_bytes()), fake_id);
    let commit = {
        let mesh = real.mesh.clone();
        let key = hung_key.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let result = mesh
                .commit(key.as_bytes(), Expected::Absent, false, value("v"))
                .await;
            (result, started.elapsed())
        })
    };
    let mut held = Vec::new();
    fake.drive(Duration::from_secs(4), |_, event| {
        if let MeshBehaviourEvent::Rpc(request_response::Event::Message {
            message:
                request_response::Message::Request {
                    request: RpcRequest::Cas { .. },
                    channel,
                    ..
                },
            ..
        }) = event
        {
            held.push(channel);
        }
        true
    })
    .await;
    let (result, took) = commit.await.unwrap();
    assert!(
        matches!(result, Err(MeshError::Timeout { .. })),
        "{result:?}"
    );
    assert!(took >= Duration::from_secs(3) && took < Duration::from_secs(5));
    assert_eq!(held.len(), 1);
    assert!(real.replica.version(hung_key.as_bytes()).unwrap().is_none());

    // A home that drops the connection while the request is in flight: unreachable.
    let lost_key = key_homed_at(fake_id, real.peer(), "/apps/deployments/default/lost");
    let commit = {
        let mesh = real.mesh.clone();
        let key = lost_key.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let result = mesh
                .commit(key.as_bytes(), Expected::Absent, false, value("v"))
                .await;
            (result, started.elapsed())
        })
    };
    let real_id = real.peer();
    fake.drive(Duration::from_secs(3), |swarm, event| {
        if let MeshBehaviourEvent::Rpc(request_response::Event::Message {
            message:
                request_response::Message::Request {
                    request: RpcRequest::Cas { .. },
                    ..
                },
            ..
        }) = event
        {
            let _ = swarm.disconnect_peer_id(real_id);
            return false;
        }
        true
    })
    .await;
    let (result, took) = commit.await.unwrap();
    assert!(
        matches!(result, Err(MeshError::Unreachable { .. })),
        "{result:?}"
    );
    assert!(took < Duration::from_secs(2), "failed fast: {took:?}");
    assert!(real.replica.version(lost_key.as_bytes()).unwrap().is_none());
    assert_eq!(real.mesh.stats().forward_failures, 2);
    eventually("fake gone from members", Duration::from_secs(5), || {
        real.mesh.members() == vec![real.peer()]
    })
    .await;
    // With the home gone, the node is its own home again and writes succeed.
    assert!(
        real.mesh
            .commit(lost_key.as_bytes(), Expected::Absent, false, value("v"))
            .await
            .unwrap()
            .is_ok()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_and_forged_publications_are_rejected() {
    let real = start(&[]).await;
    let mut fake = FakePeer::new().await;
    let topic = "beemesh/v1/apps/deployments";
    fake.swarm
        .behaviour_mut()
        .gossipsub
        .subscribe(&IdentTopic::new(topic))
        .unwrap();
    fake.swarm.dial(real.tcp_addr()).unwrap();
    let fake_id = fake.id;
    let real_id = real.peer();
    let real_mesh = real.mesh.clone();
    let mut real_subscribed = false;
    let mut sent = false;
    let publication = |key: &str, origin: Bytes| {
        encode_publication(&Entry {
            key: Bytes::copy_from_slice(key.as_bytes()),
            version: Version {
                hlc: 1 << 40,
                origin,
            },
            deleted: false,
            value: value("payload"),
        })
    };
    let own: Bytes = fake_id.to_bytes().into();
    let forged: Bytes = PeerId::random().to_bytes().into();
    let messages = vec![
        b"\x01garbage".to_vec(),
        vec![0xff; 64],
        publication("/apps/deployments/default/forged", forged),
        publication("/core/pods/default/wrong-topic", own.clone()),
        publication("/apps/deployments/default/ok", own),
    ];
    fake.drive(Duration::from_secs(10), |swarm, event| {
        if let MeshBehaviourEvent::Gossipsub(gossipsub::Event::Subscribed { peer_id, .. }) = event
            && peer_id == real_id
        {
            real_subscribed = true;
        }
        if real_subscribed && !sent && real_mesh.members().contains(&fake_id) {
            for data in &messages {
                swarm
                    .behaviour_mut()
                    .gossipsub
                    .publish(IdentTopic::new(topic), data.clone())
                    .unwrap();
            }
            sent = true;
        }
        !sent
    })
    .await;
    assert!(sent, "the fake peer got to publish");
    // The counter moves once the apply is durable, a moment after the value is readable.
    eventually("valid publication applied", Duration::from_secs(5), || {
        real.replica
            .get(b"/apps/deployments/default/ok")
            .unwrap()
            .is_some()
            && real.mesh.stats().publications_applied == 1
    })
    .await;
    let stats = real.mesh.stats();
    assert_eq!(stats.publications_rejected, 4, "{stats:?}");
    assert_eq!(stats.publications_applied, 1);
    assert!(
        real.replica
            .version(b"/apps/deployments/default/forged")
            .unwrap()
            .is_none()
    );
    assert!(
        real.replica
            .version(b"/core/pods/default/wrong-topic")
            .unwrap()
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_replica_origin_must_be_the_peer_id() {
    let dir = tempfile::tempdir().unwrap();
    let replica = Replica::open(dir.path(), ReplicaConfig::default()).unwrap();
    let result = Mesh::start(config(Keypair::generate_ed25519(), Vec::new()), replica).await;
    assert!(matches!(result, Err(MeshError::OriginMismatch(_))));
}

#[cfg(feature = "quic")]
#[tokio::test(flavor = "multi_thread")]
async fn nodes_mesh_over_quic() {
    let mut first = config(Keypair::generate_ed25519(), Vec::new());
    first.listen = vec!["/ip4/127.0.0.1/udp/0/quic-v1".parse().unwrap()];
    let a = start_with(first).await;
    let quic = a.mesh.listen_addrs().into_iter().next().unwrap();
    let mut second = config(Keypair::generate_ed25519(), vec![quic]);
    second.listen = vec!["/ip4/127.0.0.1/udp/0/quic-v1".parse().unwrap()];
    let b = start_with(second).await;
    eventually("two nodes over QUIC", Duration::from_secs(10), || {
        fully_meshed(&[&a, &b])
    })
    .await;
    let key = "/apps/deployments/default/quic";
    let entry = b
        .mesh
        .commit(key.as_bytes(), Expected::Absent, false, value("q"))
        .await
        .unwrap()
        .unwrap();
    eventually("replicated over QUIC", Duration::from_secs(3), || {
        has(&a, key, &entry.version)
    })
    .await;
}
