//! Real `beemesh up` processes on 127.0.0.1 forming a mesh: joining with the token,
//! serving each other's writes to kubectl with one kubeconfig (only the server URL
//! differs), refusing wrong tokens, restarting, and `beemesh dev`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BEEMESH: &str = env!("CARGO_BIN_EXE_beemesh");
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A running `beemesh up`; SIGTERM (then kill) on drop.
struct UpNode {
    child: Child,
    data_dir: PathBuf,
    log: PathBuf,
    lines: Arc<Mutex<Vec<String>>>,
}

fn up(data_dir: &Path, extra: &[&str]) -> UpNode {
    std::fs::create_dir_all(data_dir).unwrap();
    let log = data_dir.with_extension("log");
    let stderr = std::fs::File::create(&log).unwrap();
    let mut child = Command::new(BEEMESH)
        .arg("up")
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--api-listen", "127.0.0.1:0"])
        .args(extra)
        .env("BEEMESH_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let stdout = child.stdout.take().unwrap();
    let sink = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    UpNode {
        child,
        data_dir: data_dir.to_path_buf(),
        log,
        lines,
    }
}

impl UpNode {
    fn value(&self, key: &str) -> Option<String> {
        let prefix = format!("{key}: ");
        self.lines
            .lock()
            .unwrap()
            .iter()
            .find_map(|l| l.strip_prefix(&prefix).map(str::to_string))
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// Waits for the `ready:` line; returns how long it took.
    fn wait_ready(&mut self) -> Duration {
        let started = Instant::now();
        while self.value("ready").is_none() {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("the node exited with {status}:\n{}", self.log_tail());
            }
            assert!(
                started.elapsed() < READY_TIMEOUT,
                "not ready within {READY_TIMEOUT:?}:\n{}",
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        started.elapsed()
    }

    /// Waits for the process to exit on its own.
    fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(started.elapsed() < limit, "still running after {limit:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn api(&self) -> String {
        self.value("api").expect("the node printed its API URL")
    }

    /// The TCP p2p address (with /p2p/<peer id>).
    fn p2p_tcp(&self) -> String {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| l.strip_prefix("p2p: "))
            .find(|a| a.contains("/tcp/"))
            .expect("a TCP p2p address")
            .to_string()
    }

    fn token(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("join-token"))
            .unwrap()
            .trim()
            .to_string()
    }

    fn kubeconfig(&self) -> PathBuf {
        self.data_dir.join("kubeconfig")
    }

    fn stop(&mut self) {
        // SAFETY: kill(2) on our own child.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let started = Instant::now();
        while self.child.try_wait().unwrap().is_none() {
            if started.elapsed() > Duration::from_secs(10) {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for UpNode {
    fn drop(&mut self) {
        self.stop();
    }
}

fn kubectl(kubeconfig: &Path, args: &[&str]) -> Output {
    Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("kubectl on PATH")
}

fn kubectl_ok(kubeconfig: &Path, args: &[&str]) -> String {
    let out = kubectl(kubeconfig, args);
    assert!(
        out.status.success(),
        "kubectl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Polls `check` until it returns Some, or panics after `limit`.
fn eventually<T>(
    what: &str,
    limit: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> (T, Duration) {
    let started = Instant::now();
    loop {
        if let Some(v) = check() {
            return (v, started.elapsed());
        }
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The kubeconfig of `from` with its server URL replaced by `to_url`.
fn repointed(from: &UpNode, to_url: &str, scratch: &Path) -> PathBuf {
    let text = std::fs::read_to_string(from.kubeconfig()).unwrap();
    let rewritten = text.replace(&from.api(), to_url);
    assert_ne!(text, rewritten, "the kubeconfig names the server URL");
    let path = scratch.join(format!(
        "kubeconfig-{}-to-{}",
        from.data_dir.file_name().unwrap().to_string_lossy(),
        to_url.rsplit(':').next().unwrap()
    ));
    std::fs::write(&path, rewritten).unwrap();
    path
}

fn cert_authority_data(kubeconfig: &Path) -> String {
    std::fs::read_to_string(kubeconfig)
        .unwrap()
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("certificate-authority-data: ")
                .map(str::to_string)
        })
        .unwrap()
}

fn readyz(url: &str) -> bool {
    Command::new("curl")
        .args(["-ksf", "--max-time", "2", "-o", "/dev/null"])
        .arg(format!("{url}/readyz"))
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn two_nodes_join_with_the_token_and_serve_each_others_writes() {
    let scratch = tempfile::tempdir().unwrap();
    let mut a = up(&scratch.path().join("a"), &["--node-name", "a"]);
    let took = a.wait_ready();
    println!("node a (a mesh of one) ready in {took:?}");
    let started = Instant::now();
    let token = a.token();
    let mut b = up(
        &scratch.path().join("b"),
        &[
            "--node-name",
            "b",
            "--join",
            &a.p2p_tcp(),
            "--join-token",
            &token,
        ],
    );
    b.wait_ready();
    println!(
        "node b joined and ready in {:?} after spawn",
        started.elapsed()
    );
    assert!(b.value("ready").unwrap().contains("2 members"));
    assert!(readyz(&a.api()) && readyz(&b.api()));
    // One CA per mesh: both kubeconfigs trust the same CA, both nodes hold the same token.
    assert_eq!(
        cert_authority_data(&a.kubeconfig()),
        cert_authority_data(&b.kubeconfig())
    );
    assert_eq!(b.token(), token);

    // Node a's kubeconfig against node b (only the server URL changed), and back.
    let a_on_b = repointed(&a, &b.api(), scratch.path());
    let b_on_a = repointed(&b, &a.api(), scratch.path());
    kubectl_ok(
        &a.kubeconfig(),
        &[
            "create",
            "configmap",
            "mesh-join",
            "--from-literal=greeting=hello",
        ],
    );
    let mut reads = 0;
    let (value, delay) = eventually(
        "the write on a visible on b",
        Duration::from_secs(10),
        || {
            reads += 1;
            let out = kubectl(
                &a_on_b,
                &[
                    "get",
                    "configmap",
                    "mesh-join",
                    "-o",
                    "jsonpath={.data.greeting}",
                ],
            );
            out.status
                .success()
                .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
        },
    );
    assert_eq!(value, "hello");
    println!(
        "created through a, read through b (a's kubeconfig): found on read {reads}, {delay:?} \
         after the create returned (kubectl runs included)"
    );

    // A write through b to the object created through a (forwarded to its home if that is
    // a), seen through a with b's kubeconfig.
    kubectl_ok(
        &a_on_b,
        &["label", "configmap", "mesh-join", "written-by=b"],
    );
    eventually("b's update visible on a", Duration::from_secs(10), || {
        let out = kubectl_ok(
            &b_on_a,
            &[
                "get",
                "configmap",
                "mesh-join",
                "-o",
                "jsonpath={.metadata.labels.written-by}",
            ],
        );
        (out == "b").then_some(())
    });
    // Both nodes serve one set of system namespaces (created once, not per node).
    let uid = |kubeconfig: &Path| {
        kubectl_ok(
            kubeconfig,
            &[
                "get",
                "namespace",
                "default",
                "-o",
                "jsonpath={.metadata.uid}",
            ],
        )
    };
    assert_eq!(uid(&a.kubeconfig()), uid(&a_on_b));
}

#[test]
fn a_node_without_a_valid_token_cannot_join() {
    let scratch = tempfile::tempdir().unwrap();
    let mut a = up(&scratch.path().join("a"), &["--node-name", "a"]);
    a.wait_ready();
    let join = a.p2p_tcp();
    let token = a.token();
    let parts: Vec<&str> = token.split('.').collect();
    let made_up_secret = format!("bm1.{}.{}", parts[1], "0123456789abcdef0123456789abcdef");
    let reversed_hash: String = parts[1].chars().rev().collect();
    let other_ca = format!("bm1.{reversed_hash}.{}", parts[2]);
    let cases: [(&str, Vec<&str>, &str); 4] = [
        (
            "made-up secret",
            vec!["--join", &join, "--join-token", &made_up_secret],
            "not valid for this mesh",
        ),
        (
            "token of another CA",
            vec!["--join", &join, "--join-token", &other_ca],
            "not the one the join token names",
        ),
        (
            "malformed token",
            vec!["--join", &join, "--join-token", "hello"],
            "bm1.<ca hash>.<secret>",
        ),
        (
            "no token",
            vec!["--join", &join],
            "--join needs --join-token",
        ),
    ];
    for (i, (what, args, message)) in cases.into_iter().enumerate() {
        let dir = scratch.path().join(format!("refused-{i}"));
        let mut node = up(&dir, &args);
        let status = node.wait_exit(Duration::from_secs(30));
        assert!(!status.success(), "{what}: the node must exit non-zero");
        let log = std::fs::read_to_string(&node.log).unwrap();
        assert!(log.contains(message), "{what}: {log}");
        assert!(!dir.join("pki").join("ca.crt").exists(), "{what}: no CA");
        assert!(!dir.join("kubeconfig").exists(), "{what}: no kubeconfig");
    }
    // The member is unaffected and still alone.
    assert!(readyz(&a.api()));
}

#[test]
fn a_restarted_node_keeps_its_identity_and_catches_up() {
    let scratch = tempfile::tempdir().unwrap();
    let mut a = up(&scratch.path().join("a"), &["--node-name", "a"]);
    a.wait_ready();
    let b_dir = scratch.path().join("b");
    let mut b = up(
        &b_dir,
        &[
            "--node-name",
            "b",
            "--join",
            &a.p2p_tcp(),
            "--join-token",
            &a.token(),
        ],
    );
    b.wait_ready();
    let b_p2p = b.p2p_tcp();
    // The peer list is saved shortly after a membership change.
    eventually("b saved a's address", Duration::from_secs(10), || {
        let peers = std::fs::read_to_string(b_dir.join("p2p").join("peers")).unwrap_or_default();
        peers
            .contains(a.p2p_tcp().rsplit('/').next().unwrap())
            .then_some(())
    });
    b.stop();
    kubectl_ok(
        &a.kubeconfig(),
        &[
            "create",
            "configmap",
            "while-b-was-down",
            "--from-literal=k=v",
        ],
    );
    // No --join: b finds a through the peers it saved.
    let started = Instant::now();
    let mut b = up(&b_dir, &["--node-name", "b"]);
    b.wait_ready();
    println!("b restarted and caught up in {:?}", started.elapsed());
    assert_eq!(
        b.p2p_tcp(),
        b_p2p,
        "same peer id and p2p port after a restart"
    );
    let a_on_b = repointed(&a, &b.api(), scratch.path());
    kubectl_ok(&a_on_b, &["get", "configmap", "while-b-was-down"]);
}

#[test]
fn dev_starts_nodes_in_one_mesh_with_a_context_each() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("dev");
    let mut dev = Command::new(BEEMESH)
        .args(["dev", "--nodes", "3", "--base-port", "0", "--data-dir"])
        .arg(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = lines.clone();
    let stdout = dev.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    let started = Instant::now();
    eventually("dev printed its contexts", READY_TIMEOUT, || {
        if let Ok(Some(status)) = dev.try_wait() {
            panic!("dev exited with {status}: {:?}", lines.lock().unwrap());
        }
        lines
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("Ctrl-C stops them all"))
            .then_some(())
    });
    println!("3 dev nodes ready in {:?}", started.elapsed());
    let kubeconfig = dir.join("kubeconfig");
    let contexts = kubectl_ok(&kubeconfig, &["config", "get-contexts", "-o", "name"]);
    assert_eq!(
        contexts.split_whitespace().collect::<Vec<_>>(),
        ["node-1", "node-2", "node-3"]
    );
    assert_eq!(
        kubectl_ok(&kubeconfig, &["config", "current-context"]).trim(),
        "node-1"
    );
    kubectl_ok(
        &kubeconfig,
        &[
            "--context",
            "node-3",
            "create",
            "configmap",
            "from-node-3",
            "--from-literal=k=v",
        ],
    );
    for context in ["node-1", "node-2"] {
        eventually("replicated to every node", Duration::from_secs(10), || {
            kubectl(
                &kubeconfig,
                &["--context", context, "get", "configmap", "from-node-3"],
            )
            .status
            .success()
            .then_some(())
        });
    }
    let urls: Vec<String> = lines
        .lock()
        .unwrap()
        .iter()
        .filter_map(|l| l.split_once("] api: ").map(|(_, url)| url.to_string()))
        .collect();
    assert_eq!(urls.len(), 3);

    // Ctrl-C stops every node.
    // SAFETY: kill(2) on our own child.
    unsafe {
        libc::kill(dev.id() as libc::pid_t, libc::SIGINT);
    }
    let started = Instant::now();
    let status = loop {
        if let Some(status) = dev.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "dev did not stop"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "dev exits cleanly on Ctrl-C: {status}");
    for url in urls {
        assert!(!readyz(&url), "{url} still answers after dev stopped");
    }
}
