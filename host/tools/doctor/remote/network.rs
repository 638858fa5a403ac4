//! The name, the TCP port and TLS: where a run stops when one fails.

use super::*;

pub(super) async fn dns(p: &Probe, report: &mut Report) -> Option<Vec<SocketAddr>> {
    let bare = p.bare_host();
    if let Ok(ip) = bare.parse::<IpAddr>() {
        report.push(Check::pass("dns", format!("{ip} is an address: nothing to resolve")));
        return Some(vec![SocketAddr::new(ip, p.port)]);
    }
    let began = Instant::now();
    let fix =
        "check the DNS record (usually a CNAME to the platform's host name) and that the domain is attached to the app";
    match tokio::time::timeout(TIMEOUT, tokio::net::lookup_host((bare, p.port))).await {
        Ok(Ok(addrs)) => {
            let addrs: Vec<SocketAddr> = addrs.collect();
            let shown: Vec<String> = addrs.iter().map(|a| a.ip().to_string()).collect();
            report.push(Check::pass(
                "dns",
                format!("{bare} → {} ({} ms)", shown.join(", "), began.elapsed().as_millis()),
            ));
            Some(addrs)
        }
        Ok(Err(e)) => {
            report.push(Check::fail("dns", format!("{bare} does not resolve: {e}"), fix));
            None
        }
        Err(_) => {
            report.push(Check::fail("dns", format!("no answer for {bare} in {} s", TIMEOUT.as_secs()), fix));
            None
        }
    }
}

pub(super) async fn connect(p: &Probe, addrs: &[SocketAddr], report: &mut Report) -> Option<TcpStream> {
    let began = Instant::now();
    let mut errors = Vec::new();
    for addr in addrs {
        match tokio::time::timeout(TIMEOUT, TcpStream::connect(addr)).await {
            Ok(Ok(tcp)) => {
                report.push(Check::pass("tcp", format!("connected to {addr} in {} ms", began.elapsed().as_millis())));
                return Some(tcp);
            }
            Ok(Err(e)) => errors.push((addr, e.kind(), e.to_string())),
            Err(_) => {
                errors.push((addr, std::io::ErrorKind::TimedOut, format!("no answer in {} s", TIMEOUT.as_secs())))
            }
        }
    }
    let refused = errors.iter().any(|(_, kind, _)| *kind == std::io::ErrorKind::ConnectionRefused);
    let evidence: Vec<String> = errors.iter().map(|(addr, _, e)| format!("{addr}: {e}")).collect();
    let fix = if refused {
        format!(
            "nothing listens on port {}: the server runs on another port, or not at all. hotline listens on $PORT \
             (HOTLINE_BIND 0.0.0.0); check the platform's internal port and `hotline doctor --local` on the box",
            p.port
        )
    } else {
        "a firewall or security group drops the port, or the address is not this service's".to_string()
    };
    report.push(Check::fail("tcp", evidence.join("; "), fix));
    None
}

/// The TLS handshake on the connected socket, with the same roots the
/// providers' clients trust; the certificate's remaining days.
pub(super) async fn tls(p: &Probe, tcp: TcpStream, report: &mut Report) -> bool {
    if !p.https {
        if p.plain_loopback {
            report.push(Check::skip("tls", "plain http on this machine: no TLS to check (a deployment is https://)"));
        } else {
            report.push(Check::warn(
                "tls",
                "plain http: Twilio's streams are wss:// and its console asks for https:// webhooks",
                "serve https (the platform's TLS, or a terminating proxy) and run doctor against the https:// URL",
            ));
        }
        return true;
    }
    let bare = p.bare_host().to_string();
    let Ok(name) = rustls_pki_types::ServerName::try_from(bare.clone()) else {
        report.push(Check::fail(
            "tls",
            format!("{bare} is not a TLS server name"),
            "use the host name the certificate names",
        ));
        return false;
    };
    let connector = tokio_rustls::TlsConnector::from(p.tls.clone());
    let conn = match tokio::time::timeout(TIMEOUT, connector.connect(name, tcp)).await {
        Err(_) => {
            report.push(Check::fail(
                "tls",
                format!("no TLS handshake in {} s", TIMEOUT.as_secs()),
                "the port does not speak TLS (plain http? use http://) or the proxy hangs",
            ));
            return false;
        }
        Ok(Err(e)) => {
            let rustls = e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>());
            report.push(Check::fail("tls", format!("handshake failed: {e}"), tls_fix(rustls, &bare)));
            return false;
        }
        Ok(Ok(conn)) => conn,
    };
    let (_, session) = conn.get_ref();
    let protocol = session.protocol_version().map(|v| format!("{v:?}")).unwrap_or_default();
    let leaf = session.peer_certificates().and_then(|c| c.first()).map(|c| c.as_ref().to_vec());
    let parsed = leaf.as_deref().and_then(|der| x509_parser::parse_x509_certificate(der).ok());
    let Some((_, cert)) = parsed else {
        report.push(Check::pass("tls", format!("{protocol}, certificate verified (its dates could not be read)")));
        return true;
    };
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    let days = (cert.validity().not_after.timestamp() - now) / 86_400;
    let evidence = format!(
        "{protocol}, certificate for {bare} verified, {days} days left (until {}), issuer {}",
        cert.validity().not_after,
        cert.issuer()
    );
    if days < CERT_WARN_DAYS {
        report.push(Check::warn(
            "tls",
            evidence,
            "renew the certificate soon (is the platform's automatic renewal failing?)",
        ));
    } else {
        report.push(Check::pass("tls", evidence));
    }
    true
}

fn tls_fix(error: Option<&rustls::Error>, host: &str) -> String {
    use rustls::CertificateError as C;
    match error {
        Some(rustls::Error::InvalidCertificate(C::Expired | C::ExpiredContext { .. })) => {
            "the certificate has expired: renew it (is the platform's automatic renewal failing?)".into()
        }
        Some(rustls::Error::InvalidCertificate(C::NotValidForName | C::NotValidForNameContext { .. })) => {
            format!("the certificate does not name {host}: attach the domain to the platform, or issue one for it")
        }
        Some(rustls::Error::InvalidCertificate(C::UnknownIssuer)) => {
            "an issuer nobody trusts: a self-signed certificate or a missing intermediate; serve the full chain \
             (for a private CA, HOTLINE_PROVIDER_CA_FILE)"
                .into()
        }
        Some(rustls::Error::InvalidMessage(_)) => {
            "the port does not speak TLS: plain http? use http:// or the TLS port".into()
        }
        _ => "check the TLS termination in front of the server (certificate, chain, protocol versions)".into(),
    }
}
