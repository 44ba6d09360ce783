//! The `process` runtime: each container's `command` + `args` runs as a host process, in a
//! process group of its own, with a per-pod directory under the node's data dir
//! (`<data-dir>/pods/<uid>/`). Decisions (ADR 0010):
//!
//! - **No image, no namespaces.** There is no entrypoint to fall back on: a container with
//!   neither `command` nor `args` waits with `CreateContainerConfigError`; `args` alone run
//!   as the command line. The process inherits nothing from the node's environment: it gets
//!   `PATH` (the container runtimes' default), `HOSTNAME` (the pod's name),
//!   `BEEMESH_CONTAINER_ROOT` and the container's resolved `env`.
//! - **Container root**: `<pod dir>/containers/<name>/`, the default working directory.
//!   Each volume mount is a symlink at `<root>/<mountPath>` to the volume on the host, so a
//!   command sees `etc/config/key` relative to its working directory (or under
//!   `$BEEMESH_CONTAINER_ROOT`). `readOnly` is not enforced. An absolute `workingDir` that
//!   exists on the host is used as is; otherwise it is created under the container root.
//! - **Pod IP = host IP**: there is no network namespace, so the runtime reports no address
//!   and the agent shows the host's, as the kubelet does for `hostNetwork` pods;
//!   port-forward connects to `127.0.0.1:<port>`.
//! - **Logs** are CRI files, one per run: `<pod dir>/logs/<name>/<restart>.log`, lines
//!   `<RFC 3339 nano> stdout|stderr F <text>`, so `previous`, `since` and `timestamps` work
//!   as the kubelet's. They stay after the pod stopped, until `forget_pod`.
//! - **Restarts** follow `restartPolicy` with the kubelet's CrashLoopBackOff: the first
//!   restart is immediate, then 10 s doubling to 5 min, reset after 10 min of running.
//! - **Stop**: SIGTERM to the main process, SIGKILL to its whole process group after the
//!   grace period or once the main process ended (as a PID namespace ends with its PID 1).
//! - Init containers run one after another before the app containers; a failed one is
//!   retried under `Always`/`OnFailure` and fails the pod under `Never`.
//! - `exec` runs the command with the container's env and working directory; there is no
//!   pty, so `tty` is refused (BadRequest). `attach` writes to the main process's stdin
//!   (kept as a pipe when the container has `stdin: true`) and follows its log.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::watch;

use super::{
    BoxFuture, ByteStream, ContainerSpec, ContainerState, ContainerStatus, Duplex, LogOptions,
    PodRuntimeStatus, PodStart, Runtime, RuntimeError, StreamRequest, StreamSession,
};

/// The container runtimes' default `PATH`.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// The kubelet's CrashLoopBackOff: first delay, cap, and how long a run resets it.
const BACKOFF_INITIAL: Duration = Duration::from_secs(10);
const BACKOFF_MAX: Duration = Duration::from_secs(300);
const BACKOFF_RESET: Duration = Duration::from_secs(600);
/// The longest log entry; longer lines are split into partial entries (the CRI's 16 KiB).
const MAX_LOG_LINE: u64 = 16 * 1024;
/// How often a followed log is read again.
const FOLLOW_POLL: Duration = Duration::from_millis(200);
/// How often the agent is asked to look at a live pod again (the runtime changes state by
/// itself: exits, restarts, back-offs).
const RECHECK: Duration = Duration::from_millis(500);

/// Where a process-runtime node keeps its pods.
#[derive(Debug, Clone)]
pub struct ProcessConfig {
    /// The node's `--data-dir`: pods live in `<data_dir>/pods/<uid>/`.
    pub data_dir: PathBuf,
}

/// One container's current run and history.
struct SlotState {
    state: ContainerState,
    last_state: Option<ContainerState>,
    restart_count: u32,
    /// The running process group, for signals.
    pgid: Option<i32>,
    /// The main process's stdin (containers with `stdin: true`).
    stdin: Option<Arc<tokio::sync::Mutex<Option<ChildStdin>>>>,
    container_id: String,
}

/// One container of a process pod.
struct Slot {
    spec: ContainerSpec,
    /// The container root (`<pod dir>/containers/<name>`).
    root: PathBuf,
    logs: PathBuf,
    state: Mutex<SlotState>,
    /// Bumped on every state change (followers and attach wait on it).
    changed: watch::Sender<u64>,
    /// Set by `restart_container`: the grace to kill the current run with.
    restart: watch::Sender<Option<Duration>>,
}

impl Slot {
    fn lock(&self) -> std::sync::MutexGuard<'_, SlotState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set(&self, f: impl FnOnce(&mut SlotState)) {
        f(&mut self.lock());
        self.changed.send_modify(|n| *n += 1);
    }

    fn status(&self) -> ContainerStatus {
        let s = self.lock();
        ContainerStatus {
            name: self.spec.name.clone(),
            image: self.spec.image.clone(),
            image_id: format!("process://{}", self.spec.image),
            container_id: s.container_id.clone(),
            state: s.state.clone(),
            last_state: s.last_state.clone(),
            restart_count: s.restart_count,
        }
    }

    fn log_file(&self, run: u32) -> PathBuf {
        self.logs.join(format!("{run}.log"))
    }

    /// The environment a process of this container gets.
    fn environment(&self, pod_name: &str) -> Vec<(String, String)> {
        let mut env = vec![
            ("PATH".to_string(), DEFAULT_PATH.to_string()),
            ("HOSTNAME".to_string(), pod_name.to_string()),
            (
                "BEEMESH_CONTAINER_ROOT".to_string(),
                self.root.display().to_string(),
            ),
        ];
        env.extend(self.spec.env.iter().cloned());
        env
    }

    /// The working directory: an absolute `workingDir` existing on the host as is, else
    /// under the container root (created).
    fn working_dir(&self) -> std::io::Result<PathBuf> {
        match &self.spec.working_dir {
            None => Ok(self.root.clone()),
            Some(dir) if Path::new(dir).is_absolute() && Path::new(dir).is_dir() => {
                Ok(PathBuf::from(dir))
            }
            Some(dir) => {
                let path = self.root.join(dir.trim_start_matches('/'));
                std::fs::create_dir_all(&path)?;
                Ok(path)
            }
        }
    }
}

/// One pod the runtime runs.
struct ProcPod {
    start: PodStart,
    dir: PathBuf,
    init: Vec<Arc<Slot>>,
    containers: Vec<Arc<Slot>>,
    /// `Some(grace)` once the pod is being stopped.
    stop: watch::Sender<Option<Duration>>,
    /// True once every container of the pod has ended after a stop.
    finished: watch::Sender<bool>,
}

impl ProcPod {
    fn slot(&self, name: &str) -> Option<&Arc<Slot>> {
        self.containers
            .iter()
            .chain(self.init.iter())
            .find(|s| s.spec.name == name)
    }
}

/// The `process` runtime of one node.
pub struct ProcessRuntime {
    config: ProcessConfig,
    pods: Mutex<HashMap<String, Arc<ProcPod>>>,
}

fn now() -> DateTime<Utc> {
    Utc::now()
}

fn waiting(reason: &str, message: Option<String>) -> ContainerState {
    ContainerState::Waiting {
        reason: reason.to_string(),
        message,
    }
}

/// Sends `signal` to a process group.
fn signal_group(pgid: i32, signal: i32) {
    // SAFETY: kill(2) with a negative pid signals a process group; no memory is touched.
    unsafe {
        libc::kill(-pgid, signal);
    }
}

/// The kubelet's back-off: the first restart now, then 10 s doubling up to 5 min.
fn backoff_after(crashes: u32) -> Duration {
    if crashes <= 1 {
        return Duration::ZERO;
    }
    let doublings = (crashes - 2).min(16);
    BACKOFF_INITIAL
        .saturating_mul(1u32 << doublings)
        .min(BACKOFF_MAX)
}

/// Whether the policy restarts a container that exited with `code`.
fn restarts(policy: &str, code: i32) -> bool {
    match policy {
        "Never" => false,
        "OnFailure" => code != 0,
        _ => true,
    }
}

/// The command line: `command` then `args` (there is no image entrypoint to default to).
fn argv(spec: &ContainerSpec) -> Result<Vec<String>, String> {
    let argv: Vec<String> = spec.command.iter().chain(&spec.args).cloned().collect();
    if argv.is_empty() {
        return Err(format!(
            "container {:?} has neither command nor args: the process runtime has no image entrypoint to run",
            spec.name
        ));
    }
    Ok(argv)
}

/// How one run of a container ended.
struct RunEnd {
    exit_code: i32,
    started_at: DateTime<Utc>,
    finished_at: DateTime<Utc>,
}

/// Appends a child's output to the CRI log file.
async fn copy_lines(
    reader: impl AsyncRead + Unpin,
    stream: &'static str,
    file: Arc<Mutex<std::fs::File>>,
) {
    let mut reader = BufReader::new(reader);
    let mut line = Vec::new();
    loop {
        line.clear();
        // At most MAX_LOG_LINE bytes per entry: a longer line is split into partial (`P`)
        // entries, as the CRI runtimes do, so no output grows memory without bound.
        match (&mut reader)
            .take(MAX_LOG_LINE)
            .read_until(b'\n', &mut line)
            .await
        {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let tag = if line.last() == Some(&b'\n') {
            line.pop();
            "F"
        } else if line.len() as u64 == MAX_LOG_LINE {
            "P"
        } else {
            "F"
        };
        let ts = now().to_rfc3339_opts(SecondsFormat::Nanos, true);
        let mut out = format!("{ts} {stream} {tag} ").into_bytes();
        out.extend_from_slice(&line);
        out.push(b'\n');
        let mut f = file.lock().unwrap_or_else(|e| e.into_inner());
        if f.write_all(&out).is_err() {
            return;
        }
    }
}

/// Kills a run: SIGTERM to the main process, SIGKILL after `grace` if it is still there.
/// A later, shorter grace period (a force delete during a graceful one) takes effect.
async fn kill_run(
    child: &mut Child,
    pgid: i32,
    grace: Duration,
    mut shorter: Option<watch::Receiver<Option<Duration>>>,
) -> std::io::Result<std::process::ExitStatus> {
    // As a container's PID 1: SIGTERM to the main process only; the rest of its group
    // goes with SIGKILL once it ended (as a PID namespace's members do).
    // SAFETY: kill(2) on the child's own pid; no memory is touched.
    unsafe {
        libc::kill(pgid, libc::SIGTERM);
    }
    let signalled = tokio::time::Instant::now();
    let mut deadline = signalled + grace;
    loop {
        let changed = async {
            match shorter.as_mut() {
                Some(rx) => rx.changed().await.map(|_| *rx.borrow_and_update()),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            status = child.wait() => return status,
            _ = tokio::time::sleep_until(deadline) => break,
            next = changed => match next {
                Ok(Some(g)) => deadline = deadline.min(signalled + g),
                _ => shorter = None,
            },
        }
    }
    signal_group(pgid, libc::SIGKILL);
    child.wait().await
}

fn exit_code(status: &std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(-1)
}

/// Resolves once a stop or restart is asked for, with its grace period (never when the
/// asking side is gone).
async fn requested(rx: &mut watch::Receiver<Option<Duration>>) -> Duration {
    let grace = match rx.wait_for(Option::is_some).await {
        Ok(v) => *v,
        Err(_) => None,
    };
    match grace {
        Some(g) => g,
        None => std::future::pending().await,
    }
}

/// Runs one container once; `Err` is a configuration problem (nothing ran).
async fn run_once(
    pod: &ProcPod,
    slot: &Slot,
    stop: &mut watch::Receiver<Option<Duration>>,
) -> Result<Option<RunEnd>, (String, String)> {
    let argv = argv(&slot.spec).map_err(|m| ("CreateContainerConfigError".to_string(), m))?;
    let cwd = slot.working_dir().map_err(|e| {
        (
            "CreateContainerConfigError".to_string(),
            format!("workingDir: {e}"),
        )
    })?;
    let run = slot.lock().restart_count;
    let file = std::fs::create_dir_all(&slot.logs)
        .and_then(|_| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(slot.log_file(run))
        })
        .map_err(|e| ("CreateContainerError".to_string(), format!("log file: {e}")))?;
    let file = Arc::new(Mutex::new(file));
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .env_clear()
        .envs(slot.environment(&pod.start.name))
        .current_dir(&cwd)
        .process_group(0)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .stdin(if slot.spec.stdin {
            std::process::Stdio::piped()
        } else {
            std::process::Stdio::null()
        })
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            // As a runtime whose exec fails: the container ran and exited 128/127.
            let started_at = now();
            let line = format!(
                "{} stderr F exec {:?}: {e}\n",
                started_at.to_rfc3339_opts(SecondsFormat::Nanos, true),
                argv[0]
            );
            let _ = file
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .write_all(line.as_bytes());
            return Ok(Some(RunEnd {
                exit_code: if e.kind() == std::io::ErrorKind::NotFound {
                    127
                } else {
                    126
                },
                started_at,
                finished_at: now(),
            }));
        }
    };
    let pgid = child.id().map_or(0, |p| p as i32);
    let mut copies = Vec::new();
    if let Some(out) = child.stdout.take() {
        copies.push(tokio::spawn(copy_lines(out, "stdout", file.clone())));
    }
    if let Some(err) = child.stderr.take() {
        copies.push(tokio::spawn(copy_lines(err, "stderr", file.clone())));
    }
    let stdin = child
        .stdin
        .take()
        .map(|s| Arc::new(tokio::sync::Mutex::new(Some(s))));
    let started_at = now();
    let id = format!(
        "process://{}-{}-{run}",
        pod.start.uid.get(..8).unwrap_or(&pod.start.uid),
        slot.spec.name
    );
    slot.set(|s| {
        s.state = ContainerState::Running { started_at };
        s.pgid = Some(pgid);
        s.stdin = stdin;
        s.container_id = id;
    });
    let mut restart = slot.restart.subscribe();
    let status = tokio::select! {
        status = child.wait() => status,
        grace = requested(stop) => {
            let shorter = Some(stop.clone());
            kill_run(&mut child, pgid, grace, shorter).await
        }
        grace = requested(&mut restart) => {
            slot.restart.send_replace(None);
            kill_run(&mut child, pgid, grace, None).await
        }
    };
    // Whatever the group left behind goes too (and its pipes close).
    signal_group(pgid, libc::SIGKILL);
    for copy in copies {
        let _ = tokio::time::timeout(Duration::from_secs(2), copy).await;
    }
    let code = match &status {
        Ok(s) => exit_code(s),
        Err(_) => -1,
    };
    slot.set(|s| {
        s.pgid = None;
        s.stdin = None;
    });
    Ok(Some(RunEnd {
        exit_code: code,
        started_at,
        finished_at: now(),
    }))
}

fn terminated(end: &RunEnd) -> ContainerState {
    ContainerState::Terminated {
        exit_code: end.exit_code,
        reason: if end.exit_code == 0 {
            "Completed".into()
        } else {
            "Error".into()
        },
        started_at: end.started_at,
        finished_at: end.finished_at,
    }
}

/// Runs one container under the pod's restart policy until it is done or the pod stops.
/// Returns whether it ended successfully (exit 0), for init containers.
async fn supervise_container(pod: &ProcPod, slot: &Slot, init: bool) -> bool {
    let mut stop = pod.stop.subscribe();
    // Init containers under `Always` restart on failure only, as the kubelet's.
    let policy = if init && pod.start.restart_policy == "Always" {
        "OnFailure"
    } else {
        pod.start.restart_policy.as_str()
    };
    let mut crashes = 0u32;
    loop {
        if stop.borrow().is_some() {
            return false;
        }
        let end = match run_once(pod, slot, &mut stop).await {
            Ok(Some(end)) => end,
            Ok(None) => return false,
            Err((reason, message)) => {
                slot.set(|s| s.state = waiting(&reason, Some(message)));
                return false;
            }
        };
        let ran = (end.finished_at - end.started_at)
            .to_std()
            .unwrap_or_default();
        let code = end.exit_code;
        slot.set(|s| s.state = terminated(&end));
        if stop.borrow().is_some() || !restarts(policy, code) {
            return code == 0;
        }
        if ran >= BACKOFF_RESET {
            crashes = 0;
        }
        crashes += 1;
        let delay = backoff_after(crashes);
        let previous = terminated(&end);
        slot.set(|s| {
            s.last_state = Some(previous);
            if !delay.is_zero() {
                s.state = waiting(
                    "CrashLoopBackOff",
                    Some(format!(
                        "back-off {}s restarting failed container={} pod={}_{}({})",
                        delay.as_secs(),
                        slot.spec.name,
                        pod.start.name,
                        pod.start.namespace,
                        pod.start.uid
                    )),
                );
            }
        });
        if !delay.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = stop.wait_for(Option::is_some) => return false,
            }
        }
        slot.set(|s| s.restart_count += 1);
    }
}

/// Runs a pod: init containers in order, then every app container at once.
async fn supervise_pod(pod: Arc<ProcPod>) {
    for slot in &pod.init {
        if !supervise_container(&pod, slot, true).await {
            // A failed init container under `Never` (or a stop): the app containers never
            // start; they are shown as terminated-before-start only once the pod failed.
            if pod.stop.borrow().is_none() {
                for app in &pod.containers {
                    app.set(|s| {
                        s.state = waiting("PodInitializing", None);
                    });
                }
            }
            return;
        }
    }
    let tasks: Vec<_> = pod
        .containers
        .iter()
        .map(|slot| {
            let pod = pod.clone();
            let slot = slot.clone();
            tokio::spawn(async move { supervise_container(&pod, &slot, false).await })
        })
        .collect();
    for t in tasks {
        let _ = t.await;
    }
}

/// Reads a whole file, or nothing when it does not exist.
fn read_all(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_default()
}

/// One parsed CRI log line.
struct LogLine<'a> {
    ts: &'a str,
    time: Option<DateTime<Utc>>,
    stream: &'a str,
    /// `P` for a partial entry (the line goes on in the next one), else `F`.
    partial: bool,
    text: &'a [u8],
}

fn parse_line(line: &[u8]) -> Option<LogLine<'_>> {
    let mut parts = line.splitn(4, |b| *b == b' ');
    let ts = std::str::from_utf8(parts.next()?).ok()?;
    let stream = std::str::from_utf8(parts.next()?).ok()?;
    let partial = parts.next()? == b"P";
    let text = parts.next().unwrap_or_default();
    Some(LogLine {
        ts,
        time: DateTime::parse_from_rfc3339(ts)
            .ok()
            .map(|t| t.with_timezone(&Utc)),
        stream,
        partial,
        text,
    })
}

/// Renders complete CRI lines as `kubectl logs` shows them.
fn render(lines: &[&[u8]], options: &LogOptions, streams: Option<&str>) -> Vec<u8> {
    let mut out = Vec::new();
    for raw in lines {
        let Some(line) = parse_line(raw) else {
            continue;
        };
        if let (Some(since), Some(t)) = (options.since, line.time)
            && t < since
        {
            continue;
        }
        if let Some(only) = streams
            && line.stream != only
        {
            continue;
        }
        if options.timestamps {
            out.extend_from_slice(line.ts.as_bytes());
            out.push(b' ');
        }
        out.extend_from_slice(line.text);
        if !line.partial {
            out.push(b'\n');
        }
    }
    out
}

/// Splits complete lines off `buf` (the rest stays for the next read).
fn take_lines(buf: &mut Vec<u8>) -> Vec<Vec<u8>> {
    let Some(end) = buf.iter().rposition(|b| *b == b'\n') else {
        return Vec::new();
    };
    let rest = buf.split_off(end + 1);
    let done = std::mem::replace(buf, rest);
    done.split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

/// A stream fed by a task.
fn channel_stream(rx: tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>) -> ByteStream {
    Box::pin(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }))
}

/// A stream of what a reader yields.
fn reader_stream(reader: impl AsyncRead + Send + Unpin + 'static) -> ByteStream {
    Box::pin(futures::stream::unfold(reader, |mut reader| async move {
        let mut buf = vec![0u8; 16 * 1024];
        match reader.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Bytes::from(buf)), reader))
            }
            Err(e) => Some((Err(e), reader)),
        }
    }))
}

/// Sends rendered output, keeping count of `limitBytes`; false once the reader is gone or
/// the limit is reached.
async fn send_limited(
    tx: &tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
    mut out: Vec<u8>,
    left: &mut Option<u64>,
) -> bool {
    if let Some(l) = left {
        if (out.len() as u64) >= *l {
            out.truncate(*l as usize);
            *l = 0;
            if !out.is_empty() {
                let _ = tx.send(Ok(Bytes::from(out))).await;
            }
            return false;
        }
        *l -= out.len() as u64;
    }
    out.is_empty() || tx.send(Ok(Bytes::from(out))).await.is_ok()
}

/// Follows a log file from `offset` until the run that writes it is over.
async fn follow(
    slot: Arc<Slot>,
    run: u32,
    mut offset: u64,
    options: LogOptions,
    only: Option<&'static str>,
    tx: tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
) {
    let path = slot.log_file(run);
    let mut changed = slot.changed.subscribe();
    let mut pending = Vec::new();
    let mut left = options.limit_bytes;
    loop {
        let over = {
            let s = slot.lock();
            s.restart_count != run || !matches!(s.state, ContainerState::Running { .. })
        };
        let data = read_all(&path);
        if (data.len() as u64) > offset {
            pending.extend_from_slice(&data[offset as usize..]);
            offset = data.len() as u64;
            let lines = take_lines(&mut pending);
            let refs: Vec<&[u8]> = lines.iter().map(Vec::as_slice).collect();
            if !send_limited(&tx, render(&refs, &options, only), &mut left).await {
                return;
            }
        }
        if over {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(FOLLOW_POLL) => {}
            _ = changed.changed() => {}
            _ = tx.closed() => return,
        }
    }
}

impl ProcessRuntime {
    pub fn new(config: ProcessConfig) -> Self {
        ProcessRuntime {
            config,
            pods: Mutex::new(HashMap::new()),
        }
    }

    fn pods_dir(&self) -> PathBuf {
        self.config.data_dir.join("pods")
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<ProcPod>>> {
        self.pods.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn pod(&self, uid: &str) -> Option<Arc<ProcPod>> {
        self.lock().get(uid).cloned()
    }

    fn running_slot(
        &self,
        uid: &str,
        container: &str,
    ) -> Result<(Arc<ProcPod>, Arc<Slot>), RuntimeError> {
        let pod = self.pod(uid).ok_or_else(|| {
            RuntimeError::NotFound(format!("pod {uid} is not running on this node"))
        })?;
        let slot = pod.slot(container).cloned().ok_or_else(|| {
            RuntimeError::NotFound(format!(
                "container {container} is not valid for pod {}",
                pod.start.name
            ))
        })?;
        if !matches!(slot.lock().state, ContainerState::Running { .. }) {
            return Err(RuntimeError::BadRequest(format!(
                "container {container} is not running"
            )));
        }
        Ok((pod, slot))
    }

    fn make_slot(dir: &Path, spec: &ContainerSpec) -> std::io::Result<Slot> {
        let root = dir.join("containers").join(&spec.name);
        std::fs::create_dir_all(&root)?;
        for m in &spec.mounts {
            let link = root.join(m.container_path.trim_start_matches('/'));
            if let Some(parent) = link.parent() {
                std::fs::create_dir_all(parent)?;
            }
            match std::fs::symlink_metadata(&link) {
                Ok(meta) if meta.is_dir() && !meta.file_type().is_symlink() => {
                    std::fs::remove_dir_all(&link)?
                }
                Ok(_) => std::fs::remove_file(&link)?,
                Err(_) => {}
            }
            std::os::unix::fs::symlink(&m.host_path, &link)?;
        }
        Ok(Slot {
            spec: spec.clone(),
            logs: dir.join("logs").join(&spec.name),
            root,
            state: Mutex::new(SlotState {
                state: waiting("ContainerCreating", None),
                last_state: None,
                restart_count: 0,
                pgid: None,
                stdin: None,
                container_id: String::new(),
            }),
            changed: watch::channel(0).0,
            restart: watch::channel(None).0,
        })
    }

    /// The log of a pod no longer running here (files kept until `forget_pod`).
    fn stored_log(
        &self,
        uid: &str,
        container: &str,
        previous: bool,
    ) -> Result<PathBuf, RuntimeError> {
        let dir = self.pods_dir().join(uid).join("logs").join(container);
        let mut runs: Vec<u32> = std::fs::read_dir(&dir)
            .map_err(|_| {
                RuntimeError::NotFound(format!("no logs of container {container} on this node"))
            })?
            .filter_map(|e| {
                e.ok()?
                    .file_name()
                    .to_str()?
                    .strip_suffix(".log")?
                    .parse()
                    .ok()
            })
            .collect();
        runs.sort_unstable();
        let pick = if previous {
            runs.len().checked_sub(2).map(|i| runs[i])
        } else {
            runs.last().copied()
        };
        pick.map(|r| dir.join(format!("{r}.log"))).ok_or_else(|| {
            RuntimeError::BadRequest(format!(
                "previous terminated container \"{container}\" not found"
            ))
        })
    }
}

impl Runtime for ProcessRuntime {
    fn name(&self) -> &'static str {
        "process"
    }

    fn start_pod<'a>(&'a self, pod: &'a PodStart) -> BoxFuture<'a, Result<(), RuntimeError>> {
        Box::pin(async move {
            if self.pod(&pod.uid).is_some() {
                return Ok(());
            }
            let dir = self.pods_dir().join(&pod.uid);
            let io = |e: std::io::Error| RuntimeError::Other(format!("pod directory: {e}"));
            std::fs::create_dir_all(&dir).map_err(io)?;
            let mut init = Vec::new();
            for spec in &pod.init_containers {
                init.push(Arc::new(Self::make_slot(&dir, spec).map_err(io)?));
            }
            let mut containers = Vec::new();
            for spec in &pod.containers {
                containers.push(Arc::new(Self::make_slot(&dir, spec).map_err(io)?));
            }
            if !init.is_empty() {
                for slot in &containers {
                    slot.set(|s| s.state = waiting("PodInitializing", None));
                }
            }
            let proc_pod = Arc::new(ProcPod {
                start: pod.clone(),
                dir,
                init,
                containers,
                stop: watch::channel(None).0,
                finished: watch::channel(false).0,
            });
            {
                let mut pods = self.lock();
                if pods.contains_key(&pod.uid) {
                    return Ok(());
                }
                pods.insert(pod.uid.clone(), proc_pod.clone());
            }
            let handle = tokio::spawn(supervise_pod(proc_pod.clone()));
            // Finished also when the supervisor panicked, so a stop never waits forever.
            tokio::spawn(async move {
                let _ = handle.await;
                proc_pod.finished.send_replace(true);
            });
            Ok(())
        })
    }

    fn stop_pod<'a>(
        &'a self,
        uid: &'a str,
        grace: Duration,
    ) -> BoxFuture<'a, Result<(), RuntimeError>> {
        Box::pin(async move {
            let Some(pod) = self.pod(uid) else {
                return Ok(());
            };
            // A second stop with a shorter grace period (a force delete) shortens it.
            pod.stop.send_if_modified(|s| match s {
                Some(current) if *current <= grace => false,
                _ => {
                    *s = Some(grace);
                    true
                }
            });
            let mut finished = pod.finished.subscribe();
            let _ = finished.wait_for(|done| *done).await;
            self.lock().remove(uid);
            tracing::debug!(%uid, dir = %pod.dir.display(), "process pod stopped");
            Ok(())
        })
    }

    fn pod_status<'a>(&'a self, uid: &'a str) -> BoxFuture<'a, Option<PodRuntimeStatus>> {
        Box::pin(async move {
            let pod = self.pod(uid)?;
            let containers: Vec<ContainerStatus> =
                pod.containers.iter().map(|s| s.status()).collect();
            let done = containers.iter().all(|c| {
                matches!(c.state, ContainerState::Terminated { .. })
                    && !restarts(
                        &pod.start.restart_policy,
                        match c.state {
                            ContainerState::Terminated { exit_code, .. } => exit_code,
                            _ => 0,
                        },
                    )
            });
            Some(PodRuntimeStatus {
                init_containers: pod.init.iter().map(|s| s.status()).collect(),
                containers,
                // No network namespace: no address of its own (the agent shows the host's).
                ips: Vec::new(),
                recheck_after: (!done).then_some(RECHECK),
            })
        })
    }

    fn pods(&self) -> BoxFuture<'_, Vec<String>> {
        Box::pin(async move {
            let mut uids: Vec<String> = self.lock().keys().cloned().collect();
            // Stopped pods whose files are kept count too, so the agent forgets them.
            if let Ok(entries) = std::fs::read_dir(self.pods_dir()) {
                for e in entries.flatten() {
                    if let Some(name) = e.file_name().to_str()
                        && !uids.iter().any(|u| u == name)
                    {
                        uids.push(name.to_string());
                    }
                }
            }
            uids
        })
    }

    fn pod_volume_dir(&self, uid: &str) -> Option<PathBuf> {
        Some(self.pods_dir().join(uid).join("volumes"))
    }

    fn forget_pod<'a>(&'a self, uid: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if self.pod(uid).is_some() || uid.is_empty() || uid.contains('/') || uid.contains("..")
            {
                return;
            }
            let dir = self.pods_dir().join(uid);
            if let Err(e) = std::fs::remove_dir_all(&dir)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(dir = %dir.display(), error = %e, "removing a pod directory failed");
            }
        })
    }

    fn restart_container<'a>(
        &'a self,
        uid: &'a str,
        container: &'a str,
        grace: Duration,
    ) -> BoxFuture<'a, Result<(), RuntimeError>> {
        Box::pin(async move {
            let (_, slot) = self.running_slot(uid, container)?;
            slot.restart.send_replace(Some(grace));
            Ok(())
        })
    }

    fn logs<'a>(
        &'a self,
        uid: &'a str,
        container: &'a str,
        options: &'a LogOptions,
    ) -> BoxFuture<'a, Result<ByteStream, RuntimeError>> {
        Box::pin(async move {
            let live = self.pod(uid).and_then(|p| p.slot(container).cloned());
            let (path, follow_run) = match &live {
                Some(slot) => {
                    let (run, running) = {
                        let s = slot.lock();
                        (
                            s.restart_count,
                            matches!(s.state, ContainerState::Running { .. }),
                        )
                    };
                    if options.previous {
                        let prev = run.checked_sub(1).ok_or_else(|| {
                            RuntimeError::BadRequest(format!(
                                "previous terminated container \"{container}\" in pod \"{}\" not found",
                                self.pod(uid).map(|p| p.start.name.clone()).unwrap_or_default()
                            ))
                        })?;
                        (slot.log_file(prev), None)
                    } else {
                        (
                            slot.log_file(run),
                            (options.follow && running).then_some(run),
                        )
                    }
                }
                None => (self.stored_log(uid, container, options.previous)?, None),
            };
            let data = read_all(&path);
            let mut buf = data.clone();
            let mut lines = take_lines(&mut buf);
            if let Some(n) = options.tail_lines {
                let skip = lines.len().saturating_sub(n as usize);
                lines.drain(..skip);
            }
            let refs: Vec<&[u8]> = lines.iter().map(Vec::as_slice).collect();
            let first = render(&refs, options, None);
            let (tx, rx) = tokio::sync::mpsc::channel(16);
            let options = options.clone();
            let offset = (data.len() - buf.len()) as u64;
            tokio::spawn(async move {
                let mut left = options.limit_bytes;
                if !send_limited(&tx, first, &mut left).await {
                    return;
                }
                if let (Some(run), Some(slot)) = (follow_run, live) {
                    let rest = LogOptions {
                        limit_bytes: left,
                        ..options
                    };
                    follow(slot, run, offset, rest, None, tx).await;
                }
            });
            Ok(channel_stream(rx))
        })
    }

    fn exec<'a>(
        &'a self,
        uid: &'a str,
        container: &'a str,
        request: &'a StreamRequest,
    ) -> BoxFuture<'a, Result<StreamSession, RuntimeError>> {
        Box::pin(async move {
            if request.tty {
                return Err(RuntimeError::BadRequest(
                    "the process runtime has no terminals: exec without -t".into(),
                ));
            }
            let (pod, slot) = self.running_slot(uid, container)?;
            let argv = request.command.clone();
            if argv.is_empty() {
                return Err(RuntimeError::BadRequest(
                    "you must specify at least one command for the container".into(),
                ));
            }
            let cwd = slot
                .working_dir()
                .map_err(|e| RuntimeError::Other(format!("workingDir: {e}")))?;
            let pipe = |on: bool| {
                if on {
                    std::process::Stdio::piped()
                } else {
                    std::process::Stdio::null()
                }
            };
            let mut child = Command::new(&argv[0])
                .args(&argv[1..])
                .env_clear()
                .envs(slot.environment(&pod.start.name))
                .current_dir(cwd)
                .stdin(pipe(request.stdin))
                .stdout(pipe(request.stdout))
                .stderr(pipe(request.stderr))
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| RuntimeError::BadRequest(format!("exec: {:?}: {e}", argv[0])))?;
            let stdin = child
                .stdin
                .take()
                .map(|s| Box::pin(s) as std::pin::Pin<Box<dyn tokio::io::AsyncWrite + Send>>);
            let stdout = child.stdout.take().map(reader_stream);
            let stderr = child.stderr.take().map(reader_stream);
            let exit: BoxFuture<'static, Result<i32, RuntimeError>> = Box::pin(async move {
                child
                    .wait()
                    .await
                    .map(|s| exit_code(&s))
                    .map_err(|e| RuntimeError::Other(format!("exec: {e}")))
            });
            Ok(StreamSession {
                stdin,
                stdout,
                stderr,
                resize: None,
                exit,
            })
        })
    }

    fn attach<'a>(
        &'a self,
        uid: &'a str,
        container: &'a str,
        request: &'a StreamRequest,
    ) -> BoxFuture<'a, Result<StreamSession, RuntimeError>> {
        Box::pin(async move {
            if request.tty {
                return Err(RuntimeError::BadRequest(
                    "the process runtime has no terminals: attach without -t".into(),
                ));
            }
            let (_, slot) = self.running_slot(uid, container)?;
            let (run, pipe) = {
                let s = slot.lock();
                (s.restart_count, s.stdin.clone())
            };
            let stdin = if request.stdin {
                let pipe = pipe.ok_or_else(|| {
                    RuntimeError::BadRequest(format!(
                        "container {container} does not have stdin: true"
                    ))
                })?;
                let (client, mut ours) = tokio::io::duplex(64 * 1024);
                let once = slot.spec.stdin_once;
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 16 * 1024];
                    loop {
                        let n = ours.read(&mut buf).await.unwrap_or(0);
                        let mut guard = pipe.lock().await;
                        if n == 0 {
                            if once {
                                *guard = None;
                            }
                            return;
                        }
                        let Some(w) = guard.as_mut() else { return };
                        if w.write_all(&buf[..n]).await.is_err() || w.flush().await.is_err() {
                            return;
                        }
                    }
                });
                Some(Box::pin(client) as std::pin::Pin<Box<dyn tokio::io::AsyncWrite + Send>>)
            } else {
                None
            };
            let offset = std::fs::metadata(slot.log_file(run)).map_or(0, |m| m.len());
            let open = |on: bool, only: &'static str| {
                on.then(|| {
                    let (tx, rx) = tokio::sync::mpsc::channel(16);
                    tokio::spawn(follow(
                        slot.clone(),
                        run,
                        offset,
                        LogOptions::default(),
                        Some(only),
                        tx,
                    ));
                    channel_stream(rx)
                })
            };
            let stdout = open(request.stdout, "stdout");
            let stderr = open(request.stderr, "stderr");
            let waiter = slot.clone();
            let exit: BoxFuture<'static, Result<i32, RuntimeError>> = Box::pin(async move {
                let mut changed = waiter.changed.subscribe();
                loop {
                    {
                        let s = waiter.lock();
                        if s.restart_count != run
                            || !matches!(s.state, ContainerState::Running { .. })
                        {
                            return Ok(match &s.state {
                                ContainerState::Terminated { exit_code, .. } => *exit_code,
                                _ => s
                                    .last_state
                                    .as_ref()
                                    .and_then(|l| match l {
                                        ContainerState::Terminated { exit_code, .. } => {
                                            Some(*exit_code)
                                        }
                                        _ => None,
                                    })
                                    .unwrap_or(0),
                            });
                        }
                    }
                    if changed.changed().await.is_err() {
                        return Ok(0);
                    }
                }
            });
            Ok(StreamSession {
                stdin,
                stdout,
                stderr,
                resize: None,
                exit,
            })
        })
    }

    fn port_forward<'a>(
        &'a self,
        uid: &'a str,
        port: u16,
    ) -> BoxFuture<'a, Result<Box<dyn Duplex>, RuntimeError>> {
        Box::pin(async move {
            if self.pod(uid).is_none() {
                return Err(RuntimeError::NotFound(format!(
                    "pod {uid} is not running on this node"
                )));
            }
            let stream = tokio::net::TcpStream::connect((std::net::Ipv4Addr::LOCALHOST, port))
                .await
                .map_err(|e| {
                    RuntimeError::Other(format!(
                        "failed to connect to localhost:{port} in the pod: {e}"
                    ))
                })?;
            Ok(Box::new(stream) as Box<dyn Duplex>)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    fn spec(name: &str, script: &str) -> ContainerSpec {
        ContainerSpec {
            name: name.into(),
            image: "busybox".into(),
            command: vec!["/bin/sh".into(), "-c".into(), script.into()],
            ..ContainerSpec::default()
        }
    }

    fn pod(uid: &str, policy: &str, containers: Vec<ContainerSpec>) -> PodStart {
        PodStart {
            uid: uid.into(),
            namespace: "default".into(),
            name: format!("pod-{uid}"),
            init_containers: vec![],
            containers,
            restart_policy: policy.into(),
            annotations: Default::default(),
            termination_grace: Duration::from_secs(30),
        }
    }

    fn runtime(dir: &Path) -> ProcessRuntime {
        ProcessRuntime::new(ProcessConfig {
            data_dir: dir.to_path_buf(),
        })
    }

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("beemesh-process-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    async fn until(
        rt: &ProcessRuntime,
        uid: &str,
        f: impl Fn(&PodRuntimeStatus) -> bool,
    ) -> PodRuntimeStatus {
        for _ in 0..200 {
            if let Some(s) = rt.pod_status(uid).await
                && f(&s)
            {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("condition not reached: {:?}", rt.pod_status(uid).await);
    }

    async fn collect(mut s: ByteStream) -> String {
        let mut out = Vec::new();
        while let Some(Ok(b)) = s.next().await {
            out.extend_from_slice(&b);
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    #[tokio::test]
    async fn runs_a_command_with_env_and_mounts_and_logs_it() {
        let dir = scratch("run");
        let rt = runtime(&dir);
        let vol = dir.join("vol");
        std::fs::create_dir_all(&vol).unwrap();
        std::fs::write(vol.join("key"), "from-volume").unwrap();
        let mut c = spec(
            "main",
            "echo $GREETING $HOSTNAME; cat etc/cfg/key; echo; echo oops >&2",
        );
        c.env = vec![("GREETING".into(), "hello".into())];
        c.mounts = vec![super::super::VolumeMount {
            host_path: vol.clone(),
            container_path: "/etc/cfg".into(),
            read_only: true,
        }];
        rt.start_pod(&pod("u1", "Never", vec![c])).await.unwrap();
        let s = until(&rt, "u1", |s| {
            matches!(s.containers[0].state, ContainerState::Terminated { .. })
        })
        .await;
        assert!(matches!(
            s.containers[0].state,
            ContainerState::Terminated { exit_code: 0, .. }
        ));
        assert!(s.ips.is_empty());
        assert_eq!(s.recheck_after, None);
        let logs = collect(rt.logs("u1", "main", &LogOptions::default()).await.unwrap()).await;
        assert_eq!(logs, "hello pod-u1\nfrom-volume\noops\n");
        let tail = LogOptions {
            tail_lines: Some(1),
            timestamps: true,
            ..LogOptions::default()
        };
        let last = collect(rt.logs("u1", "main", &tail).await.unwrap()).await;
        assert!(
            last.ends_with(" oops\n") && last.starts_with("20"),
            "{last}"
        );
        let limited = LogOptions {
            limit_bytes: Some(5),
            ..LogOptions::default()
        };
        assert_eq!(
            collect(rt.logs("u1", "main", &limited).await.unwrap()).await,
            "hello"
        );
        // Stopped: the log stays readable until the pod is forgotten.
        rt.stop_pod("u1", Duration::ZERO).await.unwrap();
        assert!(rt.pod_status("u1").await.is_none());
        let kept = collect(rt.logs("u1", "main", &LogOptions::default()).await.unwrap()).await;
        assert_eq!(kept, logs);
        assert!(rt.pods().await.contains(&"u1".to_string()));
        rt.forget_pod("u1").await;
        assert!(!dir.join("pods/u1").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_crashing_container_backs_off_and_keeps_its_last_state() {
        let dir = scratch("crash");
        let rt = runtime(&dir);
        rt.start_pod(&pod("u2", "Always", vec![spec("c", "echo run; exit 3")]))
            .await
            .unwrap();
        let s = until(&rt, "u2", |s| {
            matches!(&s.containers[0].state, ContainerState::Waiting { reason, .. } if reason == "CrashLoopBackOff")
        })
        .await;
        let c = &s.containers[0];
        assert_eq!(c.restart_count, 1);
        assert!(matches!(
            c.last_state,
            Some(ContainerState::Terminated { exit_code: 3, .. })
        ));
        let ContainerState::Waiting { message, .. } = &c.state else {
            unreachable!()
        };
        assert!(
            message
                .as_deref()
                .unwrap_or("")
                .starts_with("back-off 10s restarting failed container=c pod=pod-u2_default(u2)"),
            "{message:?}"
        );
        let previous = LogOptions {
            previous: true,
            ..LogOptions::default()
        };
        assert_eq!(
            collect(rt.logs("u2", "c", &previous).await.unwrap()).await,
            "run\n"
        );
        rt.stop_pod("u2", Duration::ZERO).await.unwrap();
        rt.forget_pod("u2").await;
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn stop_sends_term_to_the_group_then_kill() {
        let dir = scratch("stop");
        let rt = runtime(&dir);
        rt.start_pod(&pod(
            "u3",
            "Always",
            vec![spec(
                "c",
                "trap 'echo got TERM; exit 0' TERM; echo up; while true; do sleep 0.1; done",
            )],
        ))
        .await
        .unwrap();
        until(&rt, "u3", |s| {
            matches!(s.containers[0].state, ContainerState::Running { .. })
        })
        .await;
        // The trap is set before "up" is printed.
        for _ in 0..100 {
            let l = collect(rt.logs("u3", "c", &LogOptions::default()).await.unwrap()).await;
            if l.contains("up") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let t = std::time::Instant::now();
        rt.stop_pod("u3", Duration::from_secs(10)).await.unwrap();
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
        let l = collect(rt.logs("u3", "c", &LogOptions::default()).await.unwrap()).await;
        assert_eq!(l, "up\ngot TERM\n");
        // One that ignores TERM is killed after the grace period.
        rt.start_pod(&pod(
            "u4",
            "Always",
            vec![spec(
                "c",
                "trap '' TERM; echo up; while true; do sleep 0.1; done",
            )],
        ))
        .await
        .unwrap();
        until(&rt, "u4", |s| {
            matches!(s.containers[0].state, ContainerState::Running { .. })
        })
        .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let t = std::time::Instant::now();
        rt.stop_pod("u4", Duration::from_millis(500)).await.unwrap();
        assert!(
            t.elapsed() >= Duration::from_millis(450),
            "{:?}",
            t.elapsed()
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_shorter_second_stop_cuts_the_grace_period() {
        let dir = scratch("force");
        let rt = std::sync::Arc::new(runtime(&dir));
        rt.start_pod(&pod(
            "u7",
            "Always",
            vec![spec("c", "trap '' TERM; while true; do sleep 0.1; done")],
        ))
        .await
        .unwrap();
        until(&rt, "u7", |s| {
            matches!(s.containers[0].state, ContainerState::Running { .. })
        })
        .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let t = std::time::Instant::now();
        let slow = {
            let rt = rt.clone();
            tokio::spawn(async move { rt.stop_pod("u7", Duration::from_secs(30)).await })
        };
        tokio::time::sleep(Duration::from_millis(200)).await;
        rt.stop_pod("u7", Duration::ZERO).await.unwrap();
        slow.await.unwrap().unwrap();
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
        assert!(rt.pod_status("u7").await.is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn init_containers_run_first_and_exec_and_restart_work() {
        let dir = scratch("init");
        let rt = runtime(&dir);
        let mut p = pod(
            "u5",
            "Always",
            vec![spec("app", "cat ../../shared/x; exec sleep 30")],
        );
        p.init_containers = vec![spec(
            "init",
            "mkdir -p ../../shared && echo ready > ../../shared/x",
        )];
        rt.start_pod(&p).await.unwrap();
        until(&rt, "u5", |s| {
            matches!(s.containers[0].state, ContainerState::Running { .. })
        })
        .await;
        let s = rt.pod_status("u5").await.unwrap();
        assert!(matches!(
            s.init_containers[0].state,
            ContainerState::Terminated { exit_code: 0, .. }
        ));
        let req = StreamRequest {
            command: vec!["sh".into(), "-c".into(), "echo $HOSTNAME; exit 4".into()],
            stdout: true,
            ..StreamRequest::default()
        };
        let session = rt.exec("u5", "app", &req).await.unwrap();
        let out = collect(session.stdout.unwrap()).await;
        assert_eq!(out, "pod-u5\n");
        assert_eq!(session.exit.await.unwrap(), 4);
        let tty = StreamRequest { tty: true, ..req };
        assert!(matches!(
            rt.exec("u5", "app", &tty).await,
            Err(RuntimeError::BadRequest(_))
        ));
        rt.restart_container("u5", "app", Duration::from_secs(1))
            .await
            .unwrap();
        let s = until(&rt, "u5", |s| {
            s.containers[0].restart_count == 1
                && matches!(s.containers[0].state, ContainerState::Running { .. })
        })
        .await;
        assert!(matches!(
            s.containers[0].last_state,
            Some(ContainerState::Terminated { exit_code: 143, .. })
        ));
        rt.stop_pod("u5", Duration::ZERO).await.unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_container_without_a_command_waits_with_a_config_error() {
        let dir = scratch("nocmd");
        let rt = runtime(&dir);
        let c = ContainerSpec {
            name: "c".into(),
            image: "nginx".into(),
            ..ContainerSpec::default()
        };
        rt.start_pod(&pod("u6", "Always", vec![c])).await.unwrap();
        let s = until(&rt, "u6", |s| {
            matches!(&s.containers[0].state, ContainerState::Waiting { reason, .. } if reason == "CreateContainerConfigError")
        })
        .await;
        assert!(s.recheck_after.is_some());
        rt.stop_pod("u6", Duration::ZERO).await.unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn long_lines_are_split_into_partial_entries_and_joined_again() {
        let dir = scratch("long");
        let rt = runtime(&dir);
        // 40,000 characters on one line, then a short one without a newline.
        let script = "head -c 40000 /dev/zero | tr '\\0' x; echo; printf end";
        rt.start_pod(&pod("u8", "Never", vec![spec("c", script)]))
            .await
            .unwrap();
        until(&rt, "u8", |s| {
            matches!(s.containers[0].state, ContainerState::Terminated { .. })
        })
        .await;
        let raw = std::fs::read_to_string(dir.join("pods/u8/logs/c/0.log")).unwrap();
        let tags: Vec<&str> = raw
            .lines()
            .map(|l| l.split(' ').nth(2).unwrap_or(""))
            .collect();
        assert_eq!(tags, ["P", "P", "F", "F"]);
        let logs = collect(rt.logs("u8", "c", &LogOptions::default()).await.unwrap()).await;
        assert_eq!(logs, format!("{}\nend\n", "x".repeat(40000)));
        rt.stop_pod("u8", Duration::ZERO).await.unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn backoff_is_the_kubelets() {
        let secs: Vec<u64> = (1..=8).map(|n| backoff_after(n).as_secs()).collect();
        assert_eq!(secs, vec![0, 10, 20, 40, 80, 160, 300, 300]);
    }
}
