//! On-disk cache of compiled components.
//!
//! A file is named after the SHA-256 of the component and a hash of the
//! engine's compilation settings (its key), and ends with a SHA-256 of the
//! key and its content — so a file renamed to another key is not used. It is used only if it is a regular file owned by this user, not
//! writable by group or others, in a directory with the same properties, and
//! its checksum matches; wasmtime then checks that it was produced by this
//! wasmtime version with these settings. Anything else is recompiled and the
//! file replaced (written to a temporary file and renamed).

use std::fs;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Length of the trailing checksum.
const SUM: usize = 32;

/// A directory of precompiled components.
#[derive(Debug, Clone)]
pub struct CompileCache {
    dir: PathBuf,
}

/// Why a cache file was not used (logged, then recompiled).
#[derive(Debug)]
pub(crate) enum Miss {
    /// No file yet.
    Absent,
    /// The file exists but is not trusted or not usable.
    Rejected(String),
}

/// A `Hasher` that feeds SHA-256 (stable across runs, unlike `DefaultHasher`).
struct ShaHasher(Sha256);

impl Hasher for ShaHasher {
    fn finish(&self) -> u64 {
        let digest = self.0.clone().finalize();
        u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"))
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The cache key of `component` compiled by `engine`.
pub(crate) fn key(engine: &Engine, component: &[u8]) -> String {
    let mut settings = ShaHasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut settings);
    let settings = settings.0.finalize();
    format!(
        "{}-{}",
        hex(&Sha256::digest(component)),
        hex(&settings[..8])
    )
}

fn private(meta: &fs::Metadata) -> Result<(), String> {
    let uid = rustix::process::geteuid().as_raw();
    if meta.uid() != uid {
        return Err(format!("owned by uid {}, not {uid}", meta.uid()));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(format!(
            "writable by group or others (mode {:o})",
            meta.mode() & 0o777
        ));
    }
    Ok(())
}

impl CompileCache {
    /// A cache in `dir` (created with mode 0700 if missing).
    pub fn open(dir: &Path) -> Result<Self, String> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let meta = fs::metadata(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        private(&meta).map_err(|e| format!("cache directory {} is {e}", dir.display()))?;
        Ok(Self {
            dir: dir.to_owned(),
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.cwasm"))
    }

    /// The cached compilation of `key`, if it is present and trusted.
    pub(crate) fn load(&self, engine: &Engine, key: &str) -> Result<Component, Miss> {
        let path = self.path(key);
        let meta = match fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Miss::Absent),
            Err(e) => return Err(Miss::Rejected(e.to_string())),
        };
        if !meta.is_file() {
            return Err(Miss::Rejected("not a regular file".into()));
        }
        private(&meta).map_err(Miss::Rejected)?;
        let bytes = fs::read(&path).map_err(|e| Miss::Rejected(e.to_string()))?;
        if bytes.len() <= SUM {
            return Err(Miss::Rejected("truncated".into()));
        }
        let (artifact, sum) = bytes.split_at(bytes.len() - SUM);
        if checksum(key, artifact).as_slice() != sum {
            return Err(Miss::Rejected("checksum mismatch".into()));
        }
        deserialize(engine, artifact).map_err(Miss::Rejected)
    }

    /// Store the compilation of `component` under `key`.
    pub(crate) fn store(&self, key: &str, component: &Component) -> Result<(), String> {
        let mut artifact = component.serialize().map_err(|e| e.to_string())?;
        let sum = checksum(key, &artifact);
        artifact.extend_from_slice(&sum);
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir).map_err(|e| e.to_string())?;
        tmp.as_file()
            .set_permissions(fs::Permissions::from_mode(0o600))
            .map_err(|e| e.to_string())?;
        tmp.write_all(&artifact).map_err(|e| e.to_string())?;
        tmp.as_file().sync_all().map_err(|e| e.to_string())?;
        tmp.persist(self.path(key)).map_err(|e| e.to_string())?;
        Ok(())
    }
}

/// The trailer of a cache file: SHA-256 over its key and its artifact.
fn checksum(key: &str, artifact: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(key.as_bytes());
    h.update([0]);
    h.update(artifact);
    h.finalize().into()
}

/// Turn a cache file back into a component.
#[allow(unsafe_code)]
fn deserialize(engine: &Engine, artifact: &[u8]) -> Result<Component, String> {
    // SAFETY: `Component::deserialize` runs the native code in `artifact`
    // and must only be given bytes produced by `Component::serialize`.
    // These bytes come from a file this process wrote with
    // `CompileCache::store`: it is owned by our user and not writable by
    // anyone else (as is its directory, checked at open), its SHA-256
    // trailer over key and content matches (so it is complete, unmodified
    // since it was written, and was written for this component and these
    // engine settings). wasmtime
    // additionally refuses artifacts of another version or configuration.
    unsafe { Component::deserialize(engine, artifact) }.map_err(|e| format!("{e:#}"))
}
