//! Which deployment of a group serves the next attempt: pure functions over what the shared
//! state says of each candidate, so every strategy is tested without a network.

use std::time::Duration;

use crate::pricing::Usd;
use crate::router::state::MinuteUsage;

/// How a group picks among its deployments.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Strategy {
    /// At random, in proportion to each deployment's weight (LiteLLM's `simple-shuffle`).
    #[default]
    WeightedShuffle,
    /// The fewest calls in flight.
    LeastBusy,
    /// The lowest recent latency (time to first token for streams); untried ones first.
    LowestLatency,
    /// The most rpm/tpm headroom left this minute.
    UsageBased,
    /// The lowest price for the expected tokens; unpriced ones last.
    LowestCost,
}

impl Strategy {
    /// LiteLLM's `routing_strategy` names, and ours.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "simple-shuffle" | "weighted-shuffle" | "shuffle" => Self::WeightedShuffle,
            "least-busy" => Self::LeastBusy,
            "latency-based-routing" | "lowest-latency" => Self::LowestLatency,
            "usage-based-routing" | "usage-based-routing-v2" | "usage-based" => Self::UsageBased,
            "cost-based-routing" | "lowest-cost" => Self::LowestCost,
            _ => return None,
        })
    }
}

/// What the policy knows of one deployment at the moment of choosing.
#[derive(Clone, Debug, Default)]
pub struct Candidate {
    /// Relative share under weighted shuffle (0 is never picked while others can be).
    pub weight: u32,
    /// Lower orders are tried first; higher ones only when no lower one is available.
    pub order: u32,
    /// Requests per minute allowed, if limited.
    pub rpm: Option<u64>,
    /// Tokens per minute allowed, if limited.
    pub tpm: Option<u64>,
    /// Counted this minute.
    pub usage: MinuteUsage,
    /// Calls in flight now.
    pub in_flight: u64,
    /// Recent latency, if measured.
    pub latency: Option<Duration>,
    /// Expected price of this call, if priced.
    pub cost: Option<Usd>,
    /// Cooling down: never picked.
    pub cooling_down: bool,
}

impl Candidate {
    /// Whether this call (of `tokens` expected tokens) fits under its limits.
    fn has_room(&self, tokens: u64) -> bool {
        self.rpm.is_none_or(|rpm| self.usage.requests < rpm)
            && self.tpm.is_none_or(|tpm| self.usage.tokens.saturating_add(tokens) <= tpm)
    }

    /// The smaller of the rpm and tpm headroom left, as a share of the limit (1.0 unlimited).
    fn headroom(&self) -> f64 {
        let share = |used: u64, limit: Option<u64>| {
            limit.map_or(1.0, |l| if l == 0 { 0.0 } else { 1.0 - (used as f64 / l as f64).min(1.0) })
        };
        share(self.usage.requests, self.rpm).min(share(self.usage.tokens, self.tpm))
    }
}

/// The index of the candidate to use for a call of about `tokens` tokens, or `None` when
/// every one is cooling down or out of rpm/tpm headroom.
pub fn choose(strategy: Strategy, candidates: &[Candidate], tokens: u64, rng: &mut fastrand::Rng) -> Option<usize> {
    let available: Vec<usize> =
        (0..candidates.len()).filter(|&i| !candidates[i].cooling_down && candidates[i].has_room(tokens)).collect();
    let lowest_order = available.iter().map(|&i| candidates[i].order).min()?;
    let tier: Vec<usize> = available.into_iter().filter(|&i| candidates[i].order == lowest_order).collect();
    let by = |key: &dyn Fn(&Candidate) -> (u128, u128)| tier.iter().copied().min_by_key(|&i| (key(&candidates[i]), i));
    match strategy {
        Strategy::WeightedShuffle => {
            let total: u64 = tier.iter().map(|&i| u64::from(candidates[i].weight)).sum();
            if total == 0 {
                return tier.get(rng.usize(..tier.len())).copied();
            }
            let mut ticket = rng.u64(..total);
            for &i in &tier {
                let w = u64::from(candidates[i].weight);
                if ticket < w {
                    return Some(i);
                }
                ticket -= w;
            }
            tier.last().copied()
        }
        Strategy::LeastBusy => by(&|c| (u128::from(c.in_flight), 0)),
        Strategy::LowestLatency => by(&|c| c.latency.map_or((0, 0), |l| (1, l.as_nanos()))),
        Strategy::UsageBased => {
            // Most headroom first; f64 shares are in [0, 1], so their bits order like them.
            by(&|c| (u128::from(u64::MAX - (c.headroom() * 1e9) as u64), 0))
        }
        Strategy::LowestCost => by(&|c| c.cost.map_or((1, 0), |p| (0, u128::from(p.0)))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weighted(weights: &[u32]) -> Vec<Candidate> {
        weights.iter().map(|&weight| Candidate { weight, ..Candidate::default() }).collect()
    }

    #[test]
    fn weighted_shuffle_follows_the_weights_within_tolerance() {
        let candidates = weighted(&[1, 3, 6]);
        let mut rng = fastrand::Rng::with_seed(7);
        let mut counts = [0u32; 3];
        let picks = 20_000;
        for _ in 0..picks {
            if let Some(i) = choose(Strategy::WeightedShuffle, &candidates, 0, &mut rng) {
                counts[i] += 1;
            }
        }
        for (i, expected) in [0.1, 0.3, 0.6].into_iter().enumerate() {
            let share = f64::from(counts[i]) / f64::from(picks);
            assert!((share - expected).abs() < 0.02, "deployment {i}: {share} (expected {expected}): {counts:?}");
        }
    }

    #[test]
    fn cooling_down_full_and_higher_order_deployments_are_skipped() {
        let mut c = weighted(&[1, 1, 1, 1]);
        c[0].cooling_down = true;
        c[1].rpm = Some(10);
        c[1].usage.requests = 10;
        c[2].tpm = Some(1000);
        c[2].usage.tokens = 900;
        c[3].order = 1;
        let mut rng = fastrand::Rng::with_seed(1);
        // 0 cools down, 1 is out of requests, 2 has room for 100 tokens but not 200.
        assert_eq!(choose(Strategy::WeightedShuffle, &c, 100, &mut rng), Some(2));
        assert_eq!(choose(Strategy::WeightedShuffle, &c, 200, &mut rng), Some(3), "order 1 only when order 0 is out");
        c[3].cooling_down = true;
        assert_eq!(choose(Strategy::WeightedShuffle, &c, 200, &mut rng), None);
    }

    #[test]
    fn each_strategy_prefers_what_it_names() {
        let mut rng = fastrand::Rng::with_seed(3);
        let mut c = weighted(&[1, 1, 1]);
        c[0].in_flight = 5;
        c[1].in_flight = 1;
        c[2].in_flight = 3;
        assert_eq!(choose(Strategy::LeastBusy, &c, 0, &mut rng), Some(1));

        c[0].latency = Some(Duration::from_millis(300));
        c[1].latency = Some(Duration::from_millis(900));
        assert_eq!(choose(Strategy::LowestLatency, &c, 0, &mut rng), Some(2), "an untried one is tried first");
        c[2].latency = Some(Duration::from_millis(400));
        assert_eq!(choose(Strategy::LowestLatency, &c, 0, &mut rng), Some(0));

        c[0].rpm = Some(100);
        c[0].usage.requests = 90;
        c[1].rpm = Some(10);
        c[1].usage.requests = 2;
        c[2].tpm = Some(1000);
        c[2].usage.tokens = 500;
        assert_eq!(choose(Strategy::UsageBased, &c, 0, &mut rng), Some(1), "80% left beats 50% and 10%");

        c[0].cost = Some(Usd(300));
        c[2].cost = Some(Usd(200));
        assert_eq!(choose(Strategy::LowestCost, &c, 0, &mut rng), Some(2), "unpriced ones come last");
    }

    #[test]
    fn routing_strategy_names_from_litellm_configs() {
        assert_eq!(Strategy::from_name("simple-shuffle"), Some(Strategy::WeightedShuffle));
        assert_eq!(Strategy::from_name("latency-based-routing"), Some(Strategy::LowestLatency));
        assert_eq!(Strategy::from_name("usage-based-routing-v2"), Some(Strategy::UsageBased));
        assert_eq!(Strategy::from_name("cost-based-routing"), Some(Strategy::LowestCost));
        assert_eq!(Strategy::from_name("fastest"), None);
    }
}
