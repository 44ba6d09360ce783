//! A node's place in its mesh, kept in its data directory (ADR 0005):
//!
//! | path | what |
//! |---|---|
//! | `p2p/identity.key` | the libp2p identity (ed25519); its peer id is the replica's origin |
//! | `p2p/listen` | the p2p addresses bound last time (reused, so peers find us after a restart) |
//! | `p2p/peers` | members met last time (dialled on restart, with `--join`) |
//! | `pki/ca.crt`, `pki/ca.key` | the mesh CA, the same on every member |
//! | `pki/join.secret` | the mesh's join secret, the same on every member |
//! | `pki/member.crt` | this node's member certificate (binds its peer id) |
//! | `join-token` | `bm1.<CA hash>.<secret>`: what another node needs to join |
//!
//! The first node of a mesh creates the CA and the secret; a joiner gets both from a
//! member it proves the token to, and checks the CA against the token's hash.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use beemesh_mesh_backend::mesh::{
    Keypair, MeshConfig, MeshError, MeshHandle, Multiaddr, PeerId, load_or_create_keypair,
    request_admission,
};
use beemesh_mesh_backend::trust::{
    JoinToken, MeshCa, MeshTrust, accept_admission, admission_request,
};

/// How long a joiner waits for one member's admission answer.
const ADMISSION_TIMEOUT: Duration = Duration::from_secs(15);
/// How often the addresses of the current members are saved even without a change.
const SAVE_PEERS_EVERY: Duration = Duration::from_secs(30);
/// At most this many member addresses are kept.
const MAX_SAVED_PEERS: usize = 64;

/// Where the mesh files of a data directory live.
pub struct MeshFiles {
    dir: PathBuf,
}

impl MeshFiles {
    pub fn new(data_dir: &Path) -> MeshFiles {
        MeshFiles {
            dir: data_dir.to_path_buf(),
        }
    }

    fn identity(&self) -> PathBuf {
        self.dir.join("p2p").join("identity.key")
    }

    fn listen(&self) -> PathBuf {
        self.dir.join("p2p").join("listen")
    }

    fn peers(&self) -> PathBuf {
        self.dir.join("p2p").join("peers")
    }

    fn ca_cert(&self) -> PathBuf {
        self.dir.join("pki").join("ca.crt")
    }

    fn ca_key(&self) -> PathBuf {
        self.dir.join("pki").join("ca.key")
    }

    fn secret(&self) -> PathBuf {
        self.dir.join("pki").join("join.secret")
    }

    fn member_cert(&self) -> PathBuf {
        self.dir.join("pki").join("member.crt")
    }

    /// `DIR/join-token`.
    pub fn token(&self) -> PathBuf {
        self.dir.join("join-token")
    }

    /// The p2p addresses bound last time, if any.
    pub fn saved_listen(&self) -> Vec<Multiaddr> {
        read_addrs(&self.listen())
    }

    pub fn save_listen(&self, addrs: &[Multiaddr]) -> anyhow::Result<()> {
        write_addrs(&self.listen(), addrs)
    }

    /// Members met on earlier runs.
    pub fn saved_peers(&self) -> Vec<Multiaddr> {
        read_addrs(&self.peers())
    }
}

fn read_addrs(path: &Path) -> Vec<Multiaddr> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.trim().parse().ok())
        .collect()
}

fn write_addrs(path: &Path, addrs: &[Multiaddr]) -> anyhow::Result<()> {
    let text: String = addrs.iter().map(|a| format!("{a}\n")).collect();
    write_file(path, text.as_bytes(), false)
}

/// Writes `path` atomically (temp file + rename); `secret` files are mode 0600.
fn write_file(path: &Path, contents: &[u8], secret: bool) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| anyhow!("{} has no parent directory", path.display()))?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = path.with_extension("tmp");
    {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        if secret {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options
            .open(&tmp)
            .with_context(|| format!("writing {}", tmp.display()))?;
        file.write_all(contents)?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

fn read_file(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// This node's identity and its mesh's trust, ready to configure the mesh.
pub struct Membership {
    pub keypair: Keypair,
    pub trust: Arc<MeshTrust>,
    /// The member certificate (DER) this node presents to peers.
    pub credential: Vec<u8>,
    /// Whether this data directory already belonged to the mesh before this start.
    pub restarted: bool,
    /// The member that admitted this node on this start, if it joined just now.
    pub admitted_by: Option<PeerId>,
}

/// Loads or establishes the node's membership: an existing mesh CA is kept (a token,
/// if given, must name it); otherwise a node with `--join` asks the members for the
/// mesh's secrets with `token`, and a node without creates a new mesh.
pub async fn establish(
    files: &MeshFiles,
    joins: &[Multiaddr],
    token: Option<&JoinToken>,
) -> anyhow::Result<Membership> {
    let keypair = load_or_create_keypair(&files.identity()).context("the node's p2p identity")?;
    let local = keypair.public().to_peer_id();
    let restarted = files.ca_cert().exists();
    let mut admitted_by = None;
    let (ca, secret) = if restarted {
        let ca = MeshCa::from_pem(&read_file(&files.ca_cert())?, &read_file(&files.ca_key())?)
            .context("the mesh CA in this data directory")?;
        if let Some(token) = token
            && !token.names_ca(ca.cert_der())
        {
            bail!(
                "this data directory already belongs to the mesh whose CA has sha256 {}, \
                 but the join token names {}; use a fresh --data-dir to join another mesh",
                hex(&ca.hash()),
                token.ca_hash_hex()
            );
        }
        let secret = match std::fs::read_to_string(files.secret()) {
            Ok(secret) => secret.trim().to_string(),
            // A data directory from before meshes: its CA becomes the mesh CA.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let secret = JoinToken::generate_secret();
                write_file(&files.secret(), secret.as_bytes(), true)?;
                secret
            }
            Err(e) => return Err(e).context("reading the join secret"),
        };
        (ca, secret)
    } else if !joins.is_empty() {
        let token = token.ok_or_else(|| {
            anyhow!("--join needs --join-token (it is in DIR/join-token on any member of the mesh)")
        })?;
        let (member, ca) = join(&keypair, joins, token).await?;
        admitted_by = Some(member);
        save_ca(files, &ca)?;
        write_file(&files.secret(), token.secret().as_bytes(), true)?;
        (ca, token.secret().to_string())
    } else {
        if token.is_some() {
            bail!("--join-token without --join: which member should this node join through?");
        }
        let ca = MeshCa::generate().context("creating the mesh CA")?;
        let secret = JoinToken::generate_secret();
        save_ca(files, &ca)?;
        write_file(&files.secret(), secret.as_bytes(), true)?;
        (ca, secret)
    };
    let token = JoinToken::new(ca.cert_der(), &secret).context("the mesh's join secret")?;
    write_file(&files.token(), format!("{token}\n").as_bytes(), true)?;
    let credential = member_certificate(files, &ca, &keypair)?;
    let trust = Arc::new(MeshTrust::new(ca, token, local)?);
    Ok(Membership {
        keypair,
        trust,
        credential,
        restarted,
        admitted_by,
    })
}

fn save_ca(files: &MeshFiles, ca: &MeshCa) -> anyhow::Result<()> {
    write_file(&files.ca_key(), ca.key_pem().as_bytes(), true)?;
    write_file(&files.ca_cert(), ca.cert_pem().as_bytes(), false)
}

/// The stored member certificate if it is valid for this node and mesh, else a new one.
fn member_certificate(
    files: &MeshFiles,
    ca: &MeshCa,
    keypair: &Keypair,
) -> anyhow::Result<Vec<u8>> {
    let peer = keypair.public().to_peer_id();
    if let Ok(der) = std::fs::read(files.member_cert())
        && ca.verify_member_cert(&der, &peer).is_ok()
    {
        return Ok(der);
    }
    let der = ca
        .issue_member_cert(&keypair.public())
        .context("issuing this node's member certificate")?;
    write_file(&files.member_cert(), &der, false)?;
    Ok(der)
}

/// Asks the `--join` addresses in turn until one member admits this node.
async fn join(
    keypair: &Keypair,
    joins: &[Multiaddr],
    token: &JoinToken,
) -> anyhow::Result<(PeerId, MeshCa)> {
    let local = keypair.public().to_peer_id();
    let mut failures = Vec::new();
    for addr in joins {
        let answer = request_admission(
            keypair,
            addr.clone(),
            |member| admission_request(token, &local, &member),
            ADMISSION_TIMEOUT,
        )
        .await;
        match answer {
            Ok((member, bytes)) => match accept_admission(token, &bytes) {
                Ok(ca) => {
                    tracing::info!(%member, %addr, "admitted to the mesh");
                    return Ok((member, ca));
                }
                Err(e) => failures.push(format!("{addr}: {e}")),
            },
            Err(e) => failures.push(format!("{addr}: {e}")),
        }
    }
    bail!("could not join the mesh:\n  {}", failures.join("\n  "))
}

/// Plugs the membership into a mesh configuration.
pub fn configure(config: &mut MeshConfig, membership: &Membership) {
    config.credential = membership.credential.clone().into();
    config.authorizer = membership.trust.authorizer();
    config.admitter = Some(membership.trust.admitter());
}

/// Keeps `p2p/peers` up to date with the addresses of the current members (on every
/// membership change, and periodically as addresses change), so that a restarted node
/// finds its mesh again. An empty mesh leaves the file alone.
pub async fn save_peers_forever(files: MeshFiles, mesh: MeshHandle) {
    let mut members = mesh.watch_members();
    loop {
        if save_peers(&files, &mesh).await.is_err() {
            return;
        }
        tokio::select! {
            // A member is admitted after identify told its addresses: save at once.
            changed = members.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            _ = tokio::time::sleep(SAVE_PEERS_EVERY) => {}
        }
    }
}

/// Saves the current members' addresses if there are any and they changed; `Err` only
/// when the mesh is gone.
pub async fn save_peers(files: &MeshFiles, mesh: &MeshHandle) -> Result<(), MeshError> {
    let mut current = mesh.known_peers().await?;
    current.sort_by_key(|a| a.to_string());
    current.dedup();
    current.truncate(MAX_SAVED_PEERS);
    if !current.is_empty()
        && current != files.saved_peers()
        && let Err(e) = write_addrs(&files.peers(), &current)
    {
        tracing::warn!(error = %e, "cannot save the mesh's peer addresses");
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_first_node_creates_a_mesh_and_keeps_it_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let files = MeshFiles::new(dir.path());
        let first = establish(&files, &[], None).await.unwrap();
        assert!(!first.restarted);
        let token_text = std::fs::read_to_string(files.token()).unwrap();
        let token: JoinToken = token_text.parse().unwrap();
        assert_eq!(&token, first.trust.token());
        assert!(token.names_ca(first.trust.ca().cert_der()));
        first
            .trust
            .authorize(&first.keypair.public().to_peer_id(), &first.credential)
            .unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            for secret in [files.ca_key(), files.secret(), files.token()] {
                let mode = std::fs::metadata(&secret).unwrap().permissions().mode();
                assert_eq!(mode & 0o077, 0, "{} is private", secret.display());
            }
        }

        let again = establish(&files, &[], Some(&token)).await.unwrap();
        assert!(again.restarted);
        assert_eq!(
            again.keypair.public().to_peer_id(),
            first.keypair.public().to_peer_id()
        );
        assert_eq!(again.trust.ca().hash(), first.trust.ca().hash());
        assert_eq!(again.credential, first.credential);
        assert_eq!(std::fs::read_to_string(files.token()).unwrap(), token_text);
    }

    #[tokio::test]
    async fn flags_that_contradict_the_data_directory_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let files = MeshFiles::new(dir.path());
        let other_ca = MeshCa::generate().unwrap();
        let other = JoinToken::new(other_ca.cert_der(), &JoinToken::generate_secret()).unwrap();
        let addr: Multiaddr = "/ip4/127.0.0.1/tcp/1".parse().unwrap();

        let no_token = establish(&files, std::slice::from_ref(&addr), None).await;
        assert!(format!("{:#}", no_token.err().unwrap()).contains("--join-token"));
        let no_join = establish(&files, &[], Some(&other)).await;
        assert!(format!("{:#}", no_join.err().unwrap()).contains("without --join"));
        assert!(!files.ca_cert().exists(), "a refused start creates no mesh");

        establish(&files, &[], None).await.unwrap();
        let wrong_mesh = establish(&files, &[addr], Some(&other)).await;
        assert!(format!("{:#}", wrong_mesh.err().unwrap()).contains("already belongs"));
    }

    #[tokio::test]
    async fn an_unreachable_member_fails_the_join_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let files = MeshFiles::new(dir.path());
        let ca = MeshCa::generate().unwrap();
        let token = JoinToken::new(ca.cert_der(), &JoinToken::generate_secret()).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr: Multiaddr = format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap();
        let error = establish(&files, std::slice::from_ref(&addr), Some(&token))
            .await
            .err()
            .unwrap();
        let text = format!("{error:#}");
        assert!(
            text.contains("could not join the mesh") && text.contains(&addr.to_string()),
            "{text}"
        );
        assert!(!files.ca_cert().exists());
        assert!(!files.token().exists());
    }
}
