//! The simulated clouds' state, one module per service, and the [`World`] that owns them under
//! one lock. Nothing here knows about HTTP: the handlers read and change this state.

use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use crate::clock::VirtualClock;
use crate::error::Error;
use crate::seed::{Seed, SimConfig};

pub mod entra;
pub mod powerbi;
pub mod traffic;
pub mod xero;

use entra::{EntraState, owner_name};
use powerbi::{Outcome, PowerBiState, Refresh, RefreshRejection};
use traffic::{ServedRequest, Traffic};
use xero::{CallsLeft, XeroLimit, XeroState, count_calls, count_refresh_calls};

/// Everything the simulator holds. One lock guards it; service code never awaits.
#[derive(Debug)]
pub struct World {
    pub(crate) config: SimConfig,
    clock: VirtualClock,
    pub(crate) entra: EntraState,
    pub(crate) powerbi: PowerBiState,
    pub(crate) xero: XeroState,
    pub(crate) traffic: Traffic,
}

impl World {
    /// Builds the state a seed describes.
    pub fn from_seed(seed: Seed) -> Result<Self, Error> {
        let clock = VirtualClock::new(seed.config.start_time, seed.config.time_scale);
        Self::with_clock(seed, clock)
    }

    /// Replaces the state by a seed's, keeping the clock unless the seed sets a start time.
    pub fn reseed(&mut self, seed: Seed) -> Result<(), Error> {
        let clock = match seed.config.start_time {
            Some(start) => VirtualClock::new(Some(start), seed.config.time_scale),
            None => self.clock.clone(),
        };
        *self = Self::with_clock(seed, clock)?;
        Ok(())
    }

    fn with_clock(seed: Seed, clock: VirtualClock) -> Result<Self, Error> {
        if let Some(problem) = seed.config.scheduler.problem() {
            return Err(Error::Seed(problem));
        }
        let now = clock.now();
        let owner_default = seed
            .service_principals
            .first()
            .map(owner_name)
            .unwrap_or_else(|| "admin@contoso.com".to_owned());
        let mut powerbi =
            PowerBiState::from_seed(seed.workspaces, &owner_default, now, &seed.config)
                .map_err(Error::Seed)?;
        powerbi.gateways = powerbi::Gateway::from_seeds(&seed.gateways).map_err(Error::Seed)?;
        let xero = XeroState::from_seed(&seed.xero, &seed.config, now).map_err(Error::Seed)?;
        Ok(Self {
            config: seed.config,
            clock,
            entra: EntraState::from_seed(seed.service_principals),
            powerbi,
            xero,
            traffic: Traffic::default(),
        })
    }

    /// The virtual time.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Moves the virtual clock forward and lets everything that ended meanwhile end.
    pub fn advance_clock(&mut self, by: SignedDuration) {
        self.clock.advance(by);
        self.settle();
    }

    /// What the server's periodic tick does: lets Power BI's scheduler start what is due even
    /// when no request comes.
    pub fn tick(&mut self) {
        if self.config.scheduler.enabled {
            self.settle();
        }
    }

    /// Ends every refresh whose run time has passed, as the service would have meanwhile. A
    /// refresh's end depends on Xero's state, which is why this lives here.
    pub fn settle(&mut self) {
        let now = self.clock.now();
        let (traffic, config) = (&mut self.traffic, &self.config);
        self.powerbi
            .settle(now, &self.xero, config, &mut |caller, at| {
                count_refresh_calls(traffic, config, caller, at)
            });
        // Power BI's scheduler, then the ends of what it started if those have passed too.
        if self.powerbi.run_scheduler(now, &self.config) > 0 {
            let (traffic, config) = (&mut self.traffic, &self.config);
            self.powerbi
                .settle(now, &self.xero, config, &mut |caller, at| {
                    count_refresh_calls(traffic, config, caller, at)
                });
        }
    }

    /// Starts a refresh if the service would: one at a time, within the daily quota.
    pub fn start_refresh(
        &mut self,
        dataset: (usize, usize),
        refresh_type: &str,
        outcome: Outcome,
        duration_seconds: Option<u64>,
    ) -> Result<Refresh, RefreshRejection> {
        let now = self.clock.now();
        let refresh = self.powerbi.start_refresh(
            dataset,
            refresh_type,
            outcome,
            duration_seconds,
            now,
            &self.config,
        )?;
        // A zero-length refresh ends at once.
        self.settle();
        Ok(refresh)
    }

    /// Counts a request against the principal's rate limit; `Some(retry_after_seconds)` when
    /// it is over.
    pub fn rate_limited(&mut self, principal: &str) -> Option<u64> {
        let now = self.clock.now();
        self.traffic
            .rate_limited(principal, self.config.rate_limit, now)
    }

    /// Counts a Xero API call of the app `client_id` (in the organisation `tenant_id` when it
    /// names one) against Xero's limits: the calls left, or the limit with too few left and
    /// the seconds until its window ends.
    pub fn xero_call(
        &mut self,
        client_id: &str,
        tenant_id: Option<&str>,
    ) -> Result<CallsLeft, (XeroLimit, u64)> {
        let now = self.clock.now();
        count_calls(
            &mut self.traffic,
            &self.config,
            (client_id, tenant_id),
            1,
            now,
        )
    }

    /// Appends a served request to the log, stamped with the virtual time.
    pub fn log_request(&mut self, served: ServedRequest<'_>) {
        let now = self.clock.now();
        self.traffic.log(served, now);
    }

    /// Everything, as JSON, with every token and secret replaced by a fingerprint.
    pub fn snapshot(&self) -> Value {
        let now = self.clock.now();
        json!({
            "now": format!("{now:.3}"),
            "config": self.config,
            "servicePrincipals": self.entra.snapshot(now),
            "workspaces": self.powerbi.snapshot(now, &self.xero, &self.config),
            "xero": self.xero.snapshot(now),
            "faults": self.traffic.faults(),
            "requestCount": self.traffic.request_count(),
        })
    }
}
