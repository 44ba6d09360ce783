//! One kubectl binary of a given version, pointed at one node, with its own cache.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::Output;

/// No single kubectl command of the suite may take longer than this.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// A kubectl of one version with a fresh `--cache-dir` and a scratch directory for files.
pub struct Kubectl {
    version: String,
    bin: PathBuf,
    kubeconfig: PathBuf,
    cache_dir: tempfile::TempDir,
    work_dir: tempfile::TempDir,
}

impl Kubectl {
    /// A client for `kubeconfig`, or why `kubectl.<version>` is unavailable.
    pub fn new(version: &str, kubeconfig: &Path) -> Result<Kubectl, String> {
        let bin = crate::locate::kubectl_binary(version)?;
        let cache_dir = tempfile::Builder::new()
            .prefix("kubectl-cache-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let work_dir = tempfile::Builder::new()
            .prefix("kubectl-work-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        Ok(Kubectl {
            version: version.to_string(),
            bin,
            kubeconfig: kubeconfig.to_path_buf(),
            cache_dir,
            work_dir,
        })
    }

    /// `1.27` etc.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The minor version (27 for `1.27`).
    pub fn minor(&self) -> u32 {
        self.version
            .rsplit('.')
            .next()
            .and_then(|m| m.parse().ok())
            .unwrap_or(0)
    }

    /// Runs `kubectl ARGS` and captures its output.
    pub fn run(&self, args: &[&str]) -> Output {
        self.run_with(args, None, &[])
    }

    /// Runs `kubectl ARGS` with `stdin` fed in (e.g. `apply -f -`).
    pub fn run_stdin(&self, args: &[&str], stdin: &str) -> Output {
        self.run_with(args, Some(stdin), &[])
    }

    /// Runs with optional stdin and extra environment variables.
    pub fn run_with(&self, args: &[&str], stdin: Option<&str>, env: &[(&str, &str)]) -> Output {
        let command_line = format!("kubectl.{} {}", self.version, args.join(" "));
        let mut cmd = self.command(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                return Output {
                    command: command_line,
                    code: -1,
                    stdout: String::new(),
                    stderr: format!("cannot start {}: {e}", self.bin.display()),
                    timed_out: false,
                };
            }
        };
        if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
            let text = text.to_string();
            std::thread::spawn(move || {
                let _ = pipe.write_all(text.as_bytes());
            });
        }
        let stdout = read_all(child.stdout.take());
        let stderr = read_all(child.stderr.take());
        let (code, timed_out) = wait_with_timeout(&mut child, COMMAND_TIMEOUT);
        Output {
            command: command_line,
            code,
            stdout: stdout.join().unwrap_or_default(),
            stderr: stderr.join().unwrap_or_default(),
            timed_out,
        }
    }

    /// Applies a manifest from stdin (`kubectl apply -f -`), panicking on failure.
    #[track_caller]
    pub fn apply(&self, manifest: &str) -> Output {
        self.run_stdin(&["apply", "-f", "-"], manifest).ok()
    }

    /// Creates objects from a manifest on stdin (`kubectl create -f -`), panicking on failure.
    #[track_caller]
    pub fn create(&self, manifest: &str) -> Output {
        self.run_stdin(&["create", "-f", "-"], manifest).ok()
    }

    /// `kubectl get KIND NAME -o json` parsed; panics when the get fails.
    #[track_caller]
    pub fn get_json(&self, args: &[&str]) -> serde_json::Value {
        let mut full = vec!["get"];
        full.extend_from_slice(args);
        full.extend_from_slice(&["-o", "json"]);
        self.run(&full).ok().json()
    }

    /// Starts `kubectl ARGS` in the background, collecting its stdout line by line.
    pub fn spawn(&self, args: &[&str]) -> std::io::Result<Running> {
        let mut child = self
            .command(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let (tx, rx) = channel();
        if let Some(out) = child.stdout.take() {
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        let stderr = Arc::new(Mutex::new(String::new()));
        if let Some(mut err) = child.stderr.take() {
            let sink = stderr.clone();
            std::thread::spawn(move || {
                let mut buf = String::new();
                let _ = err.read_to_string(&mut buf);
                if let Ok(mut s) = sink.lock() {
                    s.push_str(&buf);
                }
            });
        }
        Ok(Running {
            command: format!("kubectl.{} {}", self.version, args.join(" ")),
            child,
            lines: rx,
            seen: Vec::new(),
            stderr,
        })
    }

    /// Writes `contents` to `name` in this client's scratch directory.
    pub fn write_file(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.work_dir.path().join(name);
        if let Err(e) = std::fs::write(&path, contents) {
            panic!("writing {}: {e}", path.display());
        }
        path
    }

    /// Writes an executable shell script (for `KUBE_EDITOR`).
    pub fn write_script(&self, name: &str, body: &str) -> PathBuf {
        let path = self.write_file(name, &format!("#!/bin/sh\nset -e\n{body}\n"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            if let Err(e) = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            {
                panic!("chmod {}: {e}", path.display());
            }
        }
        path
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(self.cache_dir.path())
            .args(args)
            .current_dir(self.work_dir.path())
            .env_remove("KUBECONFIG")
            .env("HOME", self.work_dir.path());
        cmd
    }
}

/// A kubectl running in the background (`get -w`, a `delete` waiting on a finalizer).
pub struct Running {
    command: String,
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
    stderr: Arc<Mutex<String>>,
}

impl Running {
    /// Waits until a stdout line satisfies `pred`; returns it, or `None` on timeout or EOF.
    pub fn wait_for_line(
        &mut self,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let hit = pred(&line);
                    self.seen.push(line.clone());
                    if hit {
                        return Some(line);
                    }
                }
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => {
                    return None;
                }
            }
        }
    }

    /// Every stdout line seen so far.
    pub fn seen(&self) -> &[String] {
        &self.seen
    }

    /// The exit code if the process ended within `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return Some(status.code().unwrap_or(-1)),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => return None,
            }
        }
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// What it printed on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// A one-line description for failure messages.
    pub fn describe(&self) -> String {
        format!(
            "`{}` stdout lines: {:?} stderr: {:?}",
            self.command,
            self.seen,
            crate::report::one_line(&self.stderr(), 300)
        )
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_all<R: Read + Send + 'static>(pipe: Option<R>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_end(&mut buf);
        }
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// (exit code, timed out); kills the child when the timeout passes.
fn wait_with_timeout(child: &mut Child, timeout: Duration) -> (i32, bool) {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return (status.code().unwrap_or(-1), false),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return (-1, true);
            }
            Err(_) => return (-1, false),
        }
    }
}
