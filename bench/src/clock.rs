//! The bench's virtual clock, shared by the slot driver and the poller, and put in step with
//! the simulators' and the operator's scaled clocks.

use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};

use crate::error::Result;
use crate::sim::Sim;

/// `origin` at creation, running `scale` times faster than real time.
#[derive(Debug, Clone, Copy)]
pub struct BenchClock {
    origin: Timestamp,
    started: Instant,
    scale: f64,
}

impl BenchClock {
    pub fn new(origin: Timestamp, scale: f64) -> BenchClock {
        BenchClock {
            origin,
            started: Instant::now(),
            scale: scale.max(1.0),
        }
    }

    pub fn now(&self) -> Timestamp {
        let elapsed = SignedDuration::try_from(self.started.elapsed().mul_f64(self.scale))
            .unwrap_or(SignedDuration::MAX);
        self.origin.checked_add(elapsed).unwrap_or(self.origin)
    }

    /// The real time `virtual_span` takes.
    pub fn real(&self, virtual_span: SignedDuration) -> Duration {
        Duration::try_from(virtual_span)
            .unwrap_or_default()
            .div_f64(self.scale)
    }

    pub async fn sleep_until(&self, at: Timestamp) {
        let wait = self.real(at.duration_since(self.now()));
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    /// Moves a simulator (started after this clock, at the same origin and scale) forward so
    /// that it reads the same time; returns what is left of the difference.
    pub async fn align(&self, sim: &Sim) -> Result<SignedDuration> {
        let behind = self.now().duration_since(sim.now().await?);
        if behind.is_positive() {
            sim.advance(behind).await?;
        }
        Ok(self.now().duration_since(sim.now().await?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_runs_scaled() {
        let origin: Timestamp = "2025-01-06T00:00:00Z".parse().expect("timestamp");
        let clock = BenchClock::new(origin, 3600.0);
        assert!(clock.now() >= origin);
        assert_eq!(
            clock.real(SignedDuration::from_hours(1)),
            Duration::from_secs(1)
        );
        assert_eq!(clock.real(SignedDuration::from_secs(-5)), Duration::ZERO);
    }
}
