//! The live loop's metrics, in the Prometheus text exposition format (served on loopback
//! by [`super::control::serve`]): positions, equity, P&L, counters of decisions, orders,
//! fills, rejections (by rule) and bad bars, the trading state, feed lag, and a latency
//! histogram per stage of the loop.

use super::risk::TradingState;
use std::fmt::Write;

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

/// Upper bounds of the latency buckets, µs (1 µs to 100 ms, then +Inf), and their `le`
/// labels in seconds.
const BUCKETS_US: [f64; 15] = [
    1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1e3, 2e3, 5e3, 1e4, 5e4, 1e5,
];
const BUCKET_LABELS: [&str; 15] = [
    "0.000001", "0.000002", "0.000005", "0.00001", "0.00002", "0.00005", "0.0001", "0.0002",
    "0.0005", "0.001", "0.002", "0.005", "0.01", "0.05", "0.1",
];

/// A cumulative latency histogram.
#[derive(Clone, Debug, Default)]
pub struct Histogram {
    /// Observations at or under each bound (not cumulative; summed when rendered).
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

    /// The Prometheus text format.
    pub fn render(&self) -> String {
        let mut o = String::new();
        let mut metric = |name: &str, kind: &str, help: &str| {
            let _ = writeln!(o, "# HELP sim_train_live_{name} {help}");
            let _ = writeln!(o, "# TYPE sim_train_live_{name} {kind}");
        };
        metric("position_shares", "gauge", "Shares held per symbol.");
        let mut body = String::new();
        for (s, p) in self.symbols.iter().zip(&self.positions) {
            let _ = writeln!(
                body,
                "sim_train_live_position_shares{{symbol=\"{}\"}} {p}",
                escape(s)
            );
        }
        o.push_str(&body);
        let scalars: [(&str, &str, &str, f64); 12] = [
            (
                "equity_usd",
                "gauge",
                "Equity of every account, marked at the last bar.",
                self.equity,
            ),
            (
                "realized_pnl_usd",
                "gauge",
                "Realized P&L before costs, from the journal's fills.",
                self.realized,
            ),
            (
                "costs_usd",
                "gauge",
                "Commission, spread, impact and borrow paid.",
                self.costs,
            ),
            (
                "decisions_total",
                "counter",
                "Decisions of the policy.",
                self.decisions as f64,
            ),
            (
                "orders_total",
                "counter",
                "Orders sent to the broker.",
                self.orders as f64,
            ),
            (
                "fills_total",
                "counter",
                "Fills from the broker.",
                self.fills as f64,
            ),
            (
                "rejections_total",
                "counter",
                "Decisions the risk manager cut.",
                self.rejections as f64,
            ),
            (
                "broker_rejects_total",
                "counter",
                "Orders the broker would not take.",
                self.broker_rejects as f64,
            ),
            (
                "inputs_total",
                "counter",
                "Stream lines taken (journaled).",
                self.inputs as f64,
            ),
            (
                "bad_bars_total",
                "counter",
                "Feed lines refused (malformed, out of order, unknown symbol).",
                self.bad_bars as f64,
            ),
            (
                "duplicate_bars_total",
                "counter",
                "Resent feed lines skipped.",
                self.duplicates as f64,
            ),
            (
                "feed_lag_seconds",
                "gauge",
                "Last stream bar: its close to its receipt.",
                self.feed_lag_s,
            ),
        ];
        for (name, kind, help, v) in scalars {
            let mut o2 = String::new();
            let _ = writeln!(o2, "# HELP sim_train_live_{name} {help}");
            let _ = writeln!(o2, "# TYPE sim_train_live_{name} {kind}");
            let _ = writeln!(o2, "sim_train_live_{name} {v}");
            o.push_str(&o2);
        }
        let _ = writeln!(
            o,
            "# HELP sim_train_live_rejections_by_rule_total Decisions cut, by the first rule that cut."
        );
        let _ = writeln!(o, "# TYPE sim_train_live_rejections_by_rule_total counter");
        for (rule, n) in &self.rejections_by_rule {
            let _ = writeln!(
                o,
                "sim_train_live_rejections_by_rule_total{{rule=\"{}\"}} {n}",
                escape(rule)
            );
        }
        let _ = writeln!(
            o,
            "# HELP sim_train_live_trading_state The trading state (1 for the current one)."
        );
        let _ = writeln!(o, "# TYPE sim_train_live_trading_state gauge");
        for (st, name) in [
            (TradingState::Active, "active"),
            (TradingState::Reducing, "reducing"),
            (TradingState::Halted, "halted"),
        ] {
            let _ = writeln!(
                o,
                "sim_train_live_trading_state{{state=\"{name}\"}} {}",
                u8::from(self.state == st)
            );
        }
        let _ = writeln!(
            o,
            "# HELP sim_train_live_stage_seconds Latency of each stage of the loop."
        );
        let _ = writeln!(o, "# TYPE sim_train_live_stage_seconds histogram");
        for ((_, name), h) in STAGES.iter().zip(&self.stages) {
            let mut cum = 0;
            for (le, n) in BUCKET_LABELS.iter().zip(&h.counts) {
                cum += n;
                let _ = writeln!(
                    o,
                    "sim_train_live_stage_seconds_bucket{{stage=\"{name}\",le=\"{le}\"}} {cum}"
                );
            }
            let _ = writeln!(
                o,
                "sim_train_live_stage_seconds_bucket{{stage=\"{name}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                o,
                "sim_train_live_stage_seconds_sum{{stage=\"{name}\"}} {}",
                h.sum_us * 1e-6
            );
            let _ = writeln!(
                o,
                "sim_train_live_stage_seconds_count{{stage=\"{name}\"}} {}",
                h.count
            );
        }
        o
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

/// A label value with `\`, `"` and newlines escaped.
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_labels_are_the_bounds_in_seconds() {
        for (us, le) in BUCKETS_US.iter().zip(BUCKET_LABELS) {
            assert_eq!(le.parse::<f64>().unwrap(), us / 1e6, "{le}");
        }
    }

    #[test]
    fn histogram_buckets_are_cumulative_and_end_in_the_count() {
        let mut m = LiveMetrics::new(&["A".into()]);
        for us in [0.5, 3.0, 3.0, 150.0, 1e9] {
            m.stage(Stage::Policy, us);
        }
        let text = m.render();
        let line = |le: &str| {
            let key =
                format!("sim_train_live_stage_seconds_bucket{{stage=\"policy\",le=\"{le}\"}} ");
            text.lines()
                .find_map(|l| l.strip_prefix(&key))
                .unwrap_or_else(|| panic!("no bucket {le} in\n{text}"))
                .to_string()
        };
        assert_eq!(line("0.000001"), "1");
        assert_eq!(line("0.000005"), "3");
        assert_eq!(line("0.0002"), "4");
        assert_eq!(line("0.1"), "4");
        assert_eq!(line("+Inf"), "5");
        assert!(text.contains("sim_train_live_stage_seconds_count{stage=\"policy\"} 5"));
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
