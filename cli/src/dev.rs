//! `beemesh dev`: N local nodes, each a `beemesh up` child process on 127.0.0.1 (as
//! close to real nodes as one machine gets), joined into one mesh, with one kubeconfig
//! that has a context per node.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use beemesh_apiserver::pki::NodePki;
use clap::Args;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

/// How long a node may take from spawn to ready.
const READY_TIMEOUT: Duration = Duration::from_secs(120);
/// How long nodes get to stop after SIGTERM before they are killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_NODES: usize = 64;

#[derive(Args, Debug)]
pub struct DevArgs {
    /// How many nodes to run.
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    /// Holds node-1 … node-N (each a node's data directory) and the shared kubeconfig.
    #[arg(long)]
    pub data_dir: PathBuf,
    /// API port of node-1; node-i listens on base-port + i - 1. 0 picks free ports.
    #[arg(long, default_value_t = 6443)]
    pub base_port: u16,
    /// How long an Event lives after its last write, on every node (`up --event-ttl`).
    #[arg(long = "event-ttl", value_name = "DURATION", default_value = "1h0m0s",
          value_parser = crate::go_duration::parse)]
    pub event_ttl: std::time::Duration,
    /// How long a Node's Lease may go unrenewed before it is marked NotReady, on every
    /// node (`up --node-monitor-grace-period`).
    #[arg(long = "node-monitor-grace-period", value_name = "DURATION", default_value = "40s",
          value_parser = crate::go_duration::parse)]
    pub node_monitor_grace_period: std::time::Duration,
    /// The node Leases' duration, on every node (`up --node-lease-duration-seconds`).
    #[arg(long = "node-lease-duration-seconds", value_name = "SECONDS", default_value_t = 40,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub node_lease_duration_seconds: u32,
    /// What runs pods on every node (`up --runtime`); none by default.
    #[arg(long, value_name = "sim|process|docker")]
    pub runtime: Option<beemesh_workloads::runtime::RuntimeKind>,
}

/// What a node printed that `dev` needs.
#[derive(Debug, Default, Clone)]
struct Started {
    api: Option<String>,
    p2p: Vec<String>,
    ready: bool,
}

struct NodeProcess {
    index: usize,
    name: String,
    log: PathBuf,
    child: Child,
    started: Started,
}

enum Report {
    Line(usize, String),
    Closed(usize),
}

fn node_name(i: usize) -> String {
    format!("node-{i}")
}

fn spawn_node(
    exe: &Path,
    args: &DevArgs,
    i: usize,
    join: Option<(&str, &Path)>,
    reports: mpsc::Sender<Report>,
) -> anyhow::Result<NodeProcess> {
    let name = node_name(i);
    let dir = args.data_dir.join(&name);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let port = if args.base_port == 0 {
        0
    } else {
        args.base_port.checked_add((i - 1) as u16).ok_or_else(|| {
            anyhow!(
                "--base-port {} leaves no room for {i} nodes",
                args.base_port
            )
        })?
    };
    let log_path = dir.join("node.log");
    let log = std::fs::File::create(&log_path)
        .with_context(|| format!("creating {}", log_path.display()))?;
    let mut command = Command::new(exe);
    command
        .arg("up")
        .arg("--data-dir")
        .arg(&dir)
        .arg("--api-listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--node-name")
        .arg(&name)
        .arg("--event-ttl")
        .arg(crate::go_duration::format(args.event_ttl))
        .arg("--node-monitor-grace-period")
        .arg(crate::go_duration::format(args.node_monitor_grace_period))
        .arg("--node-lease-duration-seconds")
        .arg(args.node_lease_duration_seconds.to_string());
    if let Some(runtime) = args.runtime {
        command.arg("--runtime").arg(runtime.as_str());
    }
    if let Some((addr, token_file)) = join {
        command
            .arg("--join")
            .arg(addr)
            .arg("--join-token-file")
            .arg(token_file);
    }
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .kill_on_drop(true);
    #[cfg(target_os = "linux")]
    // SAFETY: prctl is async-signal-safe and touches only the child being set up.
    unsafe {
        command.pre_exec(|| {
            // The nodes die with `dev`, even when it is killed outright.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command
        .spawn()
        .with_context(|| format!("starting {name}"))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow!("{name}: no stdout"))?;
    tokio::spawn(async move {
        let mut lines = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if reports.send(Report::Line(i, line)).await.is_err() {
                return;
            }
        }
        let _ = reports.send(Report::Closed(i)).await;
    });
    Ok(NodeProcess {
        index: i,
        name,
        log: log_path,
        child,
        started: Started::default(),
    })
}

/// Echoes node output and records what it announces, until `done` holds or a node
/// stops printing (it exited).
async fn follow(
    nodes: &mut [NodeProcess],
    reports: &mut mpsc::Receiver<Report>,
    done: impl Fn(&[NodeProcess]) -> bool,
) -> anyhow::Result<()> {
    let deadline = tokio::time::sleep(READY_TIMEOUT);
    tokio::pin!(deadline);
    while !done(nodes) {
        let report = tokio::select! {
            _ = &mut deadline => bail!("the nodes did not become ready within {READY_TIMEOUT:?}"),
            report = reports.recv() => report.ok_or_else(|| anyhow!("node output closed"))?,
        };
        match report {
            Report::Line(i, line) => {
                let Some(node) = nodes.iter_mut().find(|n| n.index == i) else {
                    continue;
                };
                println!("[{}] {line}", node.name);
                if let Some(url) = line.strip_prefix("api: ") {
                    node.started.api = Some(url.trim().to_string());
                } else if let Some(addr) = line.strip_prefix("p2p: ") {
                    node.started.p2p.push(addr.trim().to_string());
                } else if line.starts_with("ready: ") {
                    node.started.ready = true;
                }
            }
            Report::Closed(i) => {
                bail!(
                    "{} exited before it was ready (its log: {})",
                    node_name(i),
                    log_of(nodes, i)
                );
            }
        }
    }
    Ok(())
}

fn log_of(nodes: &[NodeProcess], i: usize) -> String {
    nodes
        .iter()
        .find(|n| n.index == i)
        .map(|n| n.log.display().to_string())
        .unwrap_or_default()
}

pub async fn run(args: DevArgs) -> anyhow::Result<()> {
    if args.nodes == 0 || args.nodes > MAX_NODES {
        bail!("--nodes must be between 1 and {MAX_NODES}");
    }
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating {}", args.data_dir.display()))?;
    let exe = std::env::current_exe().context("finding the beemesh binary")?;
    let (report_tx, mut reports) = mpsc::channel(1024);
    // Nodes that ran here before already belong to the mesh and find each other through
    // the peers they saved: they start together. New nodes join through node-1.
    let (members, joiners): (Vec<usize>, Vec<usize>) =
        (1..=args.nodes).partition(|&i| is_member(&args, i));
    let mut nodes = Vec::new();
    let startup = async {
        let first_batch = if members.contains(&1) {
            members.clone()
        } else {
            vec![1]
        };
        for &i in &first_batch {
            nodes.push(spawn_node(&exe, &args, i, None, report_tx.clone())?);
        }
        follow(&mut nodes, &mut reports, |n| {
            n.iter().all(|node| node.started.ready)
        })
        .await?;
        let first = &nodes[0].started;
        let join = first
            .p2p
            .iter()
            .find(|a| a.contains("/tcp/"))
            .or_else(|| first.p2p.first())
            .cloned()
            .ok_or_else(|| anyhow!("node-1 printed no p2p address"))?;
        let token_file = args.data_dir.join(node_name(1)).join("join-token");
        for i in joiners
            .into_iter()
            .chain(members)
            .filter(|i| !first_batch.contains(i))
        {
            let node = spawn_node(
                &exe,
                &args,
                i,
                Some((&join, &token_file)),
                report_tx.clone(),
            )?;
            nodes.push(node);
        }
        follow(&mut nodes, &mut reports, |n| {
            n.iter().all(|node| node.started.ready)
        })
        .await?;
        nodes.sort_by_key(|n| n.index);
        write_kubeconfig(&args, &nodes)
    };
    let result = tokio::select! {
        result = startup => result,
        _ = shutdown_signal() => Err(anyhow!("interrupted while the nodes were starting")),
    };
    let kubeconfig = match result {
        Ok(path) => path,
        Err(e) => {
            stop(&mut nodes).await;
            return Err(e);
        }
    };
    println!();
    println!(
        "{} nodes in one mesh; kubeconfig: {}",
        nodes.len(),
        kubeconfig.display()
    );
    for node in &nodes {
        println!(
            "  context {:<8} {}",
            node.name,
            node.started.api.as_deref().unwrap_or("?")
        );
    }
    println!(
        "  e.g. kubectl --kubeconfig {} --context node-2 get namespaces",
        kubeconfig.display()
    );
    println!("Ctrl-C stops them all.");

    let outcome = tokio::select! {
        _ = shutdown_signal() => Ok(()),
        exited = watch_exits(&mut reports, &nodes) => Err(exited),
    };
    stop(&mut nodes).await;
    outcome
}

/// Echoes node output until one of them exits; returns that as the error.
async fn watch_exits(reports: &mut mpsc::Receiver<Report>, nodes: &[NodeProcess]) -> anyhow::Error {
    loop {
        match reports.recv().await {
            Some(Report::Line(i, line)) => println!("[{}] {line}", node_name(i)),
            Some(Report::Closed(i)) => {
                return anyhow!(
                    "{} exited (its log: {}); stopping the others",
                    node_name(i),
                    log_of(nodes, i)
                );
            }
            None => return anyhow!("node output closed"),
        }
    }
}

/// Whether node `i` ran in this directory before (it holds the mesh CA).
fn is_member(args: &DevArgs, i: usize) -> bool {
    args.data_dir
        .join(node_name(i))
        .join("pki")
        .join("ca.crt")
        .exists()
}

/// One kubeconfig, a context per node, current = node-1. The nodes share the mesh CA, so
/// node-1's admin certificate works against every node.
fn write_kubeconfig(args: &DevArgs, nodes: &[NodeProcess]) -> anyhow::Result<PathBuf> {
    // A pure load: node-1 created everything and its SANs cover loopback.
    let pki = NodePki::load_or_create(&args.data_dir.join(node_name(1)), &[])
        .context("reading node-1's certificates")?;
    let contexts: Vec<(String, String)> = nodes
        .iter()
        .map(|n| {
            let url = n
                .started
                .api
                .clone()
                .ok_or_else(|| anyhow!("{} printed no API URL", n.name))?;
            Ok((n.name.clone(), url))
        })
        .collect::<anyhow::Result<_>>()?;
    let path = args.data_dir.join("kubeconfig");
    std::fs::write(&path, pki.kubeconfig(&contexts, &node_name(1)))
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// SIGTERM to every node, then a kill for those that do not stop in time.
async fn stop(nodes: &mut [NodeProcess]) {
    for node in nodes.iter() {
        if let Some(pid) = node.child.id() {
            #[cfg(unix)]
            // SAFETY: kill(2) on our own child's pid.
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGTERM);
            }
            #[cfg(not(unix))]
            let _ = pid;
        }
    }
    for node in nodes.iter_mut() {
        match tokio::time::timeout(STOP_TIMEOUT, node.child.wait()).await {
            Ok(_) => {}
            Err(_) => {
                eprintln!("{} did not stop in {STOP_TIMEOUT:?}; killing it", node.name);
                let _ = node.child.kill().await;
            }
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        else {
            let _ = ctrl_c.await;
            return;
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
