//! TLS: https discovery and wss sockets verified against a CA given with --cacert, and a
//! server whose certificate is not trusted refused with a clear message.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use crate::harness::*;

/// A CA, and a certificate for 127.0.0.1 that it signed: (CA PEM, server chain, server key).
pub(crate) fn certificates() -> (
    String,
    rustls::pki_types::CertificateDer<'static>,
    rustls::pki_types::PrivateKeyDer<'static>,
) {
    certificates_for("127.0.0.1")
}

/// A CA, and a certificate for `host` (a name or an address) that it signed.
pub(crate) fn certificates_for(
    host: &str,
) -> (
    String,
    rustls::pki_types::CertificateDer<'static>,
    rustls::pki_types::PrivateKeyDer<'static>,
) {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "lrwatch test CA");
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let server_key = rcgen::KeyPair::generate().unwrap();
    let server = rcgen::CertificateParams::new(vec![host.to_string()])
        .unwrap()
        .signed_by(&server_key, &ca)
        .unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(server_key.serialize_der().into());
    (ca.pem(), server.der().clone(), key)
}

/// A TLS-terminating proxy in front of `upstream` (http://host:port): its https base URL.
pub(crate) fn tls_proxy(
    upstream: &str,
    chain: rustls::pki_types::CertificateDer<'static>,
    key: rustls::pki_types::PrivateKeyDer<'static>,
) -> String {
    tls_proxy_on("127.0.0.1:0", upstream, chain, key)
}

/// [`tls_proxy`], listening on `listen` (`[::1]:0` for the IPv6 loopback).
pub(crate) fn tls_proxy_on(
    listen: &str,
    upstream: &str,
    chain: rustls::pki_types::CertificateDer<'static>,
    key: rustls::pki_types::PrivateKeyDer<'static>,
) -> String {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![chain], key)
            .unwrap(),
    );
    let upstream = upstream.trim_start_matches("http://").to_string();
    let listener = TcpListener::bind(listen).unwrap();
    let base = format!("https://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for tcp in listener.incoming().flatten() {
            let config = Arc::clone(&config);
            let upstream = upstream.clone();
            std::thread::spawn(move || {
                let Ok(mut plain) = TcpStream::connect(&upstream) else {
                    return;
                };
                let tick = Some(Duration::from_millis(5));
                let _ = tcp.set_read_timeout(tick);
                let _ = plain.set_read_timeout(tick);
                let mut tls =
                    rustls::StreamOwned::new(rustls::ServerConnection::new(config).unwrap(), tcp);
                let mut buf = vec![0u8; 16384];
                let quiet = |e: &std::io::Error| {
                    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
                };
                loop {
                    match tls.read(&mut buf) {
                        Ok(0) => return,
                        Ok(n) => {
                            if plain.write_all(&buf[..n]).is_err() {
                                return;
                            }
                        }
                        Err(e) if quiet(&e) => {}
                        Err(_) => return,
                    }
                    match plain.read(&mut buf) {
                        Ok(0) => return,
                        Ok(n) => {
                            if tls.write_all(&buf[..n]).and_then(|()| tls.flush()).is_err() {
                                return;
                            }
                        }
                        Err(e) if quiet(&e) => {}
                        Err(_) => return,
                    }
                }
            });
        }
    });
    base
}

#[test]
fn https_and_wss_are_verified_against_cacert() {
    let upstream = reference_server();
    let (ca_pem, chain, key) = certificates();
    let base = tls_proxy(&upstream, chain, key);
    let ca_file = std::env::temp_dir().join(format!("lrwatch-ca-{}.pem", std::process::id()));
    std::fs::write(&ca_file, ca_pem).unwrap();
    let ca = ca_file.to_str().unwrap();

    let url = format!("{base}/counter/tls?form=b");
    let mut run = lrwatch(&[
        "--json",
        "-n",
        "2",
        "--cacert",
        ca,
        "--transport",
        "multiplex-socket",
        &url,
    ]);
    let first = run.json();
    assert_eq!(
        (first["body"].clone(), first["transport"].clone()),
        (0.into(), "multiplex-socket".into())
    );
    post(&format!("{upstream}/counter/tls"));
    assert_eq!(run.json()["body"], 1, "the change came over wss");
    assert!(run.wait().success());

    // Without the CA, the certificate is not trusted: a clear error, exit 1.
    let mut run = lrwatch(&[&url]);
    assert_eq!(run.wait().code(), Some(1));
    let err = run.stderr_text();
    assert!(
        err.starts_with(&format!("lrwatch: cannot reach {url}: ")) && err.contains("certificate"),
        "{err}"
    );

    // --insecure accepts the untrusted certificate, over https and wss, and says so.
    let mut run = lrwatch(&[
        "--json",
        "-n",
        "1",
        "--insecure",
        "--transport",
        "multiplex-socket",
        &url,
    ]);
    assert_eq!(run.json()["transport"], "multiplex-socket");
    assert!(run.wait().success());
    assert!(run
        .stderr_text()
        .contains("warning: --insecure: TLS certificates are not verified"));

    // A --cacert that is not a certificate is a usage error.
    let mut run = lrwatch(&["--cacert", "/dev/null", &url]);
    assert_eq!(run.wait().code(), Some(2));
    assert!(run.stderr_text().contains("holds no certificate"));
    let _ = std::fs::remove_file(&ca_file);
}
