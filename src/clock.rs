//! The operator's clock. Real time in production; benchmarks run it faster (and from a chosen
//! start) so that a simulated day passes in minutes, with the simulator's clock doing the same.

use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};

/// A clock that reads `origin` at start-up and runs `scale` times faster than real time.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    started: Instant,
    origin: Timestamp,
    scale: f64,
}

impl Default for Clock {
    fn default() -> Self {
        Self::real()
    }
}

impl Clock {
    /// Real time.
    pub fn real() -> Self {
        Self::scaled(Timestamp::now(), 1.0)
    }

    /// Starts at `origin` and runs `scale` times faster than real time (`scale` at least 1).
    pub fn scaled(origin: Timestamp, scale: f64) -> Self {
        Clock {
            started: Instant::now(),
            origin,
            scale: if scale.is_finite() {
                scale.max(1.0)
            } else {
                1.0
            },
        }
    }

    /// Now, on this clock.
    pub fn now(&self) -> Timestamp {
        let elapsed = self.started.elapsed().mul_f64(self.scale);
        let elapsed = SignedDuration::try_from(elapsed).unwrap_or(SignedDuration::MAX);
        self.origin.checked_add(elapsed).unwrap_or(self.origin)
    }

    /// The real time that `wait` on this clock takes.
    pub fn real_duration(&self, wait: Duration) -> Duration {
        wait.div_f64(self.scale)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scaled_clock_runs_faster_and_shortens_waits() {
        let origin: Timestamp = "2026-11-25T00:00:00Z".parse().expect("timestamp");
        let clock = Clock::scaled(origin, 3600.0);
        assert!(clock.now() >= origin);
        assert_eq!(
            clock.real_duration(Duration::from_secs(3600)),
            Duration::from_secs(1)
        );
        assert_eq!(
            Clock::scaled(origin, 0.5).real_duration(Duration::from_secs(2)),
            Duration::from_secs(2)
        );
    }
}
