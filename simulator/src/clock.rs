//! The simulator's virtual clock: real elapsed time plus whatever tests added with
//! `POST /_sim/clock/advance`, so expiries and grace periods are tested without waiting.

use std::time::Instant;

use jiff::{SignedDuration, Timestamp};

/// Virtual "now" = base + real time elapsed since start + advanced offset. Never goes back.
#[derive(Debug, Clone)]
pub struct VirtualClock {
    base: Timestamp,
    started: Instant,
    offset: SignedDuration,
}

impl VirtualClock {
    /// A clock that starts at `start`, or at the real current time.
    pub fn new(start: Option<Timestamp>) -> Self {
        Self {
            base: start.unwrap_or_else(Timestamp::now),
            started: Instant::now(),
            offset: SignedDuration::ZERO,
        }
    }

    /// The current virtual time.
    pub fn now(&self) -> Timestamp {
        let elapsed =
            SignedDuration::try_from(self.started.elapsed()).unwrap_or(SignedDuration::MAX);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_moves_now_forward_and_never_back() {
        let start: Timestamp = "2025-01-06T08:00:00Z".parse().unwrap();
        let mut clock = VirtualClock::new(Some(start));
        let before = clock.now();
        assert!(before >= start);
        clock.advance(SignedDuration::from_secs(3600));
        assert!(clock.now() >= before + SignedDuration::from_secs(3600));
        let after = clock.now();
        clock.advance(SignedDuration::from_secs(-100));
        assert!(clock.now() >= after);
    }
}
