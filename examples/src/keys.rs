//! Key material for the CLI: `keygen`, and loading keys for `pub`/`sub`
//! from files or environment variables. Keys are the core's text forms;
//! everything cryptographic is the core's.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Subcommand};
use mqseal::{Key, KeyFile, Keyring, PublicKey, StaticKeyPair};

/// `mqseal keygen`.
#[derive(Args, Debug)]
pub struct KeygenArgs {
    #[command(subcommand)]
    kind: KeygenKind,
}

#[derive(Subcommand, Debug)]
enum KeygenKind {
    /// A random 256-bit group key with a key id, written as
    /// `mqseal:key:v1:<id>:<base64url>`.
    Group {
        /// Key id (0..=4294967295), carried in every envelope.
        #[arg(long, default_value_t = 1)]
        id: u32,
        /// Output file (mode 0600). Without it the key goes to stdout.
        #[arg(short, long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
    },
    /// A static X25519 key pair: the secret to FILE (mode 0600), the public
    /// key to FILE.pub and stdout.
    X25519 {
        /// Output file for the secret key.
        #[arg(short, long, value_name = "FILE")]
        out: PathBuf,
        /// Overwrite existing files.
        #[arg(long)]
        force: bool,
    },
}

/// Writes `text` to `path`, creating it with `mode` (unix); refuses to
/// overwrite unless `force`.
fn write_new(path: &Path, text: &str, mode: u32, force: bool) -> Result<()> {
    let mut opts = fs::OpenOptions::new();
    opts.write(true);
    if force {
        opts.create(true).truncate(true);
    } else {
        opts.create_new(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(mode);
    }
    let mut f = opts.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            anyhow!("{} already exists (use --force to overwrite)", path.display())
        } else {
            anyhow!("cannot create {}: {e}", path.display())
        }
    })?;
    // An existing file keeps its old mode when truncated: set it again.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(fs::Permissions::from_mode(mode)).with_context(|| format!("chmod {}", path.display()))?;
    }
    #[cfg(not(unix))]
    let _ = mode;
    f.write_all(text.as_bytes()).and_then(|()| f.write_all(b"\n")).and_then(|()| f.sync_all())?;
    Ok(())
}

/// `mqseal keygen`.
pub fn keygen(args: &KeygenArgs) -> Result<()> {
    match &args.kind {
        KeygenKind::Group { id, out, force } => {
            let key = Key::generate(*id).map_err(|e| anyhow!("key generation failed: {e}"))?;
            match out {
                Some(path) => {
                    write_new(path, key.to_text().as_str(), 0o600, *force)?;
                    eprintln!("wrote group key id {id} to {} (mode 0600)", path.display());
                }
                None => println!("{}", key.to_text().as_str()),
            }
        }
        KeygenKind::X25519 { out, force } => {
            let pair = StaticKeyPair::generate().map_err(|e| anyhow!("key generation failed: {e}"))?;
            let mut pub_path = out.clone().into_os_string();
            pub_path.push(".pub");
            let pub_path = PathBuf::from(pub_path);
            if !force && pub_path.exists() {
                bail!("{} already exists (use --force to overwrite)", pub_path.display());
            }
            write_new(out, pair.secret_text().as_str(), 0o600, *force)?;
            let public = pair.public().to_text();
            write_new(&pub_path, public.as_str(), 0o644, *force)?;
            eprintln!("wrote X25519 secret key to {} (mode 0600), public key to {}", out.display(), pub_path.display());
            println!("{}", public.as_str());
        }
    }
    Ok(())
}

/// Where `pub` and `sub` find their keys.
#[derive(Args, Debug, Clone)]
pub struct KeyArgs {
    /// File with a group key (`mqseal:key:v1:...`) or a JSON key file
    /// ({"primary", "keys", "x25519", "peers"}).
    #[arg(long, env = "MQSEAL_KEY_FILE", value_name = "FILE")]
    pub key_file: Option<PathBuf>,
    /// The key itself (text form or JSON key file), usually from the
    /// environment variable.
    #[arg(long = "key-text", env = "MQSEAL_KEY", hide_env_values = true, value_name = "KEY")]
    pub key_text: Option<String>,
    /// This side's X25519 secret key file (pairwise keys with --peer).
    #[arg(long, value_name = "FILE", requires = "peer")]
    pub x25519: Option<PathBuf>,
    /// The peer's X25519 public key: its text form or a file holding it.
    #[arg(long, value_name = "KEY|FILE", requires = "x25519")]
    pub peer: Option<String>,
    /// Key id of the pairwise key with --peer (both sides use the same).
    #[arg(long, default_value_t = 1)]
    pub pair_key_id: u32,
}

/// Loaded key material: every key that opens, and the one that seals.
pub struct KeyMaterial {
    pub ring: Keyring,
    pub seal_key: Option<Key>,
}

fn parse_key_text(text: &str, origin: &str) -> Result<KeyMaterial> {
    let text = text.trim();
    if text.starts_with('{') {
        let file: KeyFile =
            serde_json::from_str(text).map_err(|e| anyhow!("{origin}: not a valid JSON key file: {e}"))?;
        let ring: Keyring = file.keyring().map_err(|e| anyhow!("{origin}: {e}"))?;
        if ring.is_empty() {
            bail!("{origin}: the key file holds no keys (add \"keys\", or \"x25519\" with \"peers\")");
        }
        let seal_key = match (ring.primary(), &file.x25519, file.peers.as_slice()) {
            (Some(k), _, _) => Some(k.clone()),
            (None, Some(pair), [peer]) => {
                Some(pair.pairwise(&peer.public, peer.key_id).map_err(|e| anyhow!("{origin}: pairwise key: {e}"))?.send)
            }
            _ => None,
        };
        return Ok(KeyMaterial { ring, seal_key });
    }
    if text.starts_with("mqseal:x25519") {
        bail!("{origin}: this is an X25519 key; use it with --x25519 FILE --peer PUBLIC_KEY");
    }
    let key = Key::from_text(text).map_err(|_| {
        anyhow!("{origin}: not an mqseal key (expected `mqseal:key:v1:<id>:<base64url>` or a JSON key file)")
    })?;
    let ring = Keyring::with_primary(key.clone()).map_err(|e| anyhow!("{origin}: {e}"))?;
    Ok(KeyMaterial { ring, seal_key: Some(key) })
}

fn read_text(path: &Path) -> Result<String> {
    fs::read_to_string(path).map_err(|e| anyhow!("cannot read key file {}: {e}", path.display()))
}

impl KeyArgs {
    /// Loads the keys: pairwise (--x25519/--peer), else --key-file, else
    /// MQSEAL_KEY.
    pub fn load(&self) -> Result<KeyMaterial> {
        if let (Some(secret), Some(peer)) = (&self.x25519, &self.peer) {
            let origin = secret.display().to_string();
            let pair = StaticKeyPair::from_secret_text(read_text(secret)?.trim())
                .map_err(|_| anyhow!("{origin}: not an X25519 secret key (expected `mqseal:x25519-secret:v1:...`)"))?;
            let peer_text = if peer.trim().starts_with("mqseal:") { peer.clone() } else { read_text(Path::new(peer))? };
            let peer = PublicKey::from_text(peer_text.trim())
                .map_err(|_| anyhow!("--peer: not an X25519 public key (expected `mqseal:x25519-public:v1:...`)"))?;
            let keys = pair.pairwise(&peer, self.pair_key_id).map_err(|e| anyhow!("pairwise key: {e}"))?;
            let ring = Keyring::with_primary(keys.recv).map_err(|e| anyhow!("{e}"))?;
            return Ok(KeyMaterial { ring, seal_key: Some(keys.send) });
        }
        if let Some(path) = &self.key_file {
            return parse_key_text(&read_text(path)?, &path.display().to_string());
        }
        if let Some(text) = &self.key_text {
            return parse_key_text(text, "MQSEAL_KEY");
        }
        bail!(
            "no key: pass --key-file FILE, set MQSEAL_KEY or MQSEAL_KEY_FILE, or use --x25519 with --peer \
             (create a key with `mqseal keygen group -o FILE`)"
        )
    }
}
