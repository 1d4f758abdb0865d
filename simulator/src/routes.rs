//! Maps request paths to the service and operation they address. Literal segments match
//! case-insensitively (Xero itself is called both as `/Connections` and `/connections`).

/// Which service a path belongs to; decides the error shape of faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// Microsoft Entra ID.
    Entra,
    /// Power BI REST API.
    PowerBi,
    /// Xero identity (`/connect/...`).
    XeroIdentity,
    /// Xero API (`/connections`).
    XeroApi,
    /// The simulator's own `/_sim` API.
    Admin,
}

impl Service {
    /// Name used in the request log.
    pub fn name(self) -> &'static str {
        match self {
            Self::Entra => "entra",
            Self::PowerBi => "powerbi",
            Self::XeroIdentity => "xero-identity",
            Self::XeroApi => "xero-api",
            Self::Admin => "admin",
        }
    }
}

/// A Power BI operation's path, with its ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PowerBiPath {
    /// `/groups/{group}/datasets`
    Datasets { group: String },
    /// `/groups/{group}/datasets/{dataset}`
    Dataset { group: String, dataset: String },
    /// `/groups/{group}/datasets/{dataset}/refreshes`
    Refreshes { group: String, dataset: String },
    /// `/groups/{group}/datasets/{dataset}/refreshSchedule`
    Schedule { group: String, dataset: String },
    /// `/groups/{group}/datasets/{dataset}/datasources`
    Datasources { group: String, dataset: String },
    /// `/groups/{group}/datasets/{dataset}/Default.TakeOver`
    TakeOver { group: String, dataset: String },
    /// `/gateways/{gateway}`
    Gateway { gateway: String },
    /// `/gateways/{gateway}/datasources/{datasource}`
    GatewayDatasource { gateway: String, datasource: String },
}

/// An admin API path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminPath {
    /// `/_sim/state`
    State,
    /// `/_sim/seed`
    Seed,
    /// `/_sim/datasets/{dataset}/scheduled-refresh`
    ScheduledRefresh(String),
    /// `/_sim/datasets/{dataset}/failing-refreshes`
    FailingRefreshes(String),
    /// `/_sim/faults`
    Faults,
    /// `/_sim/requests`
    Requests,
    /// `/_sim/xero/revoke`
    XeroRevoke,
    /// `/_sim/clock`
    Clock,
    /// `/_sim/clock/advance`
    ClockAdvance,
}

/// What a path addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/{tenant}/oauth2/v2.0/token`
    EntraToken(String),
    /// `/v1.0/myorg/...`
    PowerBi(PowerBiPath),
    /// `/connect/token`
    XeroToken,
    /// `/connect/authorize` (also `/identity/connect/authorize`, as on login.xero.com)
    XeroAuthorize,
    /// `/connect/revocation`
    XeroRevocation,
    /// `/connections`
    XeroConnections,
    /// `/connections/{id}`
    XeroConnection(String),
    /// `/api.xro/2.0/Organisation`
    XeroOrganisation,
    /// `/_sim/...`
    Admin(AdminPath),
    /// Anything else.
    Unknown,
}

impl Route {
    /// Parses a request path (without query).
    pub fn parse(path: &str) -> Self {
        let trimmed = path.strip_prefix('/').unwrap_or(path);
        let trimmed = trimmed.strip_suffix('/').unwrap_or(trimmed);
        let raw: Vec<&str> = trimmed.split('/').collect();
        if raw.iter().any(|s| s.is_empty()) {
            return Self::Unknown;
        }
        let lower: Vec<String> = raw.iter().map(|s| s.to_ascii_lowercase()).collect();
        let l: Vec<&str> = lower.iter().map(String::as_str).collect();
        let id = |i: usize| raw[i].to_owned();
        let ds = |kind: fn(String, String) -> PowerBiPath| Self::PowerBi(kind(id(3), id(5)));
        match l.as_slice() {
            [_, "oauth2", "v2.0", "token"] => Self::EntraToken(id(0)),
            ["v1.0", "myorg", "groups", _, "datasets"] => {
                Self::PowerBi(PowerBiPath::Datasets { group: id(3) })
            }
            ["v1.0", "myorg", "groups", _, "datasets", _] => {
                ds(|group, dataset| PowerBiPath::Dataset { group, dataset })
            }
            ["v1.0", "myorg", "groups", _, "datasets", _, "refreshes"] => {
                ds(|group, dataset| PowerBiPath::Refreshes { group, dataset })
            }
            [
                "v1.0",
                "myorg",
                "groups",
                _,
                "datasets",
                _,
                "refreshschedule",
            ] => ds(|group, dataset| PowerBiPath::Schedule { group, dataset }),
            ["v1.0", "myorg", "groups", _, "datasets", _, "datasources"] => {
                ds(|group, dataset| PowerBiPath::Datasources { group, dataset })
            }
            [
                "v1.0",
                "myorg",
                "groups",
                _,
                "datasets",
                _,
                "default.takeover",
            ] => ds(|group, dataset| PowerBiPath::TakeOver { group, dataset }),
            ["v1.0", "myorg", "gateways", _] => {
                Self::PowerBi(PowerBiPath::Gateway { gateway: id(3) })
            }
            ["v1.0", "myorg", "gateways", _, "datasources", _] => {
                Self::PowerBi(PowerBiPath::GatewayDatasource {
                    gateway: id(3),
                    datasource: id(5),
                })
            }
            ["connect", "token"] => Self::XeroToken,
            ["connect", "authorize"] | ["identity", "connect", "authorize"] => Self::XeroAuthorize,
            ["connect", "revocation"] => Self::XeroRevocation,
            ["connections"] => Self::XeroConnections,
            ["connections", _] => Self::XeroConnection(id(1)),
            ["api.xro", "2.0", "organisation"] => Self::XeroOrganisation,
            ["_sim", "state"] => Self::Admin(AdminPath::State),
            ["_sim", "seed"] => Self::Admin(AdminPath::Seed),
            ["_sim", "datasets", _, "scheduled-refresh"] => {
                Self::Admin(AdminPath::ScheduledRefresh(id(2)))
            }
            ["_sim", "datasets", _, "failing-refreshes"] => {
                Self::Admin(AdminPath::FailingRefreshes(id(2)))
            }
            ["_sim", "faults"] => Self::Admin(AdminPath::Faults),
            ["_sim", "requests"] => Self::Admin(AdminPath::Requests),
            ["_sim", "xero", "revoke"] => Self::Admin(AdminPath::XeroRevoke),
            ["_sim", "clock"] => Self::Admin(AdminPath::Clock),
            ["_sim", "clock", "advance"] => Self::Admin(AdminPath::ClockAdvance),
            _ => Self::Unknown,
        }
    }

    /// The service whose conventions the response follows. Unknown paths answer like Power BI.
    pub fn service(&self) -> Service {
        match self {
            Self::EntraToken(_) => Service::Entra,
            Self::PowerBi(_) | Self::Unknown => Service::PowerBi,
            Self::XeroToken | Self::XeroAuthorize | Self::XeroRevocation => Service::XeroIdentity,
            Self::XeroConnections | Self::XeroConnection(_) | Self::XeroOrganisation => {
                Service::XeroApi
            }
            Self::Admin(_) => Service::Admin,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_service() {
        assert_eq!(
            Route::parse("/t/oauth2/v2.0/token"),
            Route::EntraToken("t".into())
        );
        assert_eq!(
            Route::parse("/v1.0/myorg/groups/G/datasets/D/refreshSchedule"),
            Route::PowerBi(PowerBiPath::Schedule {
                group: "G".into(),
                dataset: "D".into()
            })
        );
        assert_eq!(
            Route::parse("/v1.0/myorg/groups/G/datasets/D/Default.TakeOver"),
            Route::PowerBi(PowerBiPath::TakeOver {
                group: "G".into(),
                dataset: "D".into()
            })
        );
        assert_eq!(Route::parse("/Connections"), Route::XeroConnections);
        assert_eq!(Route::parse("/connections/"), Route::XeroConnections);
        assert_eq!(
            Route::parse("/_sim/datasets/D/scheduled-refresh"),
            Route::Admin(AdminPath::ScheduledRefresh("D".into()))
        );
        assert_eq!(Route::parse("/v1.0//myorg"), Route::Unknown);
        assert_eq!(Route::parse(""), Route::Unknown);
        assert_eq!(Route::Unknown.service(), Service::PowerBi);
    }
}
