//! Process-wide set-up: the TLS crypto provider and logging.

use std::sync::Once;

/// Installs ring as the one rustls crypto provider of the process. Every TLS client (kube,
/// reqwest) uses it; calling this more than once is harmless.
pub fn install_crypto_provider() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // Err only means another provider is installed already, which is then used instead.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Json,
    Text,
}

/// Starts logging to stderr at `level` (an `EnvFilter` directive such as `info` or
/// `xero_operator=debug,kube=info`).
pub fn init_logging(format: LogFormat, level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter_directives(level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only on a terminal: log files and collectors get plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// The log filter for `level`. kube-client logs the whole body of an answer it cannot decode at
/// warning level, which for a Secret is its data: that module is kept to errors unless `level`
/// names it explicitly.
pub fn filter_directives(level: &str) -> String {
    if level.contains("kube_client") {
        level.to_owned()
    } else {
        format!("{level},kube_client::client=error")
    }
}

#[cfg(test)]
mod filter_tests {
    use super::filter_directives;

    #[test]
    fn kube_clients_body_logging_stays_off_unless_asked_for() {
        assert_eq!(filter_directives("info"), "info,kube_client::client=error");
        assert_eq!(
            filter_directives("debug,xero_operator=trace"),
            "debug,xero_operator=trace,kube_client::client=error"
        );
        assert_eq!(filter_directives("kube_client=debug"), "kube_client=debug");
    }
}
