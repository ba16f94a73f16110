//! How a target is judged: the baseline and the measured side take turns, round after round;
//! each round gives a ratio of the two, and the median of the rounds' ratios meets the target
//! or misses it. A neighbour on a shared machine slows both sides of a round alike, and one
//! slow round does not decide (two whole runs of one build moved single ratios by 15%).

use crate::measure::Measurement;

/// Rounds of each judged pair.
pub(crate) const ROUNDS: usize = 3;

/// The rounds of one judged pair: `(baseline, measured)` in the order they ran.
#[derive(Default)]
pub(crate) struct Rounds {
    pairs: Vec<(Measurement, Measurement)>,
}

impl Rounds {
    pub(crate) fn push(&mut self, baseline: Measurement, measured: Measurement) {
        self.pairs.push((baseline, measured));
    }

    pub(crate) fn pairs(&self) -> &[(Measurement, Measurement)] {
        &self.pairs
    }

    /// Measured throughput over the baseline's, per round.
    pub(crate) fn throughput(&self) -> Ratios {
        Ratios(
            self.pairs
                .iter()
                .map(|(baseline, measured)| measured.per_second() / baseline.per_second().max(1e-9))
                .collect(),
        )
    }

    /// Measured time per operation over the baseline's, per round (the inverse of
    /// [`Rounds::throughput`]), for costs judged "at most".
    pub(crate) fn time_per_op(&self) -> Ratios {
        Ratios(
            self.pairs
                .iter()
                .map(|(baseline, measured)| baseline.per_second() / measured.per_second().max(1e-9))
                .collect(),
        )
    }

    /// Measured p99 latency over the baseline's, per round (rounds without latencies are
    /// left out).
    pub(crate) fn p99(&self) -> Ratios {
        Ratios(
            self.pairs
                .iter()
                .filter_map(|(baseline, measured)| {
                    let (base, mine) = (baseline.percentile(0.99)?, measured.percentile(0.99)?);
                    Some(mine.as_secs_f64() / base.as_secs_f64().max(1e-9))
                })
                .collect(),
        )
    }
}

/// One ratio per round.
pub(crate) struct Ratios(Vec<f64>);

impl Ratios {
    /// The middle ratio (the lower middle of an even count); 0 when there is none.
    pub(crate) fn median(&self) -> f64 {
        let mut sorted = self.0.clone();
        sorted.sort_by(f64::total_cmp);
        match sorted.len() {
            0 => 0.0,
            n => sorted[(n - 1) / 2],
        }
    }

    /// `what >= target x: median of 3 rounds 0.41 x (0.39, 0.41, 0.44) -> PASS`.
    pub(crate) fn at_least(&self, what: &str, target: f64) -> String {
        self.judged(what, ">=", target, self.median() >= target)
    }

    /// `what <= target x: … -> PASS`, for latencies.
    pub(crate) fn at_most(&self, what: &str, target: f64) -> String {
        self.judged(what, "<=", target, self.median() <= target)
    }

    fn judged(&self, what: &str, relation: &str, target: f64, met: bool) -> String {
        let each: Vec<String> = self.0.iter().map(|r| format!("{r:.2}")).collect();
        format!(
            "target: {what} {relation} {target:.2} x: median of {} rounds {:.2} x ({}) -> {}",
            self.0.len(),
            self.median(),
            each.join(", "),
            if met { "PASS" } else { "MISS" }
        )
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::measure::Cpu;

    fn run(ops: u64, millis: u64, p99_us: u64) -> Measurement {
        Measurement {
            ops,
            elapsed: Duration::from_millis(millis),
            cpu: Cpu::default(),
            latencies: vec![Duration::from_micros(p99_us)],
        }
    }

    #[test]
    fn the_median_round_decides() {
        let mut rounds = Rounds::default();
        // Ratios 0.5, 0.2 (a slow round of the measured side) and 0.4.
        rounds.push(run(100, 1000, 100), run(50, 1000, 120));
        rounds.push(run(100, 1000, 100), run(20, 1000, 500));
        rounds.push(run(100, 1000, 100), run(40, 1000, 130));
        let throughput = rounds.throughput();
        assert!((throughput.median() - 0.4).abs() < 1e-9);
        assert_eq!(
            throughput.at_least("commands", 0.35),
            "target: commands >= 0.35 x: median of 3 rounds 0.40 x (0.50, 0.20, 0.40) -> PASS"
        );
        assert!(throughput.at_least("commands", 0.45).ends_with("MISS"));
        // Time per operation: 2.0, 5.0 and 2.5 times the baseline's.
        assert!((rounds.time_per_op().median() - 2.5).abs() < 1e-9);
        let p99 = rounds.p99();
        assert!((p99.median() - 1.3).abs() < 1e-9);
        assert!(p99.at_most("p99", 1.3).ends_with("PASS"));
        assert!(p99.at_most("p99", 1.2).ends_with("MISS"));
        assert_eq!(Ratios(Vec::new()).median(), 0.0);
    }
}
