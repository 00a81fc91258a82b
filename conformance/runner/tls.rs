//! A TLS front for the in-process server, as a deployment would put a TLS-terminating proxy
//! in front of Tessera. The suite requires https for the issuer and every endpoint
//! (`CheckDiscEndpointDiscoveryUrl`, `CheckDiscEndpointAllEndpointsAreHttps`, `CheckJwksUri`,
//! …); serving https keeps those checks exactly as the suite has them instead of relaxing them.
//! The certificate is self-signed for `127.0.0.1` and `localhost` and trusted explicitly by the
//! runner's HTTP clients (and by Node through `NODE_EXTRA_CA_CERTS`).

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

pub struct SelfSigned {
    pub cert_pem: String,
    cert_der: Vec<u8>,
    key_der: Vec<u8>,
}

pub fn self_signed() -> Result<SelfSigned, String> {
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .map_err(|e| format!("generating the test certificate: {e}"))?;
    Ok(SelfSigned {
        cert_pem: certified.cert.pem(),
        cert_der: certified.cert.der().to_vec(),
        key_der: certified.signing_key.serialize_der(),
    })
}

/// Accepts TLS on `listener` and forwards each connection's bytes to `backend` (plain HTTP/1.1).
pub fn spawn_proxy(
    listener: TcpListener,
    backend: SocketAddr,
    cert: &SelfSigned,
) -> Result<tokio::task::JoinHandle<()>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(cert.cert_der.clone())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.key_der.clone())),
        )
        .map_err(|e| format!("TLS configuration: {e}"))?;
    // The backend speaks HTTP/1.1; bytes are copied as they are.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(config));
    Ok(tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut upstream) = TcpStream::connect(backend).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut upstream).await;
            });
        }
    }))
}
