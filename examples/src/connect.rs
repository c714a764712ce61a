//! Broker address and connection options: URL or -h/-p, credentials, TLS.

use core::time::Duration;
use std::fs;
use std::path::Path;

use anyhow::{anyhow, bail, Result};
use rumqttc::{TlsConfiguration, Transport};

use crate::Common;

/// Where and how to connect, independent of the MQTT version.
#[derive(Clone)]
pub struct Target {
    /// For TCP and TLS: the host; for WebSockets: the whole URL.
    pub address: String,
    pub port: u16,
    pub transport: Transport,
    /// A short text for messages.
    pub display: String,
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>> {
    fs::read(path).map_err(|e| anyhow!("cannot read {what} {}: {e}", path.display()))
}

fn tls_config(c: &Common) -> Result<TlsConfiguration> {
    let ca = match &c.cafile {
        Some(p) => read(p, "CA file")?,
        None => {
            let system = std::env::var_os("SSL_CERT_FILE")
                .map(std::path::PathBuf::from)
                .unwrap_or_else(|| "/etc/ssl/certs/ca-certificates.crt".into());
            if !system.exists() {
                bail!("TLS needs a CA certificate: pass --cafile FILE");
            }
            read(&system, "CA bundle")?
        }
    };
    let client_auth = match (&c.cert, &c.key) {
        (Some(cert), Some(key)) => Some((read(cert, "client certificate")?, read(key, "client key")?)),
        _ => None,
    };
    Ok(TlsConfiguration::Simple { ca, alpn: None, client_auth })
}

/// Parses `--url` (or -h/-p) into a [`Target`].
pub fn target(c: &Common) -> Result<Target> {
    let Some(url) = &c.url else {
        let port = c.port.unwrap_or(1883);
        return Ok(Target {
            address: c.host.clone(),
            port,
            transport: Transport::Tcp,
            display: format!("mqtt://{}:{port}", c.host),
        });
    };
    let bad = |why: &str| anyhow!("bad broker URL {url:?}: {why} (expected mqtt://, mqtts://, ws:// or wss://)");
    let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("no scheme"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.contains('@') {
        return Err(bad("put credentials in -u/-P, not in the URL"));
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or_else(|| bad("unclosed IPv6 bracket"))?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p.parse::<u16>().map_err(|_| bad("invalid port"))?),
            None if after.is_empty() => None,
            None => return Err(bad("junk after IPv6 address")),
        };
        (format!("[{h}]"), port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), Some(p.parse::<u16>().map_err(|_| bad("invalid port"))?)),
            None => (authority.to_owned(), None),
        }
    };
    if host.is_empty() || host == "[]" {
        return Err(bad("no host"));
    }
    let bare_host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
    let t = match scheme {
        "mqtt" | "tcp" => {
            let port = port.unwrap_or(1883);
            Target { address: bare_host, port, transport: Transport::Tcp, display: format!("mqtt://{host}:{port}") }
        }
        "mqtts" | "ssl" | "tls" => {
            let port = port.unwrap_or(8883);
            Target {
                address: bare_host,
                port,
                transport: Transport::tls_with_config(tls_config(c)?),
                display: format!("mqtts://{host}:{port}"),
            }
        }
        "ws" | "wss" => {
            let secure = scheme == "wss";
            let port = port.unwrap_or(if secure { 443 } else { 80 });
            let full = format!("{scheme}://{host}:{port}{path}");
            let transport = if secure { Transport::wss_with_config(tls_config(c)?) } else { Transport::Ws };
            Target { address: full.clone(), port, transport, display: full }
        }
        other => return Err(bad(&format!("unsupported scheme {other:?}"))),
    };
    Ok(t)
}

fn client_id(c: &Common, role: &str) -> String {
    c.client_id.clone().unwrap_or_else(|| {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        format!("mqseal-{role}-{}-{nanos:x}", std::process::id())
    })
}

/// MQTT 3.1.1 options.
pub fn options_v4(c: &Common, t: &Target, role: &str, clean: bool) -> rumqttc::MqttOptions {
    let mut o = rumqttc::MqttOptions::new(client_id(c, role), t.address.clone(), t.port);
    o.set_transport(t.transport.clone());
    o.set_keep_alive(Duration::from_secs(c.keepalive.max(5)));
    o.set_clean_session(clean);
    o.set_max_packet_size(1 << 20, 1 << 20);
    if let Some(u) = &c.username {
        o.set_credentials(u.clone(), c.password.clone().unwrap_or_default());
    }
    o
}

/// MQTT 5 options.
pub fn options_v5(c: &Common, t: &Target, role: &str, clean: bool) -> rumqttc::v5::MqttOptions {
    let mut o = rumqttc::v5::MqttOptions::new(client_id(c, role), t.address.clone(), t.port);
    o.set_transport(t.transport.clone());
    o.set_keep_alive(Duration::from_secs(c.keepalive.max(5)));
    o.set_clean_start(clean);
    if !clean {
        // Keep the session while disconnected (MQTT 5 ends it at once by default).
        o.set_session_expiry_interval(Some(u32::MAX));
    }
    o.set_max_packet_size(Some(1 << 20));
    if let Some(u) = &c.username {
        o.set_credentials(u.clone(), c.password.clone().unwrap_or_default());
    }
    o
}

/// True for MQTT 5.
pub fn is_v5(c: &Common) -> bool {
    matches!(c.protocol.as_str(), "5" | "mqttv5")
}
