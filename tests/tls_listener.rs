//! TLS termination with real handshakes: curl (OpenSSL) and a rustls client against the TLS
//! listener, certificates chosen by SNI, ALPN to HTTP/2, and certificate files swapped under
//! load the way a Kubernetes Secret mount swaps them.

mod support;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use support::recording::RecordingUpstream;
use support::tls::TestCerts;
use support::*;

fn tls_config(upstream: &str, certificates: &[(&Path, &Path)], extra: &str) -> String {
    let certificates: Vec<String> = certificates
        .iter()
        .map(|(c, k)| {
            format!(
                "{{ cert_file = \"{}\", key_file = \"{}\" }}",
                c.display(),
                k.display()
            )
        })
        .collect();
    format!(
        r#"
[server]
listen = ["127.0.0.1:0"]
admin_listen = "127.0.0.1:0"

[server.tls]
listen = ["127.0.0.1:0"]
certificates = [{}]
{extra}

[[routes]]
prefix = "/"
upstream = "{upstream}"
policy = "public"
"#,
        certificates.join(", ")
    )
}

async fn tls_gateway(toml: &str) -> (TestGateway, std::net::SocketAddr) {
    let gw = spawn_gateway(toml).await;
    let tls = gw.running.as_ref().unwrap().tls_addrs[0];
    (gw, tls)
}

/// Runs curl; returns (stdout, stderr).
fn curl(args: &[&str]) -> (String, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10"])
        .args(args)
        .output()
        .expect("curl runs");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A rustls client trusting the test CA, offering `alpn`.
fn client_config(ca: &Path, alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
    let mut config = (*support::tls::client_config(ca, None)).clone();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    // A full handshake every time: a resumed session would not show the certificate now served.
    config.resumption = rustls::client::Resumption::disabled();
    Arc::new(config)
}

/// Connects with `sni`; returns the stream, the certificate the server chose and the ALPN.
async fn handshake(
    addr: std::net::SocketAddr,
    config: Arc<rustls::ClientConfig>,
    sni: &str,
) -> std::io::Result<(
    tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    Vec<u8>,
    Option<Vec<u8>>,
)> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = ServerName::try_from(sni.to_owned()).unwrap();
    let tls = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await?;
    let (_, session) = tls.get_ref();
    let leaf = session.peer_certificates().unwrap()[0].as_ref().to_vec();
    let alpn = session.alpn_protocol().map(<[u8]>::to_vec);
    Ok((tls, leaf, alpn))
}

fn der_of(pem: &Path) -> Vec<u8> {
    CertificateDer::from_pem_file(pem)
        .unwrap()
        .as_ref()
        .to_vec()
}

/// One GET over a fresh TLS connection (HTTP/1.1 or, when negotiated, HTTP/2): its status.
async fn get_over_tls(
    addr: std::net::SocketAddr,
    config: Arc<rustls::ClientConfig>,
    sni: &str,
) -> Result<(u16, Vec<u8>), String> {
    let (tls, leaf, alpn) = handshake(addr, config, sni)
        .await
        .map_err(|e| e.to_string())?;
    let io = hyper_util::rt::TokioIo::new(tls);
    let request = http::Request::get(format!("https://{sni}/x"))
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = if alpn.as_deref() == Some(b"h2") {
        let (mut sender, conn) =
            hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
                .await
                .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        sender.send_request(request).await
    } else {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        sender.send_request(request).await
    }
    .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?;
    Ok((status, leaf))
}

// Multi-threaded: curl runs as a blocking child process while the gateway serves in-process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_negotiates_tls13_tls12_h2_and_http11_and_the_upstream_learns_it_was_https() {
    if !has_curl() {
        return;
    }
    let certs = TestCerts::generate();
    let upstream = RecordingUpstream::start().await;
    let (_gw, tls) = tls_gateway(&tls_config(
        &upstream.url(),
        &[(&certs.cert_file, &certs.key_file)],
        "",
    ))
    .await;
    let url = format!("https://localhost:{}/x", tls.port());
    let ca = certs.ca_file.to_str().unwrap();
    let resolve = format!("localhost:{}:127.0.0.1", tls.port());
    let write_out = "%{http_code} %{http_version} %{ssl_verify_result}";
    for (flags, want_version, want_tls) in [
        (&["--http2", "--tlsv1.3"][..], "2", "TLSv1.3"),
        (&["--http1.1", "--tlsv1.3"][..], "1.1", "TLSv1.3"),
        (
            &["--http2", "--tlsv1.2", "--tls-max", "1.2"][..],
            "2",
            "TLSv1.2",
        ),
        (
            &["--http1.1", "--tlsv1.2", "--tls-max", "1.2"][..],
            "1.1",
            "TLSv1.2",
        ),
    ] {
        let mut args = vec!["-v", "--cacert", ca, "--resolve", &resolve];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["-o", "/dev/null", "-w", write_out, &url]);
        let (out, err) = curl(&args);
        assert_eq!(
            out,
            format!("200 {want_version} 0"),
            "curl {flags:?}: {err}"
        );
        assert!(
            err.contains(&format!("SSL connection using {want_tls}")),
            "{flags:?}: {err}"
        );
    }
    let raw = upstream.raw().to_ascii_lowercase();
    assert!(raw.contains("x-forwarded-proto: https\r\n"), "{raw}");
    assert!(!raw.contains("x-forwarded-proto: http\r\n"), "{raw}");

    // TLS 1.1 and plain HTTP on the TLS port are refused, and counted.
    let (out, err) = curl(&[
        "--cacert",
        ca,
        "--resolve",
        &resolve,
        "--tlsv1.1",
        "--tls-max",
        "1.1",
        &url,
    ]);
    assert!(out.is_empty() && !err.is_empty(), "{out}");
    let (out, _) = curl(&[&format!("http://127.0.0.1:{}/x", tls.port())]);
    assert!(!out.contains("200"), "{out}");
}

#[tokio::test]
async fn sni_picks_the_certificate_for_the_name_and_alpn_carries_http2() {
    let certs = TestCerts::generate();
    let ed25519 = std::fs::read_to_string(key_path("ed25519.key")).unwrap();
    let rsa = std::fs::read_to_string(key_path("rsa.key")).unwrap();
    let (api_cert, api_key) = certs.issue("api", &["api.example.test"], None, Some(&ed25519));
    let (wild_cert, wild_key) = certs.issue("wild", &["*.wild.test"], None, Some(&rsa));
    let upstream = RecordingUpstream::start().await;
    let (_gw, tls) = tls_gateway(&tls_config(
        &upstream.url(),
        &[
            (&certs.cert_file, &certs.key_file),
            (&api_cert, &api_key),
            (&wild_cert, &wild_key),
        ],
        "",
    ))
    .await;
    let h2 = client_config(&certs.ca_file, &[b"h2", b"http/1.1"]);
    let h1 = client_config(&certs.ca_file, &[b"http/1.1"]);
    for (sni, cert, config, alpn) in [
        ("localhost", &certs.cert_file, &h2, &b"h2"[..]),
        ("api.example.test", &api_cert, &h2, b"h2"),
        ("API.Example.Test", &api_cert, &h1, b"http/1.1"),
        ("svc.wild.test", &wild_cert, &h2, b"h2"),
    ] {
        let (_, leaf, negotiated) = handshake(tls, config.clone(), sni).await.unwrap();
        assert_eq!(leaf, der_of(cert), "{sni}");
        assert_eq!(negotiated.as_deref(), Some(alpn), "{sni}");
        let (status, _) = get_over_tls(tls, config.clone(), sni).await.unwrap();
        assert_eq!(status, 200, "{sni}");
    }
    // A name no certificate holds gets the first one, which the client then refuses.
    let refused = handshake(tls, h2.clone(), "other.example.test").await;
    assert!(
        refused.is_err(),
        "the default certificate is not valid for it"
    );
    assert!(
        upstream
            .request_lines()
            .iter()
            .all(|line| line == "GET /x HTTP/1.1"),
        "HTTP/2 from the client, HTTP/1.1 to the upstream: {:?}",
        upstream.request_lines()
    );
}

/// Points `link` at `target` atomically, the way a Kubernetes Secret mount swaps `..data`.
fn swap_symlink(link: &Path, target: &Path) {
    let temporary = link.parent().unwrap().join(".swap-in-progress");
    let _ = std::fs::remove_file(&temporary);
    std::os::unix::fs::symlink(target, &temporary).unwrap();
    std::fs::rename(&temporary, link).unwrap();
}

#[tokio::test]
async fn certificates_swapped_under_load_serve_at_once_without_a_failed_request() {
    let certs = TestCerts::generate();
    let mount = tempfile::tempdir().unwrap();
    let generation = |n: usize, key: Option<&str>| {
        let (cert, k) = certs.issue(&format!("gen{n}"), &["localhost"], None, key);
        let dir = mount.path().join(format!("..gen{n}"));
        std::fs::create_dir(&dir).unwrap();
        std::fs::copy(&cert, dir.join("tls.crt")).unwrap();
        std::fs::copy(&k, dir.join("tls.key")).unwrap();
        (dir, cert)
    };
    let (first_dir, first_cert) = generation(1, None);
    let data = mount.path().join("..data");
    swap_symlink(&data, &first_dir);
    let (cert_file, key_file) = (mount.path().join("tls.crt"), mount.path().join("tls.key"));
    std::os::unix::fs::symlink("..data/tls.crt", &cert_file).unwrap();
    std::os::unix::fs::symlink("..data/tls.key", &key_file).unwrap();
    let upstream = RecordingUpstream::start().await;
    let (gw, tls) = tls_gateway(&tls_config(&upstream.url(), &[(&cert_file, &key_file)], "")).await;
    let config = client_config(&certs.ca_file, &[b"http/1.1"]);

    // Clients keep opening connections (a full handshake each) through both swaps.
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (stop, ok, failed, config) =
                (stop.clone(), ok.clone(), failed.clone(), config.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    match get_over_tls(tls, config.clone(), "localhost").await {
                        Ok((200, _)) => ok.fetch_add(1, Ordering::Relaxed),
                        other => {
                            eprintln!("failed: {other:?}");
                            failed.fetch_add(1, Ordering::Relaxed)
                        }
                    };
                }
            })
        })
        .collect();
    let until_served = |cert: std::path::PathBuf| {
        let config = config.clone();
        async move {
            within(async {
                loop {
                    let (_, leaf) = get_over_tls(tls, config.clone(), "localhost")
                        .await
                        .unwrap();
                    if leaf == der_of(&cert) {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            })
            .await
        }
    };
    until_served(first_cert).await;

    let (second_dir, second_cert) = generation(2, None);
    swap_symlink(&data, &second_dir);

    until_served(second_cert.clone()).await;

    // A broken certificate is refused; the one serving stays.
    let broken = mount.path().join("..broken");
    std::fs::create_dir(&broken).unwrap();
    std::fs::write(
        broken.join("tls.crt"),
        "-----BEGIN CERTIFICATE-----\nnot base64\n",
    )
    .unwrap();
    std::fs::copy(second_dir.join("tls.key"), broken.join("tls.key")).unwrap();
    swap_symlink(&data, &broken);
    let metrics_url = format!("http://{}/metrics", gw.admin.unwrap());
    within(async {
        loop {
            let text = get(&metrics_url, &[]).await.text();
            if scrape_value(&text, "tollgate_tls_reloads_total{result=\"failure\"}") == Some(1.0) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.unwrap();
    }
    let (_, leaf) = get_over_tls(tls, config.clone(), "localhost")
        .await
        .unwrap();
    assert_eq!(
        leaf,
        der_of(&second_cert),
        "the last good certificate serves"
    );
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    eprintln!("{ok} requests over fresh TLS connections during two swaps, {failed} failed");
    assert_eq!(failed, 0);
    assert!(ok > 20, "{ok}");
    let text = get(&metrics_url, &[]).await.text();
    assert!(
        scrape_value(&text, "tollgate_tls_reloads_total{result=\"success\"}")
            .is_some_and(|n| n >= 1.0),
        "{text}"
    );
}

#[test]
fn check_names_the_certificate_and_key_that_do_not_belong_together() {
    let certs = TestCerts::generate();
    let (other_cert, _) = certs.issue("other", &["other.test"], None, None);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tollgate.toml");
    let check = |toml: &str| {
        std::fs::write(&path, toml).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .args(["check", "--config"])
            .arg(&path)
            .env_remove("TOLLGATE_CONFIG")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = check(&tls_config("echo", &[(&other_cert, &certs.key_file)], ""));
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "server.tls.certificates[0].key_file: key_file {}: is not the key of the certificate in {}",
            certs.key_file.display(),
            other_cert.display()
        )),
        "{err}"
    );
    let (code, err) = check(&tls_config(
        "echo",
        &[(Path::new("/nonexistent/tls.crt"), &certs.key_file)],
        "",
    ));
    assert_eq!(code, Some(2));
    assert!(
        err.contains("server.tls.certificates[0].cert_file: cert_file /nonexistent/tls.crt:"),
        "{err}"
    );
    let (code, err) = check(&tls_config(
        "echo",
        &[(&certs.cert_file, &certs.key_file)],
        "client_auth = \"require\"\nclient_ca_file = \"/nonexistent/ca.pem\"",
    ));
    assert_eq!(code, Some(2));
    assert!(
        err.contains("server.tls.client_ca_file: cannot read \"/nonexistent/ca.pem\""),
        "{err}"
    );
    let (code, err) = check(&tls_config(
        "echo",
        &[(&certs.cert_file, &certs.key_file)],
        "",
    ));
    assert_eq!(code, Some(0), "{err}");
}
