//! Nodes as Docker containers on private networks of this machine: an image built locally
//! (no registry) from the `beemesh` binary and the shared libraries it links, `--internal`
//! bridge networks (nothing leaves the machine) and containers whose data directories are
//! bind-mounted from a temp dir. Everything made here carries an owner label and is removed
//! on drop; leftovers of a test process that died without dropping are removed by the next
//! run.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Label on every container, network and image this module makes: `<host>:<pid>`.
const OWNER_LABEL: &str = "beemesh.conformance.owner";

/// Runs `docker ARGS`; stdout on success, else the command and its stderr.
pub fn docker(args: &[&str]) -> Result<String, String> {
    let out = Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("docker {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(format!(
            "docker {} exited {}: {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The Docker Engine's version, or why there is no usable engine.
pub fn engine_version() -> Result<String, String> {
    docker(&["version", "--format", "{{.Server.Version}}"])
        .map_err(|e| format!("no usable Docker Engine: {e}"))
}

fn owner() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    format!("{}:{}", host.trim(), std::process::id())
}

/// Whether the test process that owns `label` (`<host>:<pid>`) is gone.
fn owner_is_gone(label: &str) -> bool {
    let Some((host, pid)) = label.rsplit_once(':') else {
        return false;
    };
    let this_host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    host == this_host.trim() && !Path::new(&format!("/proc/{pid}")).exists()
}

/// Containers, networks and images of one test, removed (in that order) on drop.
pub struct DockerScope {
    /// Prefix of every name made in this scope.
    pub prefix: String,
    owner: String,
    containers: Vec<String>,
    networks: Vec<String>,
    images: Vec<String>,
}

impl DockerScope {
    /// A scope named after `case`; first removes what dead test processes left behind.
    pub fn new(case: &str) -> DockerScope {
        remove_orphans();
        let owner = owner();
        DockerScope {
            prefix: format!("beemesh-{case}-{}", std::process::id()),
            owner,
            containers: Vec::new(),
            networks: Vec::new(),
            images: Vec::new(),
        }
    }

    fn label(&self) -> String {
        format!("{OWNER_LABEL}={}", self.owner)
    }

    /// Builds an image that runs `bin`: `FROM scratch` with the binary, the shared
    /// libraries `ldd` lists and a minimal `/etc/passwd`, from a context assembled in
    /// `work_dir`. Returns the image tag.
    pub fn build_node_image(&mut self, bin: &Path, work_dir: &Path) -> Result<String, String> {
        let context = work_dir.join("image");
        let io = |what: &str, e: std::io::Error| format!("{what}: {e}");
        std::fs::create_dir_all(context.join("etc")).map_err(|e| io("image context", e))?;
        std::fs::create_dir_all(context.join("tmp")).map_err(|e| io("image context", e))?;
        // The container may run as a non-root user (the owner of its data directory).
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(context.join("tmp"), std::fs::Permissions::from_mode(0o1777))
                .map_err(|e| io("image context", e))?;
        }
        std::fs::write(
            context.join("etc/passwd"),
            "root:x:0:0:root:/:/nonexistent\n",
        )
        .map_err(|e| io("etc/passwd", e))?;
        std::fs::write(context.join("etc/group"), "root:x:0:\n").map_err(|e| io("etc/group", e))?;
        std::fs::copy(bin, context.join("beemesh")).map_err(|e| io("copying the binary", e))?;
        for lib in shared_libraries(bin)? {
            let inside = context.join(lib.strip_prefix("/").unwrap_or(&lib));
            if let Some(dir) = inside.parent() {
                std::fs::create_dir_all(dir).map_err(|e| io("image context", e))?;
            }
            std::fs::copy(&lib, &inside).map_err(|e| io(&lib.display().to_string(), e))?;
        }
        std::fs::write(
            context.join("Dockerfile"),
            "FROM scratch\nCOPY . /\nENTRYPOINT [\"/beemesh\"]\n",
        )
        .map_err(|e| io("Dockerfile", e))?;
        let tag = format!("{}:latest", self.prefix);
        let label = self.label();
        let context_str = context.display().to_string();
        self.images.push(tag.clone());
        docker(&["build", "-q", "--label", &label, "-t", &tag, &context_str])?;
        Ok(tag)
    }

    /// Creates an `--internal` bridge network (no route off this machine) on a free /24
    /// subnet; returns the subnet's first three octets (`10.231.7`).
    pub fn create_internal_network(&mut self, name: &str) -> Result<String, String> {
        let full = format!("{}-{name}", self.prefix);
        let label = self.label();
        let mut last = String::new();
        // Pick /24s from 10.200.0.0-10.254.255.0 until one does not overlap.
        let seed = std::process::id() as usize * 7919 + name.len() * 104_729;
        for attempt in 0..40usize {
            let n = (seed + attempt * 2_654_435_761usize) % (55 * 256);
            let prefix = format!("10.{}.{}", 200 + n / 256, n % 256);
            let subnet = format!("{prefix}.0/24");
            match docker(&[
                "network",
                "create",
                "--internal",
                "--driver",
                "bridge",
                "--subnet",
                &subnet,
                "--label",
                &label,
                &full,
            ]) {
                Ok(_) => {
                    self.networks.push(full);
                    return Ok(prefix);
                }
                Err(e) => last = e,
            }
        }
        Err(format!("no free subnet for network {full}: {last}"))
    }

    /// `<owner label>=<this scope's owner>`: put on what others make for this test (the
    /// docker runtime takes it through `BEEMESH_DOCKER_LABELS`), so [`LabelSweep`] and the
    /// orphan sweep of later runs find it.
    pub fn owner_label(&self) -> String {
        self.label()
    }

    /// Builds a tiny image for pods: `FROM scratch` with the host's static busybox
    /// (`busybox-static`) at `/bin/busybox` and its applets (`sh`, `echo`, `cat`, `sleep`,
    /// `env`, `wget`, `nc`, ...) linked in `/bin`, plus `/tmp`. No registry is involved.
    /// Returns the image tag; the image is removed on drop.
    pub fn build_busybox_image(&mut self, work_dir: &Path) -> Result<String, String> {
        let busybox = ["/bin/busybox", "/usr/bin/busybox"]
            .into_iter()
            .map(Path::new)
            .find(|p| p.is_file())
            .ok_or("no /bin/busybox: install busybox-static")?;
        let context = work_dir.join("busybox-image");
        let io = |what: &str, e: std::io::Error| format!("{what}: {e}");
        std::fs::create_dir_all(&context).map_err(|e| io("image context", e))?;
        std::fs::copy(busybox, context.join("busybox")).map_err(|e| io("copying busybox", e))?;
        std::fs::write(
            context.join("Dockerfile"),
            "FROM scratch\nCOPY busybox /bin/busybox\n\
             RUN [\"/bin/busybox\", \"sh\", \"-c\", \"/bin/busybox --install -s /bin && \
             /bin/busybox mkdir -p /tmp /etc && /bin/busybox chmod 1777 /tmp && \
             echo root:x:0:0:root:/:/bin/sh > /etc/passwd\"]\n\
             CMD [\"/bin/sh\"]\n",
        )
        .map_err(|e| io("Dockerfile", e))?;
        let tag = format!("{}-busybox:1", self.prefix);
        let label = self.label();
        let context_str = context.display().to_string();
        self.images.push(tag.clone());
        docker(&["build", "-q", "--label", &label, "-t", &tag, &context_str])?;
        Ok(tag)
    }

    /// The full name of a network created with [`Self::create_internal_network`].
    pub fn network(&self, name: &str) -> String {
        format!("{}-{name}", self.prefix)
    }

    /// `docker create` with this scope's label and name prefix; the container is removed
    /// on drop. `args` go between the options and the image's command.
    pub fn create_container(
        &mut self,
        name: &str,
        options: &[String],
        image: &str,
        command: &[String],
    ) -> Result<String, String> {
        let full = format!("{}-{name}", self.prefix);
        let label = self.label();
        let mut args: Vec<&str> = vec!["create", "--name", &full, "--label", &label];
        args.extend(options.iter().map(String::as_str));
        args.push(image);
        args.extend(command.iter().map(String::as_str));
        self.containers.push(full.clone());
        docker(&args)?;
        Ok(full)
    }
}

impl Drop for DockerScope {
    fn drop(&mut self) {
        for container in self.containers.drain(..).rev() {
            let _ = docker(&["rm", "-f", "-v", &container]);
        }
        for network in self.networks.drain(..).rev() {
            let _ = docker(&["network", "rm", &network]);
        }
        for image in self.images.drain(..) {
            let _ = docker(&["rmi", "-f", &image]);
        }
    }
}

/// Removes every container (then network) carrying a label on drop: what a process under
/// test made with the test's owner label (the docker runtime's pods and its network).
pub struct LabelSweep(pub String);

impl Drop for LabelSweep {
    fn drop(&mut self) {
        let filter = format!("label={}", self.0);
        for id in docker(&["ps", "-aq", "--filter", &filter])
            .unwrap_or_default()
            .lines()
        {
            let _ = docker(&["rm", "-f", "-v", id]);
        }
        for id in docker(&["network", "ls", "-q", "--filter", &filter])
            .unwrap_or_default()
            .lines()
        {
            let _ = docker(&["network", "rm", id]);
        }
    }
}

/// Removes containers, networks and images whose owning test process no longer runs.
fn remove_orphans() {
    let filter = format!("label={OWNER_LABEL}");
    let format = format!("{{{{.ID}}}} {{{{.Label \"{OWNER_LABEL}\"}}}}");
    let listed = |args: &[&str]| -> Vec<String> {
        docker(args)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_once(' '))
            .filter(|(_, owner)| owner_is_gone(owner))
            .map(|(id, _)| id.to_string())
            .collect()
    };
    for id in listed(&["ps", "-a", "--filter", &filter, "--format", &format]) {
        let _ = docker(&["rm", "-f", "-v", &id]);
    }
    for id in listed(&["network", "ls", "--filter", &filter, "--format", &format]) {
        let _ = docker(&["network", "rm", &id]);
    }
    for id in docker(&["images", "--filter", &filter, "--format", "{{.ID}}"])
        .unwrap_or_default()
        .lines()
    {
        let owner = docker(&[
            "image",
            "inspect",
            "--format",
            &format!("{{{{index .Config.Labels \"{OWNER_LABEL}\"}}}}"),
            id,
        ])
        .unwrap_or_default();
        if owner_is_gone(&owner) {
            let _ = docker(&["rmi", "-f", id]);
        }
    }
}

/// The shared libraries `ldd` lists for `bin` (none for a static binary).
fn shared_libraries(bin: &Path) -> Result<Vec<PathBuf>, String> {
    let out = Command::new("ldd")
        .arg(bin)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("ldd {}: {e}", bin.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        // "not a dynamic executable": nothing to copy.
        return Ok(Vec::new());
    }
    Ok(text
        .lines()
        .filter_map(|line| {
            line.split_whitespace()
                .find(|word| word.starts_with('/'))
                .map(PathBuf::from)
        })
        .collect())
}
