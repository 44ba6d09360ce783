//! Where the programs and data the suite needs are found on this machine.

use std::path::{Path, PathBuf};

use crate::HarnessError;

/// The workspace root (the conformance crate's parent directory).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// The `beemesh` binary: `$BEEMESH_BIN`, else `$CARGO_TARGET_DIR/debug/beemesh`, else the
/// `debug` directory this test binary was built into, else `<workspace>/target/debug/beemesh`.
pub fn beemesh_binary() -> Result<PathBuf, HarnessError> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(bin) = std::env::var_os("BEEMESH_BIN") {
        // An explicit choice is final: never silently run another binary.
        let bin = PathBuf::from(bin);
        return if bin.is_file() {
            Ok(bin)
        } else {
            Err(HarnessError::NodeBinaryMissing(bin.display().to_string()))
        };
    }
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        candidates.push(PathBuf::from(dir).join("debug").join("beemesh"));
    }
    if let Some(dir) = option_env!("CARGO_TARGET_DIR") {
        candidates.push(PathBuf::from(dir).join("debug").join("beemesh"));
    }
    // Test binaries live in <target>/debug/deps/.
    if let Ok(exe) = std::env::current_exe()
        && let Some(debug) = exe.parent().and_then(Path::parent)
    {
        candidates.push(debug.join("beemesh"));
    }
    candidates.push(
        workspace_root()
            .join("target")
            .join("debug")
            .join("beemesh"),
    );
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| {
            HarnessError::NodeBinaryMissing(
                candidates
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            )
        })
}

/// The directory holding `kubectl.1.NN` binaries: `$BEEMESH_KUBECTL_DIR`, else the directory
/// of the real file behind `kubectl` on PATH.
pub fn kubectl_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("BEEMESH_KUBECTL_DIR") {
        return Some(PathBuf::from(dir));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("kubectl"))
        .find(|p| p.is_file())
        .and_then(|p| std::fs::canonicalize(p).ok())
        .and_then(|p| p.parent().map(Path::to_path_buf))
}

/// `kubectl.<version>` (e.g. `kubectl.1.27`), or why it is not available.
pub fn kubectl_binary(version: &str) -> Result<PathBuf, String> {
    let dir = kubectl_dir().ok_or_else(|| "no kubectl on PATH".to_string())?;
    let bin = dir.join(format!("kubectl.{version}"));
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(format!("{} not found", bin.display()))
    }
}

/// The shared manifest corpus: `$BEEMESH_CORPORA`, else `shared/corpora/manifests` beside
/// the work tree (as CI lays it out), else `/work/shared/corpora/manifests`.
pub fn corpora_dir() -> Option<PathBuf> {
    let mut candidates = Vec::new();
    if let Some(dir) = std::env::var_os("BEEMESH_CORPORA") {
        candidates.push(PathBuf::from(dir));
    }
    let root = workspace_root();
    if let Some(parent) = root.parent() {
        candidates.push(parent.join("shared").join("corpora").join("manifests"));
    }
    candidates.push(PathBuf::from("/work/shared/corpora/manifests"));
    candidates.into_iter().find(|p| p.is_dir())
}
