//! Spike protection for one project: a slowly learned baseline of events per minute, and a
//! per-minute allowance of `factor` times that baseline (never under the floor). A minute that
//! reaches the allowance throttles the project until the minute ends; the state is "active"
//! from the first throttled minute until a minute closes without reaching it.

/// Minutes over which the baseline forgets: about a day, so one bad hour barely moves it and a
/// lasting new normal is learned within hours.
const BASELINE_MINUTES: f64 = 1440.0;

/// One project's spike state.
#[derive(Debug, Clone)]
pub struct Spike {
    /// Average accepted events per minute.
    baseline: f64,
    /// The clock minute `count` belongs to.
    minute: i64,
    /// Events accepted in `minute`.
    count: u64,
    /// Whether `minute` reached its allowance.
    hit: bool,
    /// Start of the current throttled run, ms.
    since_ms: Option<i64>,
}

impl Spike {
    /// A project whose recent average is `baseline` events per minute.
    pub fn new(baseline: f64, minute: i64) -> Spike {
        Spike {
            baseline,
            minute,
            count: 0,
            hit: false,
            since_ms: None,
        }
    }

    /// Closes the minutes before `minute`, folding their counts into the baseline.
    pub fn roll(&mut self, minute: i64) {
        if minute <= self.minute {
            return;
        }
        let alpha = 1.0 / BASELINE_MINUTES;
        self.baseline += alpha * (self.count as f64 - self.baseline);
        let idle = (minute - self.minute - 1).min(10 * BASELINE_MINUTES as i64);
        if idle > 0 {
            self.baseline *= (1.0 - alpha).powi(idle as i32);
        }
        if !self.hit || idle > 0 {
            self.since_ms = None;
        }
        self.minute = minute;
        self.count = 0;
        self.hit = false;
    }

    /// Events per minute the project may send now.
    pub fn allowance(&self, factor: u64, floor: u64) -> u64 {
        ((self.baseline * factor as f64).ceil() as u64).max(floor)
    }

    /// Whether this minute's allowance is used up; marks the spike when it is.
    pub fn exhausted(&mut self, allowance: u64, now_ms: i64) -> bool {
        if self.count < allowance {
            return false;
        }
        self.hit = true;
        self.since_ms.get_or_insert(now_ms);
        true
    }

    /// Counts accepted events (negative: takes back an admission).
    pub fn add(&mut self, events: i64) {
        self.count = self.count.saturating_add_signed(events);
    }

    /// Start of the current throttled run, if any.
    pub fn since_ms(&self) -> Option<i64> {
        self.since_ms
    }

    /// The learned baseline (events per minute).
    #[cfg(test)]
    pub fn baseline(&self) -> f64 {
        self.baseline
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floor_applies_to_a_new_project() {
        let s = Spike::new(0.0, 0);
        assert_eq!(s.allowance(10, 100), 100);
    }

    #[test]
    fn allowance_is_factor_times_baseline() {
        let s = Spike::new(50.0, 0);
        assert_eq!(s.allowance(10, 100), 500);
    }

    #[test]
    fn spike_starts_on_the_first_refusal_and_ends_after_a_calm_minute() {
        let mut s = Spike::new(0.0, 0);
        s.add(100);
        assert!(s.exhausted(100, 5_000));
        assert_eq!(s.since_ms(), Some(5_000));
        s.roll(1);
        assert_eq!(
            s.since_ms(),
            Some(5_000),
            "a throttled minute keeps the spike open"
        );
        s.add(10);
        assert!(!s.exhausted(100, 65_000));
        s.roll(2);
        assert_eq!(s.since_ms(), None, "a calm minute ends it");
    }

    #[test]
    fn baseline_learns_slowly_and_forgets_idle_time() {
        let mut s = Spike::new(10.0, 0);
        s.add(1_000);
        s.roll(1);
        assert!(
            s.baseline() < 11.0,
            "one busy minute barely moves it: {}",
            s.baseline()
        );
        let before = s.baseline();
        s.roll(1 + 1440);
        assert!(
            s.baseline() < before / 2.0,
            "a quiet day halves it: {}",
            s.baseline()
        );
    }
}
