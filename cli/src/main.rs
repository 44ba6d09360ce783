//! The `beemesh` binary: a thin `main` over one composition root (`node::run`).

mod dev;
mod go_duration;
mod membership;
mod node;
mod placement_mesh;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// mimalloc: less time in malloc on the request path and less fragmentation than glibc's
/// per-thread arenas (RSS per stored object is a target).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "beemesh",
    version,
    about = "A peer-to-peer Kubernetes control plane node"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// `up`'s flags are parsed once per process; boxing them would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Start a node: serves the Kubernetes API over HTTPS from a local fjall replica.
    Up(node::UpArgs),
    /// Start N local nodes joined into one mesh (child processes on 127.0.0.1) and write
    /// one kubeconfig with a context per node; Ctrl-C stops them all.
    Dev(dev::DevArgs),
    /// Print the admin kubeconfig of a node's data directory.
    Kubeconfig {
        #[arg(long)]
        data_dir: PathBuf,
    },
    /// Print the version.
    Version,
}

fn main() -> anyhow::Result<()> {
    // libp2p's QUIC may pull in a second rustls provider; pin ring before any TLS use.
    let _ = rustls::crypto::ring::default_provider().install_default();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BEEMESH_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Up(args) => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime.block_on(node::run(args))
        }
        Command::Dev(args) => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(dev::run(args))
        }
        Command::Kubeconfig { data_dir } => {
            let path = data_dir.join("kubeconfig");
            let text = std::fs::read_to_string(&path).map_err(|e| {
                anyhow::anyhow!("{}: {e} (has `beemesh up` run here?)", path.display())
            })?;
            print!("{text}");
            Ok(())
        }
        Command::Version => {
            println!(
                "beemesh {} (Kubernetes API {})",
                env!("CARGO_PKG_VERSION"),
                beemesh_apiserver::app::KUBE_GIT_VERSION
            );
            Ok(())
        }
    }
}
