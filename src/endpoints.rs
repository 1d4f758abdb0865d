//! Base URLs of the services the operator calls, per cloud, overridable by flags and environment
//! variables (national clouds, proxies, the simulator in tests).

use std::net::IpAddr;

use reqwest::Url;

use crate::error::ClientError;

/// The Microsoft cloud the Power BI tenant lives in. Xero has one cloud.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, clap::ValueEnum)]
pub enum Cloud {
    /// The public (commercial) cloud.
    #[default]
    Public,
    /// US Government Community Cloud (GCC).
    #[value(name = "usgov")]
    UsGov,
    /// US Government Community Cloud High.
    #[value(name = "usgovhigh")]
    UsGovHigh,
    /// US Department of Defense.
    #[value(name = "usgovdod")]
    UsGovDod,
    /// Power BI operated by 21Vianet in China.
    China,
}

impl From<crate::api::PowerBiCloud> for Cloud {
    fn from(cloud: crate::api::PowerBiCloud) -> Self {
        use crate::api::PowerBiCloud as Spec;
        match cloud {
            Spec::Public => Self::Public,
            Spec::UsGov => Self::UsGov,
            Spec::UsGovHigh => Self::UsGovHigh,
            Spec::UsGovDod => Self::UsGovDod,
            Spec::China => Self::China,
        }
    }
}

impl Cloud {
    /// The settings page of a dataset in the Power BI service, where a person edits its data
    /// source credentials, takes it over and checks its schedule.
    pub fn dataset_settings_url(self, workspace_id: &str, dataset_id: &str) -> String {
        let portal = match self {
            Self::Public => "https://app.powerbi.com",
            Self::UsGov => "https://app.powerbigov.us",
            Self::UsGovHigh => "https://app.high.powerbigov.us",
            Self::UsGovDod => "https://app.mil.powerbigov.us",
            Self::China => "https://app.powerbi.cn",
        };
        format!("{portal}/groups/{workspace_id}/settings/datasets/{dataset_id}")
    }

    /// The Power BI REST API host (the part before `/v1.0/myorg`).
    pub fn powerbi_api_url(self) -> &'static str {
        match self {
            Self::Public => "https://api.powerbi.com/",
            Self::UsGov => "https://api.powerbigov.us/",
            Self::UsGovHigh => "https://api.high.powerbigov.us/",
            Self::UsGovDod => "https://api.mil.powerbigov.us/",
            Self::China => "https://api.powerbi.cn/",
        }
    }

    /// The Microsoft Entra ID authority host (the part before `{tenant}/oauth2/v2.0/token`).
    pub fn authority_host(self) -> &'static str {
        match self {
            Self::Public | Self::UsGov => "https://login.microsoftonline.com/",
            Self::UsGovHigh | Self::UsGovDod => "https://login.microsoftonline.us/",
            Self::China => "https://login.chinacloudapi.cn/",
        }
    }

    /// The OAuth2 scope of a Power BI access token in this cloud.
    pub fn powerbi_scope(self) -> &'static str {
        match self {
            Self::Public => "https://analysis.windows.net/powerbi/api/.default",
            Self::UsGov => "https://analysis.usgovcloudapi.net/powerbi/api/.default",
            Self::UsGovHigh => "https://high.analysis.usgovcloudapi.net/powerbi/api/.default",
            Self::UsGovDod => "https://mil.analysis.usgovcloudapi.net/powerbi/api/.default",
            Self::China => "https://analysis.chinacloudapi.cn/powerbi/api/.default",
        }
    }
}

/// Xero's identity service (token endpoint).
pub const XERO_IDENTITY_URL: &str = "https://identity.xero.com/";
/// Xero's API host (connections).
pub const XERO_API_URL: &str = "https://api.xero.com/";

/// Endpoint flags of the `run` command; flatten into it with `#[command(flatten)]`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Endpoints {
    /// Microsoft cloud of the Power BI tenant; picks the default Power BI and Entra ID URLs.
    #[arg(long, env = "XERO_OPERATOR_CLOUD", value_enum, default_value_t = Cloud::Public)]
    pub cloud: Cloud,
    /// Power BI REST API base URL (without `/v1.0/myorg`). Default: the cloud's.
    #[arg(long, env = "XERO_OPERATOR_POWERBI_API_URL", value_parser = parse_service_url)]
    pub powerbi_api_url: Option<Url>,
    /// Microsoft Entra ID authority host. Default: `AZURE_AUTHORITY_HOST` when workload identity
    /// sets it, else the cloud's.
    #[arg(long, env = "XERO_OPERATOR_AUTHORITY_HOST", value_parser = parse_service_url)]
    pub authority_host: Option<Url>,
    /// Xero identity service base URL (token endpoint at `connect/token`).
    #[arg(long, env = "XERO_OPERATOR_XERO_IDENTITY_URL", value_parser = parse_service_url)]
    pub xero_identity_url: Option<Url>,
    /// Xero API base URL (connections at `connections`).
    #[arg(long, env = "XERO_OPERATOR_XERO_API_URL", value_parser = parse_service_url)]
    pub xero_api_url: Option<Url>,
}

/// The URLs the clients use, resolved from [`Endpoints`] and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceUrls {
    /// Power BI REST API base URL.
    pub powerbi_api: Url,
    /// Microsoft Entra ID authority host.
    pub authority_host: Url,
    /// The OAuth2 scope of Power BI access tokens.
    pub powerbi_scope: String,
    /// Xero identity service base URL.
    pub xero_identity: Url,
    /// Xero API base URL.
    pub xero_api: Url,
}

impl Endpoints {
    /// Every URL pointing at `base` (the simulator in tests and demos).
    pub fn all_at(base: &Url) -> Self {
        Self {
            cloud: Cloud::Public,
            powerbi_api_url: Some(base.clone()),
            authority_host: Some(base.clone()),
            xero_identity_url: Some(base.clone()),
            xero_api_url: Some(base.clone()),
        }
    }

    /// Resolves the URLs: flags first, then `AZURE_AUTHORITY_HOST` for the authority host, then
    /// the cloud's defaults.
    pub fn resolve(&self) -> Result<ServiceUrls, ClientError> {
        self.resolve_with_env(|name| std::env::var(name).ok())
    }

    /// [`Endpoints::resolve`] with an injected environment, for tests.
    pub fn resolve_with_env(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<ServiceUrls, ClientError> {
        let checked = |url: &Url| service_url(url.as_str());
        let pick = |flag: &Option<Url>, default: &str| match flag {
            Some(url) => checked(url),
            None => service_url(default),
        };
        let authority_host = match (&self.authority_host, env("AZURE_AUTHORITY_HOST")) {
            (Some(url), _) => checked(url)?,
            (None, Some(from_env)) if !from_env.trim().is_empty() => service_url(&from_env)?,
            (None, _) => service_url(self.cloud.authority_host())?,
        };
        Ok(ServiceUrls {
            powerbi_api: pick(&self.powerbi_api_url, self.cloud.powerbi_api_url())?,
            authority_host,
            powerbi_scope: self.cloud.powerbi_scope().to_owned(),
            xero_identity: pick(&self.xero_identity_url, XERO_IDENTITY_URL)?,
            xero_api: pick(&self.xero_api_url, XERO_API_URL)?,
        })
    }
}

/// Parses a service base URL: https, or plain http to a loopback address only (tokens and
/// secrets must not cross a network in clear text). The path gets a trailing slash so that
/// relative paths append to it.
pub fn service_url(text: &str) -> Result<Url, ClientError> {
    parse_service_url(text).map_err(ClientError::invalid_endpoint)
}

/// [`service_url`] for clap's `value_parser`.
fn parse_service_url(text: &str) -> Result<Url, String> {
    let mut url =
        Url::parse(text.trim()).map_err(|error| format!("{text:?} is not a URL: {error}"))?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => {
            return Err(format!(
                "{text:?} uses plain http to a host that is not loopback; use https"
            ));
        }
        other => return Err(format!("{text:?} has scheme {other:?}; use https")),
    }
    if url.host().is_none() {
        return Err(format!("{text:?} has no host"));
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(format!(
            "{text:?} must not carry a query, fragment or user information"
        ));
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

/// `base` with `segments` appended as path segments (percent-encoded as needed).
pub(crate) fn join(base: &Url, segments: &[&str]) -> Result<Url, ClientError> {
    let mut url = base.clone();
    url.path_segments_mut()
        .map_err(|()| ClientError::invalid_endpoint(format!("{base} cannot take a path")))?
        .pop_if_empty()
        .extend(segments);
    Ok(url)
}

/// Whether the URL's host is a loopback address or `localhost`.
fn is_loopback(url: &Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    // IPv6 hosts come bracketed.
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => {
            let domain = host.to_ascii_lowercase();
            domain == "localhost" || domain.ends_with(".localhost")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_is_accepted_and_gets_a_trailing_slash() {
        let url = service_url("https://api.powerbi.com").unwrap();
        assert_eq!(url.as_str(), "https://api.powerbi.com/");
        let url = service_url("https://proxy.example.com/powerbi").unwrap();
        assert_eq!(url.as_str(), "https://proxy.example.com/powerbi/");
    }

    #[test]
    fn plain_http_only_to_loopback() {
        for ok in [
            "http://127.0.0.1:8080",
            "http://127.1.2.3/",
            "http://[::1]:9000/",
            "http://localhost:1234",
        ] {
            assert!(service_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://api.powerbi.com",
            "http://10.0.0.1",
            "http://[::2]/",
            "ftp://127.0.0.1",
            "https://user:pw@api.powerbi.com",
            "https://api.powerbi.com/?x=1",
            "not a url",
        ] {
            let error = service_url(bad).unwrap_err();
            assert_eq!(
                error.category(),
                crate::error::ErrorCategory::InvalidEndpoint,
                "{bad}"
            );
        }
    }

    #[test]
    fn flags_win_then_azure_authority_host_then_cloud_defaults() {
        let endpoints = Endpoints {
            cloud: Cloud::UsGovHigh,
            ..Endpoints::default()
        };
        let no_env = |_: &str| None;
        let urls = endpoints.resolve_with_env(no_env).unwrap();
        assert_eq!(urls.powerbi_api.as_str(), "https://api.high.powerbigov.us/");
        assert_eq!(
            urls.authority_host.as_str(),
            "https://login.microsoftonline.us/"
        );
        assert_eq!(urls.xero_identity.as_str(), XERO_IDENTITY_URL);
        assert_eq!(
            urls.powerbi_scope,
            "https://high.analysis.usgovcloudapi.net/powerbi/api/.default"
        );

        let azure = |name: &str| {
            (name == "AZURE_AUTHORITY_HOST").then(|| "https://login.example.com".to_owned())
        };
        let urls = endpoints.resolve_with_env(azure).unwrap();
        assert_eq!(urls.authority_host.as_str(), "https://login.example.com/");

        let base = Url::parse("http://127.0.0.1:4000").unwrap();
        let urls = Endpoints::all_at(&base).resolve_with_env(azure).unwrap();
        assert_eq!(urls.authority_host.as_str(), "http://127.0.0.1:4000/");
        assert_eq!(urls.xero_api.as_str(), "http://127.0.0.1:4000/");
    }

    #[test]
    fn clap_reads_flags_and_checks_them() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            endpoints: Endpoints,
        }
        let cli = Cli::try_parse_from([
            "x",
            "--cloud",
            "china",
            "--powerbi-api-url",
            "http://127.0.0.1:1",
        ])
        .unwrap();
        assert_eq!(cli.endpoints.cloud, Cloud::China);
        assert_eq!(
            cli.endpoints.powerbi_api_url.unwrap().as_str(),
            "http://127.0.0.1:1/"
        );
        assert!(Cli::try_parse_from(["x", "--xero-api-url", "http://example.com"]).is_err());
    }

    #[test]
    fn join_appends_encoded_segments() {
        let base = service_url("https://host/prefix").unwrap();
        let url = join(&base, &["v1.0", "myorg", "groups", "a b"]).unwrap();
        assert_eq!(url.as_str(), "https://host/prefix/v1.0/myorg/groups/a%20b");
    }
}
