//! The composition root: builds a node from its flags and runs it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use beemesh_apiserver::pki::NodePki;
use beemesh_apiserver::state::AppState;
use beemesh_mesh_backend::Replica;
use beemesh_translator::catalog::Catalog;
use beemesh_translator::service::ObjectService;
use beemesh_translator::store::{self, ObjectStore};
use beemesh_translator::Registry;
use beemesh_workloads::NamespaceController;
use clap::Args;

#[derive(Args, Debug)]
pub struct UpArgs {
    /// Where the replica, certificates and kubeconfig live.
    #[arg(long)]
    pub data_dir: PathBuf,
    /// HTTPS address of the Kubernetes API.
    #[arg(long, default_value = "127.0.0.1:6443")]
    pub api_listen: SocketAddr,
    /// The node's name (defaults to the host name).
    #[arg(long)]
    pub node_name: Option<String>,
}

pub async fn run(args: UpArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating {}", args.data_dir.display()))?;
    let node_name = args.node_name.clone().unwrap_or_else(|| {
        std::fs::read_to_string("/etc/hostname")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "beemesh".into())
    });
    let ip = args.api_listen.ip();
    let mut sans = vec![ip.to_string(), node_name.clone()];
    if ip.is_unspecified() {
        sans.push("127.0.0.1".into());
    }
    let pki = NodePki::load_or_create(&args.data_dir, &sans).context("certificates")?;
    let replica = Replica::open(&args.data_dir.join("store"), store::replica_config())
        .context("opening the replica")?;
    let registry = Arc::new(Registry::builtin());
    let catalog = Catalog::builtin();
    let service = ObjectService::new(ObjectStore::new(replica.clone()), registry.clone(), catalog);
    service
        .bootstrap_namespaces()
        .await
        .context("creating the system namespaces")?;

    let state = AppState::new(service.clone(), pki.admin_token.clone());
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

    tokio::spawn(NamespaceController::new(service.clone(), pki.ca_cert_pem.clone()).run());
    let router = beemesh_apiserver::app::router(state.clone());
    let server = tokio::spawn(beemesh_apiserver::server::serve(listener, tls, router));
    state.set_ready(true);
    println!("beemesh node {node_name} serving the Kubernetes API at {url}");
    println!("kubeconfig: {}", kubeconfig_path.display());
    tracing::info!(%url, node = %node_name, "ready");

    tokio::select! {
        _ = server => {}
        _ = shutdown_signal() => tracing::info!("shutting down"),
    }
    replica.close();
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
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
