//! `cobble challtestsrv`: the pebble-challtestsrv compatible challenge test server (mock
//! DNS over UDP, TCP and HTTPS, http-01 over HTTP and HTTPS, tls-alpn-01 and the management
//! API) until Ctrl-C/SIGTERM.

use anyhow::Context;
use clap::Args;
use cobble_challtestsrv::{ChalltestConfig, TlsFiles, parse_listen_addr};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;

/// Options of `cobble challtestsrv`; addresses take pebble-challtestsrv's forms (`:8053`,
/// `127.0.0.1:8053`, `[::1]:8053`), and an empty address turns that listener off.
#[derive(Args, Debug)]
pub struct ChalltestsrvArgs {
    /// Mock DNS server address, UDP and TCP (`:PORT` is every IPv4 interface).
    #[arg(
        long,
        alias = "dnsserver",
        value_name = "ADDR",
        default_value = ":8053"
    )]
    dns01: String,
    /// http-01 responder address.
    #[arg(long, value_name = "ADDR", default_value = ":5002")]
    http01: String,
    /// http-01 responder over HTTPS (self-signed certificate), the target of http-01
    /// redirects to https.
    #[arg(long, value_name = "ADDR", default_value = ":5003")]
    https01: String,
    /// DNS over HTTPS (RFC 8484, GET and POST, any path) answering from the mock records;
    /// off by default (pebble-challtestsrv serves it only with a certificate).
    #[arg(long, value_name = "ADDR", default_value = "")]
    doh: String,
    /// PEM certificate chain of the DoH listener; without it a self-signed one is made.
    #[arg(long, value_name = "FILE", requires = "doh_cert_key")]
    doh_cert: Option<PathBuf>,
    /// PEM private key of `--doh-cert`.
    #[arg(long, value_name = "FILE", requires = "doh_cert")]
    doh_cert_key: Option<PathBuf>,
    /// tls-alpn-01 responder address.
    #[arg(long, value_name = "ADDR", default_value = ":5001")]
    tlsalpn01: String,
    /// Management API address (plain HTTP, pebble-challtestsrv's endpoints).
    #[arg(long, value_name = "ADDR", default_value = ":8055")]
    management: String,
    /// A answer for names without A records; empty for none.
    #[arg(
        long,
        alias = "defaultIPv4",
        value_name = "IP",
        default_value = "127.0.0.1"
    )]
    default_ipv4: String,
    /// AAAA answer for names without AAAA records; empty for none.
    #[arg(long, alias = "defaultIPv6", value_name = "IP", default_value = "::1")]
    default_ipv6: String,
    /// Log filter (tracing EnvFilter syntax), e.g. `info`, `cobble_challtestsrv=debug`.
    #[arg(long, env = "COBBLE_LOG", default_value = "info")]
    log: String,
}

impl ChalltestsrvArgs {
    /// The library configuration these flags describe.
    fn config(&self) -> anyhow::Result<ChalltestConfig> {
        let addr = |flag: &str, v: &str| parse_listen_addr(v).with_context(|| format!("--{flag}"));
        Ok(ChalltestConfig {
            dns01: addr("dns01", &self.dns01)?,
            http01: addr("http01", &self.http01)?,
            https01: addr("https01", &self.https01)?,
            doh: addr("doh", &self.doh)?,
            doh_tls: self
                .doh_cert
                .clone()
                .zip(self.doh_cert_key.clone())
                .map(|(cert, key)| TlsFiles { cert, key }),
            tlsalpn01: addr("tlsalpn01", &self.tlsalpn01)?,
            management: addr("management", &self.management)?,
            default_ipv4: optional_ip::<Ipv4Addr>("default-ipv4", &self.default_ipv4)?,
            default_ipv6: optional_ip::<Ipv6Addr>("default-ipv6", &self.default_ipv6)?,
        })
    }
}

fn optional_ip<T>(flag: &str, v: &str) -> anyhow::Result<Option<T>>
where
    T: std::str::FromStr,
    T::Err: std::error::Error + Send + Sync + 'static,
{
    let v = v.trim();
    if v.is_empty() {
        return Ok(None);
    }
    Ok(Some(v.parse().with_context(|| format!("--{flag} {v:?}"))?))
}

/// Starts the listeners, prints them, and serves until Ctrl-C/SIGTERM.
pub async fn run(args: ChalltestsrvArgs) -> anyhow::Result<()> {
    let cfg = args.config()?;
    serve(cfg, &args.log, false).await
}

/// Serves `cfg` with logs filtered by `log` until Ctrl-C/SIGTERM (also the
/// `pebble-challtestsrv` drop-in's way). With `tolerant` (the drop-in), a listener whose
/// address is in use is logged and left out while the others serve, as pebble-challtestsrv
/// does; otherwise it is fatal.
pub async fn serve(cfg: ChalltestConfig, log: &str, tolerant: bool) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        // Colours only on a terminal: a log file or a pipe gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(tracing_subscriber::EnvFilter::try_new(log).context("log filter")?)
        .with_writer(std::io::stderr)
        .init();
    let running = if tolerant {
        cobble_challtestsrv::start_tolerant(cfg.clone()).await?
    } else {
        cobble_challtestsrv::start(cfg.clone()).await?
    };
    let show = |a: Option<SocketAddr>| a.map_or_else(|| "off".to_owned(), |a| a.to_string());
    let show_ip = |ip: Option<String>| ip.unwrap_or_else(|| "none".to_owned());
    println!("Cobble challtestsrv {} is ready", env!("CARGO_PKG_VERSION"));
    println!("  dns01 (udp+tcp): {}", show(running.dns01_addr()));
    println!("  http01:          {}", show(running.http01_addr()));
    println!("  https01:         {}", show(running.https01_addr()));
    println!("  doh:             {}", show(running.doh_addr()));
    println!("  tlsalpn01:       {}", show(running.tlsalpn01_addr()));
    println!("  management:      {}", show(running.management_addr()));
    println!(
        "  default A:       {}",
        show_ip(cfg.default_ipv4.map(|i| i.to_string()))
    );
    println!(
        "  default AAAA:    {}",
        show_ip(cfg.default_ipv6.map(|i| i.to_string()))
    );
    for why in running.skipped() {
        println!("  not listening:   {why}");
    }
    shutdown_signal().await;
    tracing::info!("shutting down");
    running.shutdown().await;
    Ok(())
}

pub(crate) async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: ChalltestsrvArgs,
    }

    fn parse(argv: &[&str]) -> anyhow::Result<ChalltestConfig> {
        let cli = Cli::try_parse_from(std::iter::once("t").chain(argv.iter().copied()))?;
        cli.args.config()
    }

    #[test]
    fn defaults_are_pebble_challtestsrv_s() {
        assert_eq!(parse(&[]).unwrap(), ChalltestConfig::default());
    }

    #[test]
    fn flags_and_pebble_forms() {
        let c = parse(&[
            "--dnsserver",
            "127.0.0.1:0",
            "--http01",
            "",
            "--tlsalpn01",
            "[::1]:5001",
            "--https01",
            "",
            "--doh",
            "127.0.0.1:8443",
            "--doh-cert",
            "c.pem",
            "--doh-cert-key",
            "k.pem",
            "--management",
            ":9055",
            "--defaultIPv4",
            "",
            "--default-ipv6",
            "2001:db8::1",
        ])
        .unwrap();
        assert_eq!(c.dns01, Some("127.0.0.1:0".parse().unwrap()));
        assert_eq!(c.http01, None);
        assert_eq!(c.tlsalpn01, Some("[::1]:5001".parse().unwrap()));
        assert_eq!(c.https01, None);
        assert_eq!(c.doh, Some("127.0.0.1:8443".parse().unwrap()));
        assert_eq!(
            c.doh_tls,
            Some(TlsFiles {
                cert: "c.pem".into(),
                key: "k.pem".into()
            })
        );
        assert_eq!(c.management, Some("0.0.0.0:9055".parse().unwrap()));
        assert_eq!(c.default_ipv4, None);
        assert_eq!(c.default_ipv6, Some("2001:db8::1".parse().unwrap()));
        assert!(parse(&["--default-ipv4", "::1"]).is_err());
        assert!(parse(&["--dns01", "nonsense"]).is_err());
        // A DoH certificate needs its key and the other way round.
        assert!(parse(&["--doh", ":8443", "--doh-cert", "c.pem"]).is_err());
        assert!(parse(&["--doh-cert-key", "k.pem"]).is_err());
    }
}
