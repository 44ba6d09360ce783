//! The mesh with a CA (ADR 0004): certified members mesh, everyone else is refused and
//! hears nothing; admissions over `/beemesh/join/1`. Real swarms on 127.0.0.1.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic};
use libp2p::multiaddr::Protocol;
use libp2p::swarm::SwarmEvent;
use tempfile::TempDir;

use super::behaviour::{MeshBehaviourEvent, build_swarm};
use super::*;
use crate::replica::{Expected, Replica, ReplicaConfig};
use crate::trust::{JoinToken, MeshCa, MeshTrust, accept_admission, admission_request};

struct Node {
    _dir: TempDir,
    replica: Arc<Replica>,
    mesh: MeshHandle,
}

impl Node {
    fn peer(&self) -> PeerId {
        self.mesh.local_peer_id()
    }

    fn addr(&self) -> Multiaddr {
        self.mesh
            .listen_addrs()
            .into_iter()
            .find(|a| a.iter().any(|p| matches!(p, Protocol::Tcp(_))))
            .expect("a TCP listen address")
    }
}

struct TestMesh {
    ca: MeshCa,
    token: JoinToken,
}

impl TestMesh {
    fn new() -> TestMesh {
        let ca = MeshCa::generate().unwrap();
        let token = JoinToken::new(ca.cert_der(), &JoinToken::generate_secret()).unwrap();
        TestMesh { ca, token }
    }

    /// A member: its certificate as credential, the CA check as authorizer, admissions on.
    fn member(&self, keypair: &Keypair, join: Vec<Multiaddr>) -> MeshConfig {
        let trust = Arc::new(
            MeshTrust::new(
                self.ca.clone(),
                self.token.clone(),
                keypair.public().to_peer_id(),
            )
            .unwrap(),
        );
        let mut config = base_config(keypair.clone(), join);
        config.credential = self.ca.issue_member_cert(&keypair.public()).unwrap().into();
        config.authorizer = trust.authorizer();
        config.admitter = Some(trust.admitter());
        config
    }
}

fn base_config(keypair: Keypair, join: Vec<Multiaddr>) -> MeshConfig {
    let mut config = MeshConfig::new(keypair);
    config.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()];
    config.join = join;
    config.anti_entropy_interval = Duration::from_millis(500);
    config
}

async fn start(config: MeshConfig) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let replica = Replica::open(
        dir.path(),
        ReplicaConfig {
            origin: config.keypair.public().to_peer_id().to_bytes().into(),
            durable: false,
            ..ReplicaConfig::default()
        },
    )
    .unwrap();
    let mesh = Mesh::start(config, replica.clone()).await.unwrap();
    Node {
        _dir: dir,
        replica,
        mesh,
    }
}

async fn eventually(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn value(text: &str) -> Bytes {
    Bytes::from(format!("{{\"data\":\"{text}\"}}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn only_peers_with_a_certificate_of_this_mesh_become_members() {
    let mesh = TestMesh::new();
    let a_key = Keypair::generate_ed25519();
    let a = start(mesh.member(&a_key, Vec::new())).await;
    let b = start(mesh.member(&Keypair::generate_ed25519(), vec![a.addr()])).await;
    // A member of another mesh, and a node with no certificate at all; both would
    // accept anyone themselves.
    let other_mesh = TestMesh::new();
    let mut foreign_config = other_mesh.member(&Keypair::generate_ed25519(), vec![a.addr()]);
    foreign_config.authorizer = PeerAuthorizer::allow_all();
    let foreign = start(foreign_config).await;
    let stranger = start(base_config(Keypair::generate_ed25519(), vec![a.addr()])).await;

    eventually("a and b are members", Duration::from_secs(10), || {
        a.mesh.members().len() == 2 && b.mesh.members().len() == 2 && b.mesh.is_synced()
    })
    .await;
    let key = "/core/configmaps/default/only-members";
    let entry = a
        .mesh
        .commit(key.as_bytes(), Expected::Absent, false, value("x"))
        .await
        .unwrap()
        .unwrap();
    eventually("b has the write", Duration::from_secs(5), || {
        b.replica.get(key.as_bytes()).unwrap().is_some()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for outsider in [&foreign, &stranger] {
        assert!(!a.mesh.members().contains(&outsider.peer()));
        assert!(!b.mesh.members().contains(&outsider.peer()));
        assert!(outsider.mesh.member_view().peers.is_empty());
        assert!(!outsider.mesh.is_synced(), "an outsider never syncs");
        assert!(outsider.replica.get(key.as_bytes()).unwrap().is_none());
        assert!(outsider.replica.version(key.as_bytes()).unwrap().is_none());
    }
    // The version names the member that assigned it: the key's home (a or b, by peer id).
    assert_eq!(
        entry.version.origin.as_ref(),
        a.mesh.home_of(key.as_bytes()).to_bytes().as_slice()
    );
}

/// A raw swarm that subscribes to a topic, dials `target` and counts the publications it
/// receives for `listen_for`.
async fn eavesdrop(target: Multiaddr, topic: &str, listen_for: Duration) -> (usize, bool) {
    let keypair = Keypair::generate_ed25519();
    let mut swarm = build_swarm(&keypair, false).unwrap();
    swarm
        .behaviour_mut()
        .gossipsub
        .subscribe(&IdentTopic::new(topic))
        .unwrap();
    swarm.dial(target).unwrap();
    let mut received = 0;
    let mut heard_subscription = false;
    let deadline = tokio::time::sleep(listen_for);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            _ = &mut deadline => return (received, heard_subscription),
            event = swarm.select_next_some() => match event {
                SwarmEvent::Behaviour(MeshBehaviourEvent::Gossipsub(gossipsub::Event::Message { .. })) => {
                    received += 1;
                }
                SwarmEvent::Behaviour(MeshBehaviourEvent::Gossipsub(gossipsub::Event::Subscribed { .. })) => {
                    heard_subscription = true;
                }
                _ => {}
            }
        }
    }
}

/// Writes on `node` every 50 ms until stopped; returns how many.
fn keep_writing(
    node: &Node,
    prefix: &'static str,
) -> (tokio::task::JoinHandle<()>, Arc<AtomicUsize>) {
    let mesh = node.mesh.clone();
    let count = Arc::new(AtomicUsize::new(0));
    let written = count.clone();
    let task = tokio::spawn(async move {
        for i in 0.. {
            let key = format!("/core/configmaps/default/{prefix}-{i}");
            if let Ok(Ok(_)) = mesh
                .commit(key.as_bytes(), Expected::Absent, false, value("secret"))
                .await
            {
                written.fetch_add(1, Ordering::Relaxed);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    (task, count)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_peer_awaiting_authorization_hears_no_publications() {
    let topic = "beemesh/v1/core/configmaps";
    // The control: a peer that is admitted at once receives the publications.
    let mut open_config = base_config(Keypair::generate_ed25519(), Vec::new());
    open_config.topics = vec![topic.to_string()];
    let open = start(open_config).await;
    let (writer, _) = keep_writing(&open, "open");
    let (heard, subscribed) = eavesdrop(open.addr(), topic, Duration::from_secs(3)).await;
    writer.abort();
    assert!(subscribed);
    assert!(heard > 0, "the control peer received publications");

    // A node whose authorizer takes 4 s to refuse: meanwhile the peer is connected and
    // subscribed, but nothing is published to it.
    let mut guarded_config = base_config(Keypair::generate_ed25519(), Vec::new());
    guarded_config.topics = vec![topic.to_string()];
    guarded_config.authorizer = PeerAuthorizer(Arc::new(|_, _| {
        Box::pin(async {
            tokio::time::sleep(Duration::from_secs(4)).await;
            false
        })
    }));
    let guarded = start(guarded_config).await;
    let (writer, written) = keep_writing(&guarded, "guarded");
    let (heard, subscribed) = eavesdrop(guarded.addr(), topic, Duration::from_secs(3)).await;
    writer.abort();
    assert!(subscribed, "the outsider was connected at the gossip level");
    assert!(written.load(Ordering::Relaxed) > 20);
    assert_eq!(heard, 0, "an unauthorized peer received publications");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_joiner_with_the_token_is_admitted_and_a_wrong_token_is_refused() {
    let mesh = TestMesh::new();
    let member = start(mesh.member(&Keypair::generate_ed25519(), Vec::new())).await;
    let joiner = Keypair::generate_ed25519();
    let joiner_id = joiner.public().to_peer_id();
    let timeout = Duration::from_secs(10);

    let started = Instant::now();
    let (admitted_by, answer) = request_admission(
        &joiner,
        member.addr(),
        |m| admission_request(&mesh.token, &joiner_id, &m),
        timeout,
    )
    .await
    .unwrap();
    println!("admission answered in {:?}", started.elapsed());
    assert_eq!(admitted_by, member.peer());
    let ca = accept_admission(&mesh.token, &answer).unwrap();
    assert_eq!(ca.hash(), mesh.ca.hash());

    // Same CA, made-up secret: refused by the member.
    let wrong = JoinToken::new(mesh.ca.cert_der(), &JoinToken::generate_secret()).unwrap();
    let refused = request_admission(
        &joiner,
        member.addr(),
        |m| admission_request(&wrong, &joiner_id, &m),
        timeout,
    )
    .await;
    match refused {
        Err(MeshError::Remote { peer, message }) => {
            assert_eq!(peer, member.peer());
            assert!(message.contains("not valid"), "{message}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }

    // A node that admits no one, and an address where nobody listens.
    let closed = start(base_config(Keypair::generate_ed25519(), Vec::new())).await;
    let refused = request_admission(&joiner, closed.addr(), |_| Bytes::new(), timeout).await;
    assert!(
        matches!(&refused, Err(MeshError::Remote { message, .. }) if message.contains("admits no one")),
        "{refused:?}"
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let nowhere: Multiaddr = format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap();
    let refused = request_admission(&joiner, nowhere, |_| Bytes::new(), timeout).await;
    assert!(
        matches!(refused, Err(MeshError::Dial { .. })),
        "{refused:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_addresses_of_members_are_known_for_restarts() {
    let mesh = TestMesh::new();
    let a = start(mesh.member(&Keypair::generate_ed25519(), Vec::new())).await;
    let b = start(mesh.member(&Keypair::generate_ed25519(), vec![a.addr()])).await;
    eventually("a and b are members", Duration::from_secs(10), || {
        a.mesh.members().len() == 2
    })
    .await;
    let known = b.mesh.known_peers().await.unwrap();
    assert!(known.contains(&a.addr()), "{known:?} lacks {}", a.addr());
    assert!(
        known
            .iter()
            .all(|addr| addr.iter().any(|p| p == Protocol::P2p(a.peer())))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_member_that_meets_nobody_serves_alone_after_a_while() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let gone: Multiaddr = format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap();
    let mut waits = base_config(Keypair::generate_ed25519(), vec![gone.clone()]);
    waits.anti_entropy_interval = Duration::from_secs(60);
    let waits = start(waits).await;
    let mut alone = base_config(Keypair::generate_ed25519(), vec![gone]);
    alone.standalone_after = Some(Duration::from_millis(500));
    let alone = start(alone).await;
    eventually("serving alone", Duration::from_secs(5), || {
        alone.mesh.is_synced()
    })
    .await;
    assert!(
        !waits.mesh.is_synced(),
        "without the option a node waits for a member"
    );
}
