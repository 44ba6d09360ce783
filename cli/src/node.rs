//! The composition root: builds a node from its flags and runs it.
//!
//! What `up` prints on stdout is an interface (`beemesh dev` and tests read it), one
//! `key: value` per line: `api:` the API URL, `p2p:` each p2p address (with
//! `/p2p/<peer id>`), `kubeconfig:`, `join-token:`, then `ready:` once `/readyz` is 200.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use beemesh_apiserver::pki::NodePki;
use beemesh_apiserver::state::AppState;
use beemesh_mesh_backend::mesh::multiaddr::Protocol;
use beemesh_mesh_backend::mesh::{Mesh, MeshConfig, MeshError, MeshHandle, Multiaddr};
use beemesh_mesh_backend::trust::JoinToken;
use beemesh_mesh_backend::{Replica, ReplicaConfig};
use beemesh_translator::Registry;
use beemesh_translator::catalog::Catalog;
use beemesh_translator::service::ObjectService;
use beemesh_translator::store::{self, ObjectStore};
use beemesh_workloads::node_registration;
use beemesh_workloads::runtime::{
    DockerConfig, DockerRuntime, ProcessConfig, ProcessRuntime, Runtime, RuntimeKind, SimConfig,
    SimRuntime,
};
use beemesh_workloads::sim_nodes::SimNodes;
use beemesh_workloads::{
    EventTtlController, NamespaceController, NodeConfig, NodeLifecycleController, NodeRegistration,
};
use clap::Args;

use crate::membership::{self, Membership, MeshFiles};

/// A restarted node that meets no member within this time serves from its own replica.
const STANDALONE_AFTER: Duration = Duration::from_secs(15);

#[derive(Args, Debug)]
pub struct UpArgs {
    /// Where the replica, certificates, identity and kubeconfig live.
    #[arg(long)]
    pub data_dir: PathBuf,
    /// HTTPS address of the Kubernetes API (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:6443")]
    pub api_listen: SocketAddr,
    /// The node's name (defaults to the host name).
    #[arg(long)]
    pub node_name: Option<String>,
    /// A p2p address to listen on (repeatable). Default: the ports bound last time, or
    /// a free TCP and QUIC port on the API's IP.
    #[arg(long = "p2p-listen", value_name = "MULTIADDR")]
    pub p2p_listen: Vec<Multiaddr>,
    /// A member of the mesh to join through (repeatable; any reachable one is enough).
    #[arg(long, value_name = "MULTIADDR")]
    pub join: Vec<Multiaddr>,
    /// The mesh's join token (`DIR/join-token` on any member).
    #[arg(long = "join-token", value_name = "TOKEN")]
    pub join_token: Vec<String>,
    /// A file holding the join token (keeps it out of the process list).
    #[arg(long = "join-token-file", value_name = "PATH")]
    pub join_token_file: Option<PathBuf>,
    /// Discover peers on the local network by mDNS (multicast on every interface).
    #[arg(long)]
    pub mdns: bool,
    /// How long an Event lives after its last write (kube-apiserver's `--event-ttl`).
    #[arg(long = "event-ttl", value_name = "DURATION", default_value = "1h0m0s",
          value_parser = crate::go_duration::parse)]
    pub event_ttl: Duration,
    /// Labels of this node's Node object (`k1=v1,k2=v2`, the kubelet's `--node-labels`).
    #[arg(long = "node-labels", value_name = "KEY=VALUE", value_delimiter = ',')]
    pub node_labels: Vec<String>,
    /// Taints the Node is registered with (`key=value:Effect,...`, as the kubelet's).
    #[arg(
        long = "register-with-taints",
        value_name = "TAINT",
        value_delimiter = ','
    )]
    pub register_with_taints: Vec<String>,
    /// The Node's capacity (`cpu=4,memory=16Gi,pods=110`) instead of this machine's
    /// (for simulated nodes); allocatable is then the same.
    #[arg(long, value_name = "RESOURCE=QUANTITY", value_delimiter = ',')]
    pub capacity: Vec<String>,
    /// How long a Node's Lease may go unrenewed before it is marked NotReady (unreachable).
    #[arg(long = "node-monitor-grace-period", value_name = "DURATION", default_value = "40s",
          value_parser = crate::go_duration::parse)]
    pub node_monitor_grace_period: Duration,
    /// The node Lease's duration; it is renewed every quarter of it (the kubelet's
    /// `nodeLeaseDurationSeconds`).
    #[arg(long = "node-lease-duration-seconds", value_name = "SECONDS", default_value_t = 40,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub node_lease_duration_seconds: u32,
    /// How often the Node's status is computed and posted when it changed (the kubelet's
    /// `nodeStatusUpdateFrequency`).
    #[arg(long = "node-status-update-frequency", value_name = "DURATION", default_value = "10s",
          value_parser = crate::go_duration::parse)]
    pub node_status_update_frequency: Duration,
    /// What runs the pods bound to this node: `sim` (pretends, for scale tests), `process`
    /// (host processes) or `docker` (containers of the local Docker Engine). Without it pods
    /// bound here stay Pending.
    #[arg(long, value_name = "sim|process|docker")]
    pub runtime: Option<RuntimeKind>,
    /// With `--runtime sim`: how long containers stay ContainerCreating before Running.
    #[arg(long = "sim-start-delay", value_name = "DURATION", default_value = "0s",
          value_parser = crate::go_duration::parse)]
    pub sim_start_delay: Duration,
    /// Simulated Nodes this process registers besides its own (`<node>-sim-0001` …), kwok-
    /// style: each has a Lease and status, and the pods bound to them run on the `sim`
    /// runtime here (for placement and startup benchmarks). Independent of `--runtime`.
    #[arg(long = "sim-nodes", value_name = "N", default_value_t = 0)]
    pub sim_nodes: usize,
    /// Capacity (= allocatable) of each simulated Node [default: cpu=32,memory=256Gi,pods=110].
    #[arg(
        long = "sim-node-capacity",
        value_name = "RESOURCE=QUANTITY",
        value_delimiter = ','
    )]
    pub sim_node_capacity: Vec<String>,
}

/// Labels the docker runtime adds to everything it makes, from `BEEMESH_DOCKER_LABELS`
/// (`key=value,...`; test harnesses put their owner label there).
fn docker_extra_labels() -> Vec<(String, String)> {
    std::env::var("BEEMESH_DOCKER_LABELS")
        .unwrap_or_default()
        .split(',')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .filter(|(k, _)| !k.is_empty())
        .collect()
}

/// The runtime `--runtime` names, connected (docker) or set up (process, sim) at startup.
async fn runtime_of(
    kind: Option<RuntimeKind>,
    node_name: &str,
    start_delay: Duration,
    data_dir: &std::path::Path,
) -> anyhow::Result<Option<Arc<dyn Runtime>>> {
    match kind {
        None => Ok(None),
        // Pods run as host processes under `<data-dir>/pods/<uid>/` (ADR 0010).
        Some(RuntimeKind::Process) => Ok(Some(Arc::new(ProcessRuntime::new(ProcessConfig {
            data_dir: data_dir.to_path_buf(),
        })))),
        Some(RuntimeKind::Sim) => Ok(Some(Arc::new(SimRuntime::new(SimConfig {
            node_name: node_name.to_string(),
            start_delay,
        })))),
        // Pods run as Docker containers of the local engine (ADR 0010, "docker").
        Some(RuntimeKind::Docker) => Ok(Some(Arc::new(
            DockerRuntime::connect(DockerConfig {
                node_name: node_name.to_string(),
                extra_labels: docker_extra_labels(),
                data_dir: data_dir.to_path_buf(),
            })
            .await
            .context("--runtime docker")?,
        ))),
    }
}

/// The one token the flags name (repeating the same token is fine).
fn token_of(flags: &[String]) -> anyhow::Result<Option<JoinToken>> {
    let mut tokens = Vec::new();
    for text in flags {
        let token: JoinToken = text.parse().context("--join-token")?;
        if !tokens.contains(&token) {
            tokens.push(token);
        }
    }
    match tokens.len() {
        0 => Ok(None),
        1 => Ok(tokens.pop()),
        _ => anyhow::bail!("the --join-token values name different meshes; give one"),
    }
}

pub async fn run(args: UpArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating {}", args.data_dir.display()))?;
    let node_name = args.node_name.clone().unwrap_or_else(|| {
        std::fs::read_to_string("/etc/hostname")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "beemesh".into())
    });
    let mut token_flags = args.join_token.clone();
    if let Some(path) = &args.join_token_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("--join-token-file {}", path.display()))?;
        token_flags.push(text.trim().to_string());
    }
    let token = token_of(&token_flags)?;
    let runtime = runtime_of(
        args.runtime,
        &node_name,
        args.sim_start_delay,
        &args.data_dir,
    )
    .await?;
    let node_labels = node_registration::parse_key_values("--node-labels", &args.node_labels)?;
    let node_taints = node_registration::parse_taints(&args.register_with_taints)?;
    let sim_node_capacity = if args.sim_node_capacity.is_empty() {
        None
    } else {
        Some(node_registration::parse_capacity(&args.sim_node_capacity)?)
    };
    let node_capacity = if args.capacity.is_empty() {
        None
    } else {
        Some(node_registration::parse_capacity(&args.capacity)?)
    };
    let files = MeshFiles::new(&args.data_dir);
    let membership = membership::establish(&files, &args.join, token.as_ref()).await?;
    if let Some(member) = membership.admitted_by {
        tracing::info!(%member, "joined the mesh; certificates come from its CA");
    }

    // The mesh CA is in DIR/pki now: the API's certificates are issued from it.
    let ip = args.api_listen.ip();
    let mut sans = vec![ip.to_string(), node_name.clone()];
    if ip.is_unspecified() {
        sans.push("127.0.0.1".into());
    }
    let pki = NodePki::load_or_create(&args.data_dir, &sans).context("certificates")?;
    let peer_id = membership.keypair.public().to_peer_id();
    let replica = Replica::open(
        &args.data_dir.join("store"),
        ReplicaConfig {
            origin: peer_id.to_bytes().into(),
            ..store::replica_config()
        },
    )
    .context("opening the replica")?;
    let mesh = start_mesh(&args, &files, &membership, replica.clone()).await?;
    let bound: Vec<Multiaddr> = mesh
        .listen_addrs()
        .into_iter()
        .map(|mut a| {
            if matches!(a.iter().last(), Some(Protocol::P2p(_))) {
                a.pop();
            }
            a
        })
        .collect();
    if args.p2p_listen.is_empty()
        && let Err(e) = files.save_listen(&bound)
    {
        tracing::warn!(error = %e, "cannot save the p2p listen addresses");
    }

    let registry = Arc::new(Registry::builtin());
    let catalog = Catalog::builtin();
    let store = ObjectStore::with_router(replica.clone(), Arc::new(mesh.clone()));
    let service = ObjectService::new(store, registry.clone(), catalog);
    // Custom resources are served from the first request: the CRDs this replica holds are
    // registered now, and every later CRD change on this node's replica as it lands.
    beemesh_workloads::CrdRegistrar::new(service.clone()).start();
    // ServiceAccount tokens are signed with the mesh CA key, which every member holds,
    // so a token issued by one node verifies on all of them and across restarts.
    let state = AppState::with_pki(service.clone(), &pki);
    // pods/log, exec, attach and portforward: served from this node's runtime, or proxied
    // to the pod's node with a node client certificate (ADR 0011).
    let peer_client = match beemesh_apiserver::pod_streams::proxy::PeerClient::new(&pki, &node_name)
    {
        Ok(c) => Some(Arc::new(c)),
        Err(e) => {
            tracing::warn!(error = %e, "no node client certificate: pod streams are not proxied to other nodes");
            None
        }
    };
    state.set_node_streams(beemesh_apiserver::state::NodeStreams {
        node_name: node_name.clone(),
        runtime: runtime.clone(),
        peer_client,
    });
    let tls = beemesh_apiserver::server::tls_config(&pki)?;
    let listener = tokio::net::TcpListener::bind(args.api_listen)
        .await
        .with_context(|| format!("binding {}", args.api_listen))?;
    let local = listener.local_addr()?;
    let host = if local.ip().is_unspecified() {
        "127.0.0.1".to_string()
    } else {
        local.ip().to_string()
    };
    let url = format!("https://{host}:{}", local.port());
    let kubeconfig = pki.kubeconfig(&[(node_name.clone(), url.clone())], &node_name);
    let kubeconfig_path = args.data_dir.join("kubeconfig");
    std::fs::write(&kubeconfig_path, kubeconfig).context("writing kubeconfig")?;

    let router = beemesh_apiserver::app::router(state.clone());
    let server = tokio::spawn(beemesh_apiserver::server::serve(listener, tls, router));
    println!("beemesh node {node_name} serving the Kubernetes API at {url}");
    println!("api: {url}");
    for addr in mesh.listen_addrs() {
        println!("p2p: {addr}");
    }
    println!("kubeconfig: {}", kubeconfig_path.display());
    println!("join-token: {}", files.token().display());
    tokio::spawn(membership::save_peers_forever(
        MeshFiles::new(&args.data_dir),
        mesh.clone(),
    ));
    let node = NodeConfig {
        name: node_name.clone(),
        peer_id: peer_id.to_string(),
        internal_ip: internal_ip(local.ip(), &bound),
        daemon_port: local.port(),
        kubelet_version: beemesh_apiserver::app::KUBE_GIT_VERSION.to_string(),
        beemesh_version: env!("CARGO_PKG_VERSION").to_string(),
        data_dir: args.data_dir.clone(),
        capacity: node_capacity,
        labels: node_labels,
        taints: node_taints,
        has_runtime: runtime.is_some(),
        lease_duration_seconds: args.node_lease_duration_seconds,
        status_update_frequency: args.node_status_update_frequency,
    };
    tokio::spawn(become_ready(
        mesh.clone(),
        service,
        state,
        pki.ca_cert_pem.clone(),
        local,
        Controllers {
            event_ttl: args.event_ttl,
            node,
            node_monitor_grace_period: args.node_monitor_grace_period,
            runtime,
            sim_nodes: (args.sim_nodes, sim_node_capacity, args.sim_start_delay),
        },
    ));

    tokio::select! {
        _ = server => {}
        _ = shutdown_signal() => tracing::info!("shutting down"),
    }
    let _ = membership::save_peers(&files, &mesh).await;
    mesh.shutdown().await;
    replica.close();
    Ok(())
}

/// What the controllers started at readiness are configured with.
struct Controllers {
    event_ttl: Duration,
    node: NodeConfig,
    node_monitor_grace_period: Duration,
    /// `--runtime`: when set, this node runs the pods bound to it.
    runtime: Option<Arc<dyn Runtime>>,
    /// `--sim-nodes`, `--sim-node-capacity`, `--sim-start-delay`.
    sim_nodes: (usize, Option<BTreeMap<String, String>>, Duration),
}

/// Ready = serving and caught up with the mesh: system namespaces and controllers start
/// only on a synced replica (a node still catching up would create duplicates).
async fn become_ready(
    mesh: MeshHandle,
    service: ObjectService,
    state: AppState,
    ca_pem: String,
    api: std::net::SocketAddr,
    controllers: Controllers,
) {
    let Controllers {
        event_ttl,
        node,
        node_monitor_grace_period,
        runtime,
        sim_nodes: (sim_count, sim_capacity, sim_start_delay),
    } = controllers;
    let node_name = node.name.clone();
    let started = std::time::Instant::now();
    mesh.synced().await;
    let mut attempt = 0u32;
    while let Err(e) = service.bootstrap_namespaces().await {
        attempt += 1;
        tracing::warn!(error = %e, attempt, "creating the system namespaces failed; retrying");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    if let Err(e) = service.bootstrap_api_endpoints(api).await {
        tracing::warn!(error = %e, "registering this API server in the kubernetes Endpoints failed");
    }
    tokio::spawn(EventTtlController::new(service.clone(), event_ttl).run());
    tokio::spawn(beemesh_workloads::CrdController::new(service.clone()).run());
    // Sharded like every controller: each node collects the dependents it is home of.
    tokio::spawn(beemesh_workloads::GarbageCollector::new(service.clone()).run());
    tokio::spawn(beemesh_workloads::PodTerminationController::new(service.clone()).run());
    tokio::spawn(beemesh_workloads::DeploymentController::new(service.clone()).run());
    tokio::spawn(beemesh_workloads::ReplicaSetController::new(service.clone()).run());
    tokio::spawn(beemesh_workloads::EndpointSliceController::new(service.clone()).run());
    tokio::spawn(beemesh_workloads::EndpointsController::new(service.clone()).run());
    tokio::spawn(beemesh_workloads::ResourceQuotaController::new(service.clone()).run());
    tokio::spawn(beemesh_workloads::JobController::new(service.clone()).run());
    tokio::spawn(beemesh_workloads::DaemonSetController::new(service.clone()).run());
    tokio::spawn(beemesh_workloads::CronJobController::new(service.clone()).run());
    // Each node awards the unbound pods it is home of to the best-fitting Node, from the
    // bids of the processes hosting the Nodes (tenders on the mesh, ADR 0009).
    let placement = match crate::placement_mesh::start(&mesh, service.clone()) {
        Some(bids) => beemesh_workloads::PlacementController::with_bids(service.clone(), bids),
        None => beemesh_workloads::PlacementController::new(service.clone()),
    };
    tokio::spawn(placement.run());
    // This node's own Node and Lease (the kubelet's part) and, for the Nodes it is home
    // of, the node lifecycle controller.
    // With a runtime, this node is the kubelet of the pods bound to it; without one,
    // `PodTerminationController` alone ends their deletions.
    // One agent serves this node (with a runtime) and every simulated node.
    let sim = SimNodes::new(&node, sim_count, sim_capacity, sim_start_delay);
    let served: Vec<(String, Arc<dyn Runtime>)> = runtime
        .map(|r| (node.name.clone(), r))
        .into_iter()
        .chain(sim.runtimes())
        .collect();
    if !served.is_empty() {
        let agent =
            beemesh_workloads::PodAgent::for_nodes(service.clone(), node.internal_ip, served);
        tokio::spawn(agent.run());
    }
    sim.spawn_registrations(&service);
    tokio::spawn(NodeRegistration::new(service.clone(), node).run());
    tokio::spawn(NodeLifecycleController::new(service.clone(), node_monitor_grace_period).run());
    tokio::spawn(NamespaceController::new(service, ca_pem).run());
    state.set_ready(true);
    let members = mesh.members().len();
    println!("ready: {node_name} ({members} members)");
    tracing::info!(node = %node_name, members, elapsed = ?started.elapsed(), "ready");
}

/// The Node's InternalIP: the API's address, else the first specific p2p address, else
/// the address this host would use to reach other hosts (no packet is sent), else loopback.
fn internal_ip(api: IpAddr, p2p: &[Multiaddr]) -> IpAddr {
    if !api.is_unspecified() {
        return api;
    }
    let from_p2p = p2p.iter().find_map(|a| match a.iter().next() {
        Some(Protocol::Ip4(v4)) if !v4.is_unspecified() => Some(IpAddr::V4(v4)),
        Some(Protocol::Ip6(v6)) if !v6.is_unspecified() => Some(IpAddr::V6(v6)),
        _ => None,
    });
    if let Some(ip) = from_p2p {
        return ip;
    }
    std::net::UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| {
            s.connect("192.0.2.1:9")?;
            s.local_addr()
        })
        .map(|a| a.ip())
        .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST))
}

/// A free TCP and QUIC port on `ip`.
fn default_listen(ip: IpAddr) -> Vec<Multiaddr> {
    let base = Multiaddr::empty().with(match ip {
        IpAddr::V4(v4) => Protocol::Ip4(v4),
        IpAddr::V6(v6) => Protocol::Ip6(v6),
    });
    vec![
        base.clone().with(Protocol::Tcp(0)),
        base.with(Protocol::Udp(0)).with(Protocol::QuicV1),
    ]
}

/// Starts the mesh: the flags' listen addresses, else last run's ports on the API's IP
/// (falling back to fresh ports if they are taken), else fresh ports.
async fn start_mesh(
    args: &UpArgs,
    files: &MeshFiles,
    membership: &Membership,
    replica: Arc<Replica>,
) -> anyhow::Result<MeshHandle> {
    let local = membership.keypair.public().to_peer_id();
    let mut join = args.join.clone();
    for addr in files.saved_peers() {
        let is_self = addr.iter().any(|p| p == Protocol::P2p(local));
        if !is_self && !join.contains(&addr) {
            join.push(addr);
        }
    }
    let mut config = MeshConfig::new(membership.keypair.clone());
    config.join = join;
    config.mdns = args.mdns;
    if membership.restarted {
        config.standalone_after = Some(STANDALONE_AFTER);
    }
    membership::configure(&mut config, membership);

    let fresh = default_listen(args.api_listen.ip());
    let api_ip = match args.api_listen.ip() {
        IpAddr::V4(v4) => Protocol::Ip4(v4),
        IpAddr::V6(v6) => Protocol::Ip6(v6),
    };
    let saved: Vec<Multiaddr> = files
        .saved_listen()
        .into_iter()
        .filter(|a| a.iter().next() == Some(api_ip.clone()))
        .collect();
    let (listen, fallback) = if !args.p2p_listen.is_empty() {
        (args.p2p_listen.clone(), None)
    } else if !saved.is_empty() {
        (saved, Some(fresh))
    } else {
        (fresh, None)
    };
    config.listen = listen;
    match Mesh::start(config.clone(), replica.clone()).await {
        Ok(mesh) => Ok(mesh),
        Err(MeshError::Listen { addr, reason }) if fallback.is_some() => {
            tracing::warn!(%addr, %reason, "last run's p2p port is taken; using a new one");
            config.listen = fallback.unwrap_or_default();
            Ok(Mesh::start(config, replica)
                .await
                .context("starting the mesh")?)
        }
        Err(e) => Err(e).context("starting the mesh"),
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_token_may_be_repeated_but_two_meshes_are_refused() {
        let token = |secret: &str| {
            JoinToken::new(b"ca", secret)
                .map(|t| t.to_string())
                .unwrap()
        };
        let a = token("0123456789abcdef0123456789abcdef");
        let b = token("fedcba9876543210fedcba9876543210");
        assert!(token_of(&[]).unwrap().is_none());
        assert_eq!(
            token_of(&[a.clone(), a.clone()])
                .unwrap()
                .map(|t| t.to_string()),
            Some(a.clone())
        );
        let two = token_of(&[a, b]).unwrap_err().to_string();
        assert!(two.contains("different meshes"), "{two}");
        let bad = format!("{:#}", token_of(&["nonsense".into()]).unwrap_err());
        assert!(
            bad.contains("--join-token") && bad.contains("bm1."),
            "{bad}"
        );
    }

    #[test]
    fn the_internal_ip_is_the_api_ip_else_a_specific_p2p_ip() {
        let p2p: Vec<Multiaddr> = vec!["/ip4/10.0.0.7/tcp/4001".parse().unwrap()];
        assert_eq!(
            internal_ip("192.168.1.2".parse().unwrap(), &p2p),
            "192.168.1.2".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            internal_ip("0.0.0.0".parse().unwrap(), &p2p),
            "10.0.0.7".parse::<IpAddr>().unwrap()
        );
        let unspecified: Vec<Multiaddr> = vec!["/ip4/0.0.0.0/tcp/4001".parse().unwrap()];
        assert!(!internal_ip("0.0.0.0".parse().unwrap(), &unspecified).is_unspecified());
    }

    #[test]
    fn p2p_listens_by_default_on_the_api_ip_over_tcp_and_quic() {
        let v4 = default_listen("10.1.2.3".parse().unwrap());
        assert_eq!(
            v4.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
            ["/ip4/10.1.2.3/tcp/0", "/ip4/10.1.2.3/udp/0/quic-v1"]
        );
        let v6 = default_listen("::1".parse().unwrap());
        assert_eq!(v6[0].to_string(), "/ip6/::1/tcp/0");
    }
}
