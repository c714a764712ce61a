//! Broker address and connection options: URL or -h/-p, credentials, TLS.

use core::time::Duration;
use std::fs;
use std::path::Path;
use std::sync::Arc;

use anyhow::{anyhow, bail, Result};
use rumqttc::{TlsConfiguration, Transport};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::Common;

/// How long to wait for retained messages after a SUBACK, and between two
/// of them: the broker sends what it retains right after the SUBACK.
pub(crate) const RETAINED_SETTLE: Duration = Duration::from_secs(1);

/// Where and how to connect, independent of the MQTT version.
#[derive(Clone)]
pub struct Target {
    /// For TCP and TLS: the host; for WebSockets: the whole URL.
    pub address: String,
    pub port: u16,
    pub transport: Transport,
    /// A short text for messages.
    pub display: String,
    /// The topic in the path of an mqtt:// or mqtts:// URL (as mosquitto
    /// takes it), if any.
    pub url_topic: Option<String>,
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>> {
    fs::read(path).map_err(|e| anyhow!("cannot read {what} {}: {e}", path.display()))
}

/// True when a TLS option was given: like mosquitto_pub, that means TLS.
pub fn tls_requested(c: &Common) -> bool {
    c.cafile.is_some() || c.capath.is_some() || c.cert.is_some() || c.insecure || c.tls_version.is_some()
}

fn pem_certs(pem: &[u8], path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>> {
    let certs = rustls_pemfile::certs(&mut &pem[..])
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow!("{what} {}: not PEM certificates: {e}", path.display()))?;
    if certs.is_empty() {
        bail!("{what} {}: no PEM certificate in it", path.display());
    }
    Ok(certs)
}

/// The X.509 version of a DER certificate: 1 when the optional `[0]
/// version` field of the TBSCertificate is absent (RFC 5280 §4.1).
fn x509_version(der: &[u8]) -> Option<u8> {
    // Skips a tag and its length; returns the rest (the contents onwards).
    fn enter(b: &[u8]) -> Option<&[u8]> {
        let len = *b.get(1)?;
        let skip = if len & 0x80 == 0 { 2 } else { 2 + usize::from(len & 0x7f) };
        b.get(skip..)
    }
    let tbs = enter(der)?; // Certificate ::= SEQUENCE
    let fields = enter(tbs)?; // TBSCertificate ::= SEQUENCE
    if fields.first() != Some(&0xa0) {
        return Some(1);
    }
    // [0] { INTEGER v }: a0 03 02 01 v
    let v = enter(fields)?;
    (v.first() == Some(&0x02) && v.get(1) == Some(&1)).then(|| v.get(2).map(|v| v + 1)).flatten()
}

const V3_HOWTO: &str = "rustls accepts only X.509 v3 certificates; re-issue it with extensions, e.g. \
     `openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 365 \
     -extfile <(printf 'basicConstraints=CA:FALSE\\nextendedKeyUsage=clientAuth') -out client.crt` \
     (any -extfile or -extensions makes a v3 certificate)";

/// Accepts a server certificate whose chain verifies but whose name does
/// not match the host (`--insecure`, as mosquitto's).
#[derive(Debug)]
struct AnyHostname(Arc<rustls::client::WebPkiServerVerifier>);

impl ServerCertVerifier for AnyHostname {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.0.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

fn tls_config(c: &Common) -> Result<TlsConfiguration> {
    fn add(roots: &mut RootCertStore, pem: &[u8], path: &Path, what: &str) -> Result<()> {
        for cert in pem_certs(pem, path, what)? {
            roots.add(cert).map_err(|e| anyhow!("{what} {}: {e}", path.display()))?;
        }
        Ok(())
    }
    let mut roots = RootCertStore::empty();
    if let Some(p) = &c.cafile {
        add(&mut roots, &read(p, "CA file")?, p, "CA file")?;
    }
    if let Some(dir) = &c.capath {
        let entries = fs::read_dir(dir).map_err(|e| anyhow!("cannot read --capath {}: {e}", dir.display()))?;
        for entry in entries.flatten() {
            let path = entry.path();
            // PEM files and OpenSSL's hash links (c_rehash); other files are skipped.
            if path.is_file() {
                if let Ok(pem) = fs::read(&path) {
                    let _ = add(&mut roots, &pem, &path, "CA certificate");
                }
            }
        }
        if roots.is_empty() {
            bail!("--capath {}: no PEM CA certificate in it", dir.display());
        }
    }
    if c.cafile.is_none() && c.capath.is_none() {
        let system = std::env::var_os("SSL_CERT_FILE")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| "/etc/ssl/certs/ca-certificates.crt".into());
        if !system.exists() {
            bail!("TLS needs a CA certificate: pass --cafile FILE or --capath DIR");
        }
        add(&mut roots, &read(&system, "CA bundle")?, &system, "CA bundle")?;
    }
    let versions: &[&rustls::SupportedProtocolVersion] = match c.tls_version.as_deref() {
        None => rustls::DEFAULT_VERSIONS,
        Some("tlsv1.3") => &[&rustls::version::TLS13],
        Some("tlsv1.2") => &[&rustls::version::TLS12],
        Some(other) => bail!("--tls-version {other}: supported are tlsv1.3 and tlsv1.2 (rustls has no older TLS)"),
    };
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(|e| anyhow!("TLS configuration: {e}"))?;
    let roots = Arc::new(roots);
    let builder = if c.insecure {
        let webpki = rustls::client::WebPkiServerVerifier::builder_with_provider(roots, provider)
            .build()
            .map_err(|e| anyhow!("TLS configuration: {e}"))?;
        builder.dangerous().with_custom_certificate_verifier(Arc::new(AnyHostname(webpki)))
    } else {
        builder.with_root_certificates(roots)
    };
    let config = match (&c.cert, &c.key) {
        (Some(cert), Some(key)) => {
            let certs = pem_certs(&read(cert, "client certificate")?, cert, "client certificate")?;
            for (i, der) in certs.iter().enumerate() {
                if x509_version(der) == Some(1) {
                    let which = if i == 0 { "the certificate" } else { "a CA certificate in its chain" };
                    bail!("client certificate {}: {which} is X.509 v1; {V3_HOWTO}", cert.display());
                }
            }
            let key_pem = read(key, "client key")?;
            let key_der: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut &key_pem[..])
                .map_err(|e| anyhow!("client key {}: {e}", key.display()))?
                .ok_or_else(|| anyhow!("client key {}: no PEM private key in it", key.display()))?;
            builder
                .with_client_auth_cert(certs, key_der)
                .map_err(|e| anyhow!("client certificate {} / key {}: {e}", cert.display(), key.display()))?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(TlsConfiguration::Rustls(Arc::new(config)))
}

/// Adds what the user can do about a connection error.
pub fn explain(e: &str) -> String {
    if e.contains("UnsupportedCertVersion") {
        format!(
            "{e} (the broker's certificate or a CA in its chain is X.509 v1, not the client's own: {})",
            V3_HOWTO.replace("client.", "server.").replace("clientAuth", "serverAuth")
        )
    } else {
        e.to_owned()
    }
}

/// Parses `--url` (or -h/-p) into a [`Target`].
pub fn target(c: &Common) -> Result<Target> {
    let tls = tls_requested(c);
    let Some(url) = &c.url else {
        if tls {
            let port = c.port.unwrap_or(8883);
            return Ok(Target {
                address: c.host.clone(),
                port,
                transport: Transport::tls_with_config(tls_config(c)?),
                display: format!("mqtts://{}:{port}", c.host),
                url_topic: None,
            });
        }
        let port = c.port.unwrap_or(1883);
        return Ok(Target {
            address: c.host.clone(),
            port,
            transport: Transport::Tcp,
            display: format!("mqtt://{}:{port}", c.host),
            url_topic: None,
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
    // mosquitto: the path of an mqtt:// URL is the topic.
    let url_topic = Some(path.trim_start_matches('/')).filter(|t| !t.is_empty()).map(str::to_owned);
    let plain_with_tls = |secure: &str| {
        anyhow!(
            "TLS options (--cafile, --capath, --cert, --insecure, --tls-version) given with a {scheme}:// URL, \
             which is not TLS: use {secure}://"
        )
    };
    let t = match scheme {
        "mqtt" | "tcp" => {
            if tls {
                return Err(plain_with_tls("mqtts"));
            }
            let port = port.unwrap_or(1883);
            Target {
                address: bare_host,
                port,
                transport: Transport::Tcp,
                display: format!("mqtt://{host}:{port}"),
                url_topic,
            }
        }
        "mqtts" | "ssl" | "tls" => {
            let port = port.unwrap_or(8883);
            Target {
                address: bare_host,
                port,
                transport: Transport::tls_with_config(tls_config(c)?),
                display: format!("mqtts://{host}:{port}"),
                url_topic,
            }
        }
        "ws" | "wss" => {
            let secure = scheme == "wss";
            if tls && !secure {
                return Err(plain_with_tls("wss"));
            }
            let port = port.unwrap_or(if secure { 443 } else { 80 });
            let full = format!("{scheme}://{host}:{port}{path}");
            let transport = if secure { Transport::wss_with_config(tls_config(c)?) } else { Transport::Ws };
            // For WebSockets the path is the broker's, never a topic.
            Target { address: full.clone(), port, transport, display: full, url_topic: None }
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

/// MQTT 3.1.1 options. Packet limits: the MQTT maximum; the limit the user
/// asked for is applied by the adapter (`Protection::max_packet_size`).
pub fn options_v4(c: &Common, t: &Target, role: &str, clean: bool) -> rumqttc::MqttOptions {
    let mut o = rumqttc::MqttOptions::new(client_id(c, role), t.address.clone(), t.port);
    o.set_transport(t.transport.clone());
    o.set_keep_alive(Duration::from_secs(c.keepalive.max(5)));
    o.set_clean_session(clean);
    mqseal_rumqttc::lift_packet_limit(&mut o);
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
    mqseal_rumqttc::v5::lift_packet_limit(&mut o);
    match c.session_expiry {
        Some(s) => {
            o.set_session_expiry_interval(Some(s));
        }
        // Keep the session while disconnected (MQTT 5 ends it at once by default).
        None if !clean => {
            o.set_session_expiry_interval(Some(u32::MAX));
        }
        None => {}
    }
    if let Some(u) = &c.username {
        o.set_credentials(u.clone(), c.password.clone().unwrap_or_default());
    }
    o
}

/// True for MQTT 5.
pub fn is_v5(c: &Common) -> bool {
    matches!(c.protocol.as_str(), "5" | "mqttv5")
}
