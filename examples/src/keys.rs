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
        #[allow(missing_docs)] // a doc comment here would replace the first flattened option's help
        #[command(flatten)]
        counters: CounterInit,
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

/// `keygen group --sender-id`: the counter files of the senders that will
/// seal with the new key, so that their first `mqseal pub` finds one.
#[derive(Args, Debug)]
struct CounterInit {
    /// Also create the counter file of this sender id for the new key
    /// (repeatable), at the path `mqseal pub` uses by default
    /// ($XDG_STATE_HOME/mqseal/counter-k<key id>-s<sender id>). `mqseal pub`
    /// refuses a missing counter file, so this is how a new sender starts
    /// (or `mqseal pub --new-counter-file` once). An existing counter file is
    /// kept: its counters only grow.
    #[arg(long = "sender-id", value_name = "ID")]
    sender_ids: Vec<u32>,
    /// The counter file to create instead of the default path (with one
    /// --sender-id only).
    #[arg(long, value_name = "FILE", requires = "sender_ids")]
    counter_file: Option<PathBuf>,
}

impl CounterInit {
    /// Creates the files, after the key file was written (never for a key
    /// that could not be written: that id may belong to an older key).
    fn create(&self, key_id: u32) -> Result<()> {
        for &sender_id in &self.sender_ids {
            let path = crate::state::counter_path(self.counter_file.as_deref(), key_id, sender_id)?;
            crate::state::create_counter(&path, sender_id)?;
        }
        Ok(())
    }
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
        KeygenKind::Group { id, out, force, counters } => {
            if counters.counter_file.is_some() && counters.sender_ids.len() > 1 {
                bail!("--counter-file names one file: give one --sender-id with it");
            }
            let key = Key::generate(*id).map_err(|e| anyhow!("key generation failed: {e}"))?;
            match out {
                Some(path) => {
                    write_new(path, key.to_text().as_str(), 0o600, *force)?;
                    eprintln!("wrote group key id {id} to {} (mode 0600)", path.display());
                }
                None => println!("{}", key.to_text().as_str()),
            }
            counters.create(*id)?;
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
    /// File with a group key (`mqseal:key:v1:<id>:<base64url>`, from
    /// `mqseal keygen group`) or a JSON key file:
    /// {"primary": 7, "keys": ["mqseal:key:v1:7:..."], "x25519":
    /// "mqseal:x25519-secret:v1:...", "peers": [{"public":
    /// "mqseal:x25519-public:v1:...", "key_id": 40}]}. "keys" are group keys;
    /// "x25519" and "peers" (optional) add a pairwise key with each peer
    /// under its key_id. "primary" is the id of the key that seals, a group
    /// key or a peer's key_id (default: the only group key, or with no group
    /// keys the only peer). Unknown fields are refused; key ids must differ.
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
    /// With --key-file or --key-text as well, the group keys and the
    /// pairwise key share one keyring: the ids must differ.
    #[arg(long, default_value_t = 1)]
    pub pair_key_id: u32,
    /// Where --key-text's value came from, for messages (set by `main`
    /// from clap's value source).
    #[arg(skip)]
    pub key_text_origin: Option<&'static str>,
}

/// Loaded key material: every key that opens, and the one that seals.
pub struct KeyMaterial {
    pub ring: Keyring,
    pub seal_key: Option<Key>,
}

/// Trims ASCII whitespace only, the rule of the core's key texts (U+00A0
/// and other Unicode spaces are part of the text, hence an error).
fn trim_ascii(text: &str) -> &str {
    text.trim_matches(|c: char| c.is_ascii_whitespace())
}

/// Explains a key-id collision in a JSON key file.
fn json_collision(file: &KeyFile, id: u32) -> String {
    let groups = file.keys.iter().filter(|k| k.id() == id).count();
    let peers = if file.x25519.is_some() { file.peers.iter().filter(|p| p.key_id == id).count() } else { 0 };
    let what = match (groups, peers) {
        (g, _) if g > 1 => format!("{g} group keys in \"keys\" have key id {id}"),
        (1, p) if p > 0 => {
            format!("key id {id} is both a group key in \"keys\" and the key_id of a pairwise key in \"peers\"")
        }
        _ => format!("{peers} entries of \"peers\" use key_id {id}"),
    };
    format!("{what}: every key of a keyring needs its own id (one key would silently replace another)")
}

fn parse_key_text(text: &str, origin: &str) -> Result<KeyMaterial> {
    let text = trim_ascii(text);
    if text.starts_with('{') {
        let file: KeyFile =
            serde_json::from_str(text).map_err(|e| anyhow!("{origin}: not a valid JSON key file: {e}"))?;
        let ring: Keyring = file.keyring().map_err(|e| match e {
            mqseal::Error::DuplicateKeyId(id) => anyhow!("{origin}: {}", json_collision(&file, id)),
            e => anyhow!("{origin}: {e}"),
        })?;
        if ring.is_empty() {
            bail!("{origin}: the key file holds no keys (add \"keys\", or \"x25519\" with \"peers\")");
        }
        // Which key seals is the core's rule (KeyFile::sealing_key).
        let seal_key = file.sealing_key().map_err(|e| anyhow!("{origin}: {e}"))?;
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

/// An X25519 public key given on the command line as its text form or as a
/// file holding it (`flag` names the option in errors).
pub fn public_key_arg(arg: &str, flag: &str) -> Result<PublicKey> {
    let (text, origin) = if trim_ascii(arg).starts_with("mqseal:") {
        (arg.to_owned(), flag.to_owned())
    } else {
        (read_text(Path::new(arg))?, format!("{flag} {arg}"))
    };
    PublicKey::from_text(trim_ascii(&text))
        .map_err(|_| anyhow!("{origin}: not an X25519 public key (expected `mqseal:x25519-public:v1:...`)"))
}

fn read_text(path: &Path) -> Result<String> {
    fs::read_to_string(path).map_err(|e| anyhow!("cannot read key file {}: {e}", path.display()))
}

impl KeyArgs {
    /// The group keys of --key-file, else --key-text / MQSEAL_KEY, if any.
    fn group_keys(&self) -> Result<Option<KeyMaterial>> {
        if let Some(path) = &self.key_file {
            return parse_key_text(&read_text(path)?, &path.display().to_string()).map(Some);
        }
        if let Some(text) = &self.key_text {
            return parse_key_text(text, self.key_text_origin.unwrap_or("--key-text")).map(Some);
        }
        Ok(None)
    }

    /// Loads the keys: the group keys (--key-file, else --key-text /
    /// MQSEAL_KEY) and the pairwise keys (--x25519 with --peer), in one
    /// keyring. With --peer, the pairwise key seals; otherwise the group
    /// keys' primary.
    pub fn load(&self) -> Result<KeyMaterial> {
        let group = self.group_keys()?;
        let (Some(secret), Some(peer)) = (&self.x25519, &self.peer) else {
            return group.ok_or_else(|| {
                anyhow!(
                    "no key: pass --key-file FILE, set MQSEAL_KEY or MQSEAL_KEY_FILE, or use --x25519 with --peer \
                     (create a key with `mqseal keygen group -o FILE`)"
                )
            });
        };
        let origin = secret.display().to_string();
        let pair = StaticKeyPair::from_secret_text(trim_ascii(&read_text(secret)?))
            .map_err(|_| anyhow!("{origin}: not an X25519 secret key (expected `mqseal:x25519-secret:v1:...`)"))?;
        let peer = public_key_arg(peer, "--peer")?;
        let keys = pair.pairwise(&peer, self.pair_key_id).map_err(|e| anyhow!("pairwise key: {e}"))?;
        let mut ring = match group {
            Some(g) => g.ring,
            None => Keyring::new(),
        };
        let id = self.pair_key_id;
        ring.insert(keys.recv).map_err(|e| match e {
            mqseal::Error::DuplicateKeyId(_) => anyhow!(
                "key id {id} is used twice: by a group key ({}) and by the pairwise key with --peer \
                 (--pair-key-id {id}{}); every key of a keyring needs its own id (one would silently \
                 replace the other): pass another --pair-key-id, on both sides",
                self.key_file.as_ref().map_or_else(
                    || self.key_text_origin.unwrap_or("--key-text").to_owned(),
                    |p| p.display().to_string()
                ),
                if id == 1 { ", the default" } else { "" }
            ),
            e => anyhow!("pairwise key: {e}"),
        })?;
        Ok(KeyMaterial { ring, seal_key: Some(keys.send) })
    }
}
