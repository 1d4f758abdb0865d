//! The simulator's virtual clock: real elapsed time (optionally scaled) plus whatever tests
//! added with `POST /_sim/clock/advance`, so expiries and grace periods are tested without
//! waiting, and benchmarks can run a day in minutes in step with the operator's scaled clock.

use std::time::Instant;

use jiff::{SignedDuration, Timestamp};

/// Virtual "now" = base + scale × real time elapsed since start + advanced offset. Never goes
/// back.
#[derive(Debug, Clone)]
pub struct VirtualClock {
    base: Timestamp,
    started: Instant,
    scale: f64,
    offset: SignedDuration,
}

impl VirtualClock {
    /// A clock that starts at `start`, or at the real current time, and runs `scale` times
    /// faster than real time (at least 1; anything else means 1).
    pub fn new(start: Option<Timestamp>, scale: f64) -> Self {
        Self {
            base: start.unwrap_or_else(Timestamp::now),
            started: Instant::now(),
            scale: if scale.is_finite() && scale >= 1.0 {
                scale
            } else {
                1.0
            },
            offset: SignedDuration::ZERO,
        }
    }

    /// The current virtual time.
    pub fn now(&self) -> Timestamp {
        let elapsed = SignedDuration::try_from(self.started.elapsed().mul_f64(self.scale))
            .unwrap_or(SignedDuration::MAX);
        let total = elapsed.saturating_add(self.offset);
        self.base.checked_add(total).unwrap_or(Timestamp::MAX)
    }

    /// Moves the clock forward.
    pub fn advance(&mut self, by: SignedDuration) {
        if by.is_positive() {
            self.offset = self.offset.saturating_add(by);
        }
    }
}

/// A whole number of seconds as a duration, saturating where it does not fit.
pub fn secs(seconds: u64) -> SignedDuration {
    SignedDuration::from_secs(i64::try_from(seconds).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_moves_now_forward_and_never_back() {
        let start: Timestamp = "2025-01-06T08:00:00Z".parse().unwrap();
        let mut clock = VirtualClock::new(Some(start), 1.0);
        let before = clock.now();
        assert!(before >= start);
        clock.advance(SignedDuration::from_secs(3600));
        assert!(clock.now() >= before + SignedDuration::from_secs(3600));
        let after = clock.now();
        clock.advance(SignedDuration::from_secs(-100));
        assert!(clock.now() >= after);
    }

    #[test]
    fn a_scaled_clock_runs_faster_than_real_time() {
        let start: Timestamp = "2025-01-06T00:00:00Z".parse().unwrap();
        let clock = VirtualClock::new(Some(start), 3600.0);
        std::thread::sleep(std::time::Duration::from_millis(20));
        // 20 ms of real time is at least 72 virtual seconds.
        assert!(clock.now() >= start + SignedDuration::from_secs(72));
        assert_eq!(VirtualClock::new(Some(start), f64::NAN).scale, 1.0);
        assert_eq!(VirtualClock::new(Some(start), 0.5).scale, 1.0);
    }
}
