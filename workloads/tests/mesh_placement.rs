//! Placement by tender and bid between real meshes in one process (ADR 0009, issue #5):
//! three nodes on 127.0.0.1, each with its own replica, object service and Node
//! (registered by `NodeRegistration`, labelled with its peer id). The placement home
//! tenders on gossipsub; the other processes bid for their Nodes over request-response.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use beemesh_mesh_backend::mesh::{
    Keypair, Mesh, MeshConfig, MeshHandle, Multiaddr, PeerId, PlacementInbox, multiaddr::Protocol,
};
use beemesh_mesh_backend::{Replica, ReplicaConfig};
use beemesh_translator::Registry;
use beemesh_translator::catalog::Catalog;
use beemesh_translator::service::{ObjectService, WriteOptions};
use beemesh_translator::store::{self, ObjectStore};
use beemesh_workloads::placement::mesh_bids::{Inbound, MeshBids, PlacementStats, TenderTransport};
use beemesh_workloads::placement::placement_key;
use beemesh_workloads::{NodeConfig, NodeRegistration, PlacementController};
use futures::future::BoxFuture;
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::sync::mpsc;

/// The test's [`TenderTransport`] over a mesh handle (the binary's is the same).
struct Transport(MeshHandle);

impl TenderTransport for Transport {
    fn local_peer(&self) -> String {
        self.0.local_peer_id().to_string()
    }
    fn live_peers(&self) -> Vec<String> {
        self.0
            .member_view()
            .peers
            .keys()
            .map(PeerId::to_string)
            .collect()
    }
    fn publish_tender(&self, payload: Vec<u8>) -> BoxFuture<'static, Result<(), String>> {
        let mesh = self.0.clone();
        Box::pin(async move {
            mesh.publish_tender(payload)
                .await
                .map_err(|e| e.to_string())
        })
    }
    fn send_bids(&self, home: &str, payload: Vec<u8>) -> BoxFuture<'static, Result<(), String>> {
        let mesh = self.0.clone();
        let home = home.parse::<PeerId>();
        Box::pin(async move {
            let home = home.map_err(|e| e.to_string())?;
            mesh.send_bids(home, payload.into(), Duration::from_secs(1))
                .await
                .map_err(|e| e.to_string())
        })
    }
}

fn inbound(mut rx: mpsc::Receiver<(PeerId, bytes::Bytes)>) -> Inbound {
    let (tx, out) = mpsc::channel(256);
    tokio::spawn(async move {
        while let Some((peer, payload)) = rx.recv().await {
            let _ = tx.send((peer.to_string(), payload.to_vec())).await;
        }
    });
    out
}

struct Node {
    dir: TempDir,
    mesh: MeshHandle,
    service: ObjectService,
}

impl Node {
    async fn start(join: Vec<Multiaddr>) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let keypair = Keypair::generate_ed25519();
        let replica = Replica::open(
            dir.path(),
            ReplicaConfig {
                origin: keypair.public().to_peer_id().to_bytes().into(),
                ..store::replica_config()
            },
        )
        .unwrap();
        let mut config = MeshConfig::new(keypair);
        config.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()];
        config.join = join;
        config.anti_entropy_interval = Duration::from_millis(500);
        let mesh = Mesh::start(config, replica.clone()).await.unwrap();
        let store = ObjectStore::with_router(replica, Arc::new(mesh.clone()));
        let service = ObjectService::new(store, Arc::new(Registry::builtin()), Catalog::builtin());
        Node { dir, mesh, service }
    }

    fn addr(&self) -> Multiaddr {
        self.mesh
            .listen_addrs()
            .into_iter()
            .find(|a| a.iter().any(|p| matches!(p, Protocol::Tcp(_))))
            .unwrap()
    }

    /// Answers tenders for this process's Nodes and gathers bids as a home.
    fn bids(&self, window: Duration) -> (Arc<MeshBids>, Arc<PlacementStats>) {
        let PlacementInbox { tenders, bids } = self.mesh.placement_inbox().unwrap();
        let stats = Arc::new(PlacementStats::default());
        let mesh = MeshBids::start(
            self.service.clone(),
            Arc::new(Transport(self.mesh.clone())),
            (inbound(tenders), inbound(bids)),
            stats.clone(),
            window,
        );
        (mesh, stats)
    }

    /// Registers this process's Node `name` (labels `labels`) and keeps it Ready.
    fn register(&self, name: &str, labels: &[(&str, &str)]) {
        let capacity: BTreeMap<String, String> = [("cpu", "4"), ("memory", "8Gi"), ("pods", "110")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let config = NodeConfig {
            name: name.into(),
            peer_id: self.mesh.local_peer_id().to_string(),
            internal_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            daemon_port: 10250,
            kubelet_version: "v1.33.0".into(),
            beemesh_version: "test".into(),
            data_dir: self.dir.path().to_path_buf(),
            capacity: Some(capacity),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            taints: Vec::new(),
            has_runtime: true,
            lease_duration_seconds: 40,
            status_update_frequency: Duration::from_secs(10),
        };
        tokio::spawn(NodeRegistration::new(self.service.clone(), config).run());
    }

    fn get(&self, plural: &str, ns: Option<&str>, name: &str) -> Option<Value> {
        let res = self.service.registry.served("", "v1", plural).unwrap();
        self.service.store.get(&res, ns, name).ok()
    }

    /// A pod name (with `prefix`) whose placement key this node is home of.
    fn homed_name(&self, prefix: &str) -> String {
        let pods = self.service.registry.served("", "v1", "pods").unwrap();
        (0..10_000)
            .map(|i| format!("{prefix}-{i}"))
            .find(|name| {
                let key = placement_key(&json!({"metadata": {"name": name}}));
                self.service.store.is_home(&pods, Some("default"), &key)
            })
            .unwrap()
    }

    async fn create_pod(&self, name: &str, selector: Value) {
        let pods = self.service.registry.served("", "v1", "pods").unwrap();
        let pod = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name},
            "spec": {"nodeSelector": selector, "containers": [{"name": "c", "image": "nginx",
                     "resources": {"requests": {"cpu": "500m"}}}]}});
        self.service
            .create(&pods, Some("default"), pod, &WriteOptions::default())
            .await
            .unwrap();
    }
}

async fn eventually(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn ready(node: &Option<Value>) -> bool {
    node.as_ref()
        .and_then(|n| n.pointer("/status/conditions"))
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

/// Three meshed nodes, system namespaces created, Nodes `node-b` and `node-c` (both
/// `disk=ssd`) registered by B and C and Ready on A's replica. A hosts no Node.
async fn cluster() -> [Node; 3] {
    let a = Node::start(Vec::new()).await;
    let b = Node::start(vec![a.addr()]).await;
    let c = Node::start(vec![a.addr()]).await;
    eventually("three members, synced", Duration::from_secs(20), || {
        [&a, &b, &c]
            .iter()
            .all(|n| n.mesh.members().len() == 3 && n.mesh.is_synced())
    })
    .await;
    a.service.bootstrap_namespaces().await.unwrap();
    eventually("namespaces everywhere", Duration::from_secs(20), || {
        [&b, &c]
            .iter()
            .all(|n| n.get("namespaces", None, "kube-node-lease").is_some())
    })
    .await;
    b.register("node-b", &[("disk", "ssd")]);
    c.register("node-c", &[("disk", "ssd")]);
    eventually(
        "B's and C's Nodes Ready on A",
        Duration::from_secs(20),
        || ready(&a.get("nodes", None, "node-b")) && ready(&a.get("nodes", None, "node-c")),
    )
    .await;
    [a, b, c]
}

fn node_name(node: &Node, pod: &str) -> Option<String> {
    node.get("pods", Some("default"), pod).and_then(|p| {
        p.pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .map(String::from)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pod_goes_to_a_node_of_another_process_through_its_bid() {
    let [a, b, c] = cluster().await;
    let window = Duration::from_secs(3);
    let (a_bids, a_stats) = a.bids(window);
    let (_b_bids, b_stats) = b.bids(window);
    let (_c_bids, c_stats) = c.bids(window);
    let name = a.homed_name("web");
    a.create_pod(&name, json!({"disk": "ssd"})).await;

    let mut placement = PlacementController::with_bids(a.service.clone(), a_bids);
    let started = Instant::now();
    placement.pass().await.unwrap();
    let took = started.elapsed();
    let bound = node_name(&a, &name);
    println!(
        "pod {name} bound to {bound:?} in {took:?}; A: tenders {} bids received {} fallbacks {}",
        PlacementStats::get(&a_stats.tenders_sent),
        PlacementStats::get(&a_stats.bids_received),
        PlacementStats::get(&a_stats.fallbacks),
    );
    // Only B's and C's Nodes exist: the pod lands on one of them, from their bids.
    assert!(
        matches!(bound.as_deref(), Some("node-b" | "node-c")),
        "{bound:?}"
    );
    assert_eq!(PlacementStats::get(&a_stats.tenders_sent), 1);
    assert_eq!(
        PlacementStats::get(&a_stats.bids_received),
        2,
        "one bid from each host"
    );
    assert_eq!(PlacementStats::get(&a_stats.fallbacks), 0);
    // Every host answered: the home did not wait out its window.
    assert!(took < window, "the round returned early: {took:?}");
    eventually(
        "both bidders counted their bids",
        Duration::from_secs(5),
        || {
            PlacementStats::get(&b_stats.bids_sent) == 1
                && PlacementStats::get(&c_stats.bids_sent) == 1
        },
    )
    .await;
    for n in [&a, &b, &c] {
        n.mesh.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_silent_or_vanished_bidder_does_not_stall_placement() {
    let [a, b, c] = cluster().await;
    let window = Duration::from_millis(800);
    let (a_bids, a_stats) = a.bids(window);
    let (_b_bids, _) = b.bids(window);
    // C hosts a Ready Node but never answers a tender (its placement is not running).
    let mut placement = PlacementController::with_bids(a.service.clone(), a_bids);
    let first = a.homed_name("silent");
    a.create_pod(&first, json!({"disk": "ssd"})).await;
    let started = Instant::now();
    placement.pass().await.unwrap();
    let took = started.elapsed();
    println!(
        "silent bidder: {first} bound to {:?} in {took:?}; fallbacks {}",
        node_name(&a, &first),
        PlacementStats::get(&a_stats.fallbacks)
    );
    assert!(
        node_name(&a, &first).is_some(),
        "placed despite C's silence"
    );
    assert_eq!(PlacementStats::get(&a_stats.fallbacks), 1);
    assert!(
        took >= window && took < window * 4,
        "waited the window once: {took:?}"
    );

    // C vanishes from the mesh: its Node is still Ready on A's replica, but A does not
    // wait for a host that is no member, nor award it a pod it could not run.
    c.mesh.shutdown().await;
    eventually("C gone from A's members", Duration::from_secs(20), || {
        a.mesh.members().len() == 2
    })
    .await;
    let second = a.homed_name("vanished");
    a.create_pod(&second, json!({"disk": "ssd"})).await;
    let started = Instant::now();
    placement.pass().await.unwrap();
    let took = started.elapsed();
    println!(
        "vanished bidder: {second} bound to {:?} in {took:?}; fallbacks {}",
        node_name(&a, &second),
        PlacementStats::get(&a_stats.fallbacks)
    );
    assert_eq!(
        node_name(&a, &second).as_deref(),
        Some("node-b"),
        "placed on the live host after C vanished"
    );
    assert!(took < window, "no waiting for a vanished host: {took:?}");
    assert_eq!(PlacementStats::get(&a_stats.fallbacks), 1);
    for n in [&a, &b] {
        n.mesh.shutdown().await;
    }
}
