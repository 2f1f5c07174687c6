//! The live loop's metrics (served on loopback by [`super::control::serve`]): positions,
//! equity, P&L, counters of decisions, orders, fills, rejections (by rule) and bad bars,
//! the trading state, feed lag, and a latency histogram per stage of the loop. The engine
//! keeps them as plain numbers in [`LiveMetrics`] (no atomics on the hot path) and
//! publishes a copy at each group commit; a scrape encodes that copy with the maintained
//! Prometheus client (`prometheus-client`) as a collector.

use super::risk::TradingState;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet, prometheus_text};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

/// A stage of the loop, timed on every pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// A stream's line parsed, validated and turned into features.
    Features,
    /// Observation and the policy's forward.
    Policy,
    /// The risk manager's check.
    Risk,
    /// The paper broker: the working order against the new bar.
    Broker,
    /// The group commit of the journal.
    Journal,
    /// One symbol's whole bar (broker, marks, policy, risk, order, records).
    Bar,
}

const STAGES: [(Stage, &str); 6] = [
    (Stage::Features, "features"),
    (Stage::Policy, "policy"),
    (Stage::Risk, "risk"),
    (Stage::Broker, "broker"),
    (Stage::Journal, "journal"),
    (Stage::Bar, "bar"),
];

/// Upper bounds of the latency buckets, µs (1 µs to 100 ms, then +Inf).
const BUCKETS_US: [f64; 15] = [
    1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1e3, 2e3, 5e3, 1e4, 5e4, 1e5,
];

/// A latency histogram.
#[derive(Clone, Debug, Default)]
pub struct Histogram {
    /// Observations in each bucket: above the previous bound, at or under this one (not
    /// cumulative; the encoder sums them).
    counts: [u64; BUCKETS_US.len()],
    count: u64,
    sum_us: f64,
}

impl Histogram {
    pub fn observe(&mut self, us: f64) {
        if let Some(i) = BUCKETS_US.iter().position(|&b| us <= b) {
            self.counts[i] += 1;
        }
        self.count += 1;
        self.sum_us += us;
    }
}

/// Everything the endpoint shows.
#[derive(Clone, Debug)]
pub struct LiveMetrics {
    pub symbols: Vec<String>,
    /// Shares held per symbol.
    pub positions: Vec<i64>,
    pub equity: f64,
    pub realized: f64,
    pub costs: f64,
    pub state: TradingState,
    pub decisions: u64,
    pub orders: u64,
    pub fills: u64,
    pub rejections: u64,
    /// Orders the broker would not take.
    pub broker_rejects: u64,
    /// Rejections by the first rule that cut.
    pub rejections_by_rule: std::collections::BTreeMap<String, u64>,
    /// Stream lines taken (journaled).
    pub inputs: u64,
    pub bad_bars: u64,
    pub duplicates: u64,
    /// Seconds from the last stream bar's close to its receipt.
    pub feed_lag_s: f64,
    stages: [Histogram; STAGES.len()],
}

impl LiveMetrics {
    pub fn new(symbols: &[String]) -> LiveMetrics {
        LiveMetrics {
            symbols: symbols.to_vec(),
            positions: vec![0; symbols.len()],
            equity: 0.0,
            realized: 0.0,
            costs: 0.0,
            state: TradingState::Active,
            decisions: 0,
            orders: 0,
            fills: 0,
            rejections: 0,
            broker_rejects: 0,
            rejections_by_rule: Default::default(),
            inputs: 0,
            bad_bars: 0,
            duplicates: 0,
            feed_lag_s: 0.0,
            stages: Default::default(),
        }
    }

    pub fn stage(&mut self, stage: Stage, us: f64) {
        let i = STAGES
            .iter()
            .position(|(s, _)| *s == stage)
            .expect("listed");
        self.stages[i].observe(us);
    }

    /// A rejection with its reasons (the first names the rule).
    pub fn reject(&mut self, reasons: &[String]) {
        let rule = reasons.first().map_or("unknown", |r| rule_of(r));
        *self.rejections_by_rule.entry(rule.to_string()).or_default() += 1;
    }

    /// The Prometheus text exposition format (version 0.0.4, [`CONTENT_TYPE`]), encoded
    /// by the `prometheus-client` crate: names prefixed `sim_train_live_`, counters
    /// suffixed `_total`, latencies in seconds.
    pub fn render(&self) -> String {
        let mut registry = Registry::with_prefix("sim_train_live");
        registry.register_collector(Box::new(self.clone()));
        let mut out = String::new();
        // Encoding into a String fails only if a collector does, and ours does not.
        let _ = prometheus_text::encode(&mut out, &registry);
        out
    }
}

/// The `Content-Type` of [`LiveMetrics::render`].
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// The metrics as the registry encodes them on each scrape: a snapshot of the engine's
/// counters, taken at its last group commit.
impl Collector for LiveMetrics {
    fn encode(&self, mut e: DescriptorEncoder) -> std::fmt::Result {
        let mut m = e.encode_descriptor(
            "position_shares",
            "Shares held per symbol.",
            None,
            MetricType::Gauge,
        )?;
        for (s, p) in self.symbols.iter().zip(&self.positions) {
            m.encode_family(&[("symbol", s.as_str())])?
                .encode_gauge(p)?;
        }
        let gauges = [
            (
                "equity_usd",
                "Equity of every account, marked at the last bar.",
                self.equity,
            ),
            (
                "realized_pnl_usd",
                "Realized P&L before costs, from the journal's fills.",
                self.realized,
            ),
            (
                "costs_usd",
                "Commission, spread, impact and borrow paid.",
                self.costs,
            ),
            (
                "feed_lag_seconds",
                "Last stream bar: its close to its receipt.",
                self.feed_lag_s,
            ),
        ];
        for (name, help, v) in gauges {
            ConstGauge::new(v).encode(e.encode_descriptor(
                name,
                help,
                None,
                MetricType::Gauge,
            )?)?;
        }
        let counters = [
            ("decisions", "Decisions of the policy.", self.decisions),
            ("orders", "Orders sent to the broker.", self.orders),
            ("fills", "Fills from the broker.", self.fills),
            (
                "rejections",
                "Decisions the risk manager cut.",
                self.rejections,
            ),
            (
                "broker_rejects",
                "Orders the broker would not take.",
                self.broker_rejects,
            ),
            ("inputs", "Stream lines taken (journaled).", self.inputs),
            (
                "bad_bars",
                "Feed lines refused (malformed, out of order, unknown symbol).",
                self.bad_bars,
            ),
            (
                "duplicate_bars",
                "Resent feed lines skipped.",
                self.duplicates,
            ),
        ];
        for (name, help, v) in counters {
            ConstCounter::new(v).encode(e.encode_descriptor(
                name,
                help,
                None,
                MetricType::Counter,
            )?)?;
        }
        let mut m = e.encode_descriptor(
            "rejections_by_rule",
            "Decisions cut, by the first rule that cut.",
            None,
            MetricType::Counter,
        )?;
        for (rule, n) in &self.rejections_by_rule {
            m.encode_family(&[("rule", rule.as_str())])?
                .encode_counter::<NoLabelSet, _, u64>(n, None)?;
        }
        let mut m = e.encode_descriptor(
            "trading_state",
            "The trading state (1 for the current one).",
            None,
            MetricType::Gauge,
        )?;
        for (st, name) in [
            (TradingState::Active, "active"),
            (TradingState::Reducing, "reducing"),
            (TradingState::Halted, "halted"),
        ] {
            m.encode_family(&[("state", name)])?
                .encode_gauge(&i64::from(self.state == st))?;
        }
        let mut m = e.encode_descriptor(
            "stage_seconds",
            "Latency of each stage of the loop.",
            None,
            MetricType::Histogram,
        )?;
        for ((_, name), h) in STAGES.iter().zip(&self.stages) {
            let buckets: Vec<(f64, u64)> = BUCKETS_US
                .iter()
                .zip(&h.counts)
                .map(|(us, &n)| (us * 1e-6, n))
                .collect();
            m.encode_family(&[("stage", *name)])?
                .encode_histogram::<NoLabelSet>(h.sum_us * 1e-6, h.count, &buckets, None)?;
        }
        Ok(())
    }
}

/// The rule a rejection reason comes from (see [`super::risk::RiskManager::check`]).
fn rule_of(reason: &str) -> &'static str {
    const RULES: [(&str, &str); 11] = [
        ("halted", "halted"),
        ("reduce-only", "reduce_only"),
        ("to the close", "flatten_before_close"),
        ("bad price", "bad_price"),
        ("order rate", "max_orders_per_minute"),
        ("losing trades in a row", "consecutive_losses"),
        ("max trades per day", "max_trades_per_day"),
        ("max position", "max_position"),
        ("max gross", "max_gross"),
        ("max net", "max_net"),
        ("per-trade risk", "per_trade_risk"),
    ];
    RULES
        .iter()
        .find(|(text, _)| reason.contains(text))
        .map_or("other", |(_, rule)| rule)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of every sample line of `text` whose name and labels start with
    /// `prefix`, keyed by the rest of its labels.
    fn samples(text: &str, prefix: &str) -> Vec<(String, f64)> {
        text.lines()
            .filter_map(|l| l.strip_prefix(prefix))
            .map(|rest| {
                let (labels, value) = rest.rsplit_once(' ').expect("a value");
                (labels.to_string(), value.parse().expect("a number"))
            })
            .collect()
    }

    #[test]
    fn histogram_buckets_are_cumulative_bounds_in_seconds_and_end_in_the_count() {
        let mut m = LiveMetrics::new(&["A".into()]);
        for us in [0.5, 3.0, 3.0, 150.0, 1e9] {
            m.stage(Stage::Policy, us);
        }
        let text = m.render();
        let buckets = samples(
            &text,
            "sim_train_live_stage_seconds_bucket{stage=\"policy\",le=\"",
        );
        let got: Vec<(f64, f64)> = buckets
            .iter()
            .map(|(le, n)| {
                let le = le.trim_end_matches("\"}");
                let bound = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().unwrap()
                };
                (bound, *n)
            })
            .collect();
        // 0.5 µs ≤ 1 µs; 3 µs twice ≤ 5 µs; 150 µs ≤ 200 µs; 1e9 µs only in +Inf.
        let mut want: Vec<(f64, f64)> = BUCKETS_US
            .iter()
            .map(|&us| {
                let n = [0.5, 3.0, 3.0, 150.0].iter().filter(|&&x| x <= us).count();
                (us * 1e-6, n as f64)
            })
            .collect();
        want.push((f64::INFINITY, 5.0));
        assert_eq!(got, want, "{text}");
        let count = samples(
            &text,
            "sim_train_live_stage_seconds_count{stage=\"policy\"}",
        );
        assert_eq!(count, [(String::new(), 5.0)]);
        let sum = samples(&text, "sim_train_live_stage_seconds_sum{stage=\"policy\"}");
        assert!((sum[0].1 - (0.5 + 3.0 + 3.0 + 150.0 + 1e9) * 1e-6).abs() < 1e-9);
        assert!(text.contains("# TYPE sim_train_live_stage_seconds histogram"));
    }

    #[test]
    fn every_metric_is_described_typed_and_sampled() {
        let mut m = LiveMetrics::new(&["A".into(), "B\"x".into()]);
        m.positions = vec![5, -3];
        m.decisions = 7;
        m.equity = 1234.5;
        m.state = TradingState::Reducing;
        m.reject(&["max gross exposure 1 $".into()]);
        let text = m.render();
        for (name, kind) in [
            ("position_shares", "gauge"),
            ("equity_usd", "gauge"),
            ("decisions_total", "counter"),
            ("rejections_by_rule_total", "counter"),
            ("trading_state", "gauge"),
            ("stage_seconds", "histogram"),
        ] {
            assert!(
                text.contains(&format!("# TYPE sim_train_live_{name} {kind}\n")),
                "{name} in\n{text}"
            );
        }
        assert!(text.contains("sim_train_live_position_shares{symbol=\"A\"} 5\n"));
        // Label values are escaped.
        assert!(text.contains("sim_train_live_position_shares{symbol=\"B\\\"x\"} -3\n"));
        assert!(text.contains("sim_train_live_decisions_total 7\n"));
        assert!(text.contains("sim_train_live_equity_usd 1234.5\n"));
        assert!(text.contains("sim_train_live_rejections_by_rule_total{rule=\"max_gross\"} 1\n"));
        assert!(text.contains("sim_train_live_trading_state{state=\"reducing\"} 1\n"));
        assert!(text.contains("sim_train_live_trading_state{state=\"active\"} 0\n"));
    }

    #[test]
    fn rules_are_named_from_the_risk_managers_reasons() {
        assert_eq!(rule_of("halted: flatten only"), "halted");
        assert_eq!(
            rule_of("max gross exposure 100000 $ (0 $ in other symbols)"),
            "max_gross"
        );
        assert_eq!(
            rule_of("120 s to the close: flatten (flatten_before_close_secs = 120)"),
            "flatten_before_close"
        );
        assert_eq!(rule_of("something new"), "other");
    }
}
