//! Backtests (`sim-train backtest`): every bad positions file is refused naming its row;
//! positions files run end to end on real LEAN SPY minute and second bars with the
//! accounting identities checked across report.json, equity.csv and trades.csv;
//! buy-and-hold reproduces a day's P&L computed by hand from the cached bars (with quotes
//! and without); the rule baselines are causal and match hand-worked signals; baselines
//! run on a synthetic cache.

mod common;

use chrono::NaiveDate;
use common::sim_train;
use predicates::prelude::*;
use serde_json::Value;
use sim_train::backtest::baselines::{sma_cross_targets, vwap_revert_targets};
use sim_train::backtest::{self, Backtest, Baseline};
use sim_train::bars::BarSize;
use sim_train::build::{BuildRequest, build_cache};
use sim_train::cache::{Catalog, DayCache, day_path};
use sim_train::clock::{iso_ny, utc_ns};
use sim_train::config::Resolved;
use sim_train::env::{DayData, DaySelection, load_days};
use sim_train::features::feature_index;
use sim_train::ingest::SourceKind;
use std::path::{Path, PathBuf};

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

fn resolved(sets: &[&str]) -> Resolved {
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    sim_train::config::load(None, &sets).unwrap_or_else(|e| panic!("{e}"))
}

/// A synthetic 1-minute cache: 2 symbols × 3 days, no momentum days (so no halts).
fn synth_cache(dir: &Path) -> PathBuf {
    common::synth_cache(
        dir,
        &[
            "synth.symbols=2",
            "synth.days=3",
            "synth.bar=1m",
            "synth.momentum_share=0.0",
            "synth.seed=5",
        ],
    )
}

/// SPY from the LEAN samples, 2013-10-07..11, at `bar` (minute and second files both
/// carry quotes).
fn spy_cache(data: &Path, dir: &Path, bar: BarSize) -> PathBuf {
    let cache = dir.join(format!("spy-{}", bar.as_str()));
    let req = BuildRequest {
        source: SourceKind::Lean,
        input: Some(data.join("lean")),
        cache_dir: cache.clone(),
        symbols: Some(vec!["SPY".into()]),
        from: Some(d(2013, 10, 7)),
        to: Some(d(2013, 10, 11)),
        bar,
        adjust: sim_train::adjust::AdjustMode::None,
    };
    build_cache(&req, &resolved(&[]), false).unwrap_or_else(|e| panic!("{e}"));
    cache
}

/// ISO time (New York offset) of `hh:mm:ss` on `date`.
fn at(date: NaiveDate, hms: &str) -> String {
    iso_ny(utc_ns(
        date,
        sim_train::env::params::parse_hms(hms).unwrap() as i64,
    ))
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn read_json(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

/// A CSV row: column name → cell.
type Row = std::collections::HashMap<String, String>;

/// Rows of a CSV file.
fn read_csv(p: &Path) -> Vec<Row> {
    let text = std::fs::read_to_string(p).unwrap();
    let mut lines = text.lines();
    let header: Vec<String> = lines.next().unwrap().split(',').map(String::from).collect();
    lines
        .map(|l| {
            header
                .iter()
                .cloned()
                .zip(l.split(',').map(String::from))
                .collect()
        })
        .collect()
}

fn f(row: &Row, col: &str) -> f64 {
    row[col]
        .parse()
        .unwrap_or_else(|_| panic!("{col} = {}", row[col]))
}

// ---------------------------------------------------------------------------------------
// Bad positions files.

#[test]
fn every_bad_positions_file_is_refused_naming_its_row() {
    let dir = tempfile::tempdir().unwrap();
    let cache = synth_cache(dir.path());
    let cat = Catalog::load(&cache).unwrap();
    let (sym, day0) = cat.entries.keys().next().unwrap().clone();
    let day1 = cat.entries.keys().nth(1).unwrap().1;
    let ok = |t: &str| at(day0, t);
    let config = resolved(&[]).config;
    let run = |name: &str, text: &str, cfg: &sim_train::config::Config| {
        let p = write(dir.path(), name, text);
        let e = backtest::run_positions(&cache, &p, cfg).expect_err(text);
        assert_eq!(e.exit_code(), 3, "{e}");
        let msg = e.to_string();
        assert!(msg.contains(&p.display().to_string()), "{msg}");
        msg
    };
    let good = |row: &str| format!("symbol,ts,target\n{sym},{},1\n{row}\n", ok("10:00:00"));
    let row2 = |ts: &str, target: &str| good(&format!("{sym},{ts},{target}"));
    // Times outside the cached sessions: before the first session bar and at the close
    // of a cached day, a day that is not cached (a Saturday), epoch seconds mistaken for
    // nanoseconds (1970).
    let later = |t: &str| {
        format!(
            "symbol,ts,target\n{sym},{},1\n{sym},{},0\n",
            ok("10:00:00"),
            at(day1, t)
        )
    };
    let only = |ts: &str| format!("symbol,ts,target\n{sym},{ts},0\n");
    let long_only = resolved(&["env.allow_short=false", "env.actions=[0.0, 1.0]"]).config;
    let cases: Vec<(&str, String, &sim_train::config::Config, Vec<&str>)> = vec![
        (
            "a.csv",
            format!("symbol,time,target\n{sym},{},1\n", ok("10:00:00")),
            &config,
            vec!["missing column 'ts'", "symbol, ts, target"],
        ),
        (
            "b.csv",
            row2("10:05", "0"),
            &config,
            vec!["row 2", "'10:05'", "ISO-8601"],
        ),
        (
            "c.csv",
            good(&format!("NOPE,{},0", ok("10:05:00"))),
            &config,
            vec!["row 2", "'NOPE'", "not in the cache"],
        ),
        (
            "d.csv",
            row2(&ok("09:45:00"), "0"),
            &config,
            vec!["row 2", "is before row 1", "increasing time"],
        ),
        (
            "e.csv",
            row2(&ok("10:00:00"), "0"),
            &config,
            vec!["row 2", "repeats row 1", "drop duplicates"],
        ),
        (
            "f.csv",
            row2(&ok("10:05:00"), "1.5"),
            &config,
            vec!["row 2", "target 1.5", "[-1, 1]"],
        ),
        (
            "g.csv",
            row2(&ok("10:05:00"), "NaN"),
            &config,
            vec!["row 2", "target NaN", "[-1, 1]"],
        ),
        (
            "h.csv",
            row2(&ok("10:05:00"), "abc"),
            &config,
            vec!["row 2", "'abc'", "not a number"],
        ),
        (
            "i.csv",
            row2(&ok("10:05:00"), "-0.5"),
            &long_only,
            vec!["row 2", "-0.5", "env.allow_short = false"],
        ),
        (
            "j.csv",
            later("08:00:00"),
            &config,
            vec![
                "row 2",
                "outside the cached sessions",
                "before the first session bar",
            ],
        ),
        (
            "k.csv",
            later("16:00:00"),
            &config,
            vec!["row 2", "outside the cached sessions", "session close"],
        ),
        (
            "l.csv",
            only(&at(d(2024, 1, 6), "10:00:00")),
            &config,
            vec![
                "row 1",
                "outside the cached sessions",
                "2024-01-06 is not a cached day",
            ],
        ),
        (
            "m.csv",
            only("1704207600"),
            &config,
            vec!["row 1", "1704207600", "outside the cached sessions"],
        ),
        ("n.csv", "symbol,ts,target\n".into(), &config, vec!["empty"]),
        ("o.csv", String::new(), &config, vec!["empty"]),
        (
            "p.csv",
            row2("", "0.5"),
            &config,
            vec!["row 2", "'ts' is empty"],
        ),
        // Not a table type the reader knows.
        ("q.txt", good(""), &config, vec![".csv or .parquet"]),
    ];
    for (name, text, cfg, parts) in cases {
        let msg = run(name, &text, cfg);
        for p in parts {
            assert!(msg.contains(p), "{name}: '{p}' missing in: {msg}");
        }
    }
}

#[test]
fn the_cli_refuses_bad_input_with_one_line_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cache = synth_cache(dir.path());
    let cat = Catalog::load(&cache).unwrap();
    let (sym, day0) = cat.entries.keys().next().unwrap().clone();
    let out = dir.path().join("out");
    let bad = write(
        dir.path(),
        "bad.csv",
        &format!(
            "symbol,ts,target\n{sym},{},0.5\n{sym},{},2\n",
            at(day0, "10:00:00"),
            at(day0, "10:01:00")
        ),
    );
    sim_train()
        .args(["-q", "backtest", "--cache"])
        .arg(&cache)
        .arg("--positions")
        .arg(&bad)
        .arg("--out")
        .arg(&out)
        .assert()
        .code(3)
        .stderr(predicate::str::contains("bad.csv"))
        .stderr(predicate::str::contains(
            "row 2: target 2 is outside [-1, 1]",
        ))
        .stderr(predicate::function(|s: &str| s.trim().lines().count() == 1));
    assert!(!out.exists(), "nothing may be written after an error");

    // --positions and --baseline: exactly one.
    sim_train()
        .args(["backtest", "--baseline", "flat", "--cache"])
        .arg(&cache)
        .arg("--positions")
        .arg(&bad)
        .arg("--out")
        .arg(&out)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("cannot be used with"));
    sim_train()
        .args(["backtest", "--cache"])
        .arg(&cache)
        .arg("--out")
        .arg(&out)
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("--positions").and(predicate::str::contains("--baseline")),
        );
    // Unknown symbol for a baseline: not found.
    sim_train()
        .args([
            "backtest",
            "--baseline",
            "flat",
            "--symbols",
            "NOPE",
            "--cache",
        ])
        .arg(&cache)
        .arg("--out")
        .arg(&out)
        .assert()
        .code(5)
        .stderr(predicate::str::contains("NOPE"));
    assert!(!out.exists());
}

// ---------------------------------------------------------------------------------------
// Real data end to end.

/// Runs `backtest` through the CLI; returns (report, equity rows, trade rows).
fn cli_backtest(
    cache: &Path,
    out: &Path,
    source: &[&str],
    sets: &[&str],
) -> (Value, Vec<Row>, Vec<Row>) {
    let mut cmd = sim_train();
    cmd.args(["-q", "backtest", "--cache"])
        .arg(cache)
        .arg("--out")
        .arg(out)
        .args(source);
    for s in sets {
        cmd.args(["--set", s]);
    }
    cmd.assert()
        .success()
        .stdout(predicate::str::contains("backtest ("));
    for f in [
        "report.json",
        "equity.csv",
        "trades.csv",
        "config.resolved.toml",
    ] {
        assert!(out.join(f).is_file(), "{f}");
    }
    (
        read_json(&out.join("report.json")),
        read_csv(&out.join("equity.csv")),
        read_csv(&out.join("trades.csv")),
    )
}

/// The identities every run must satisfy, across the three output files.
fn check_identities(report: &Value, equity: &[Row], trades: &[Row]) {
    let p = &report["portfolio"];
    let initial = p["initial_equity"].as_f64().unwrap();
    let final_eq = p["final_equity"].as_f64().unwrap();
    // One symbol: the last equity row is the final equity, exactly.
    let last = equity.last().expect("equity rows");
    // (serde_json's default float parsing may differ from Rust's in the last bit.)
    assert!(
        (f(last, "equity") - final_eq).abs() < 1e-9,
        "{} vs {final_eq}",
        last["equity"]
    );
    assert_eq!(f(last, "position"), 0.0, "flat at the end");
    // Costs in trades.csv sum to the report's.
    let sum = |col: &str| trades.iter().map(|t| f(t, col)).sum::<f64>();
    let c = &p["costs"];
    for col in ["commission", "spread", "impact"] {
        assert!((sum(col) - c[col].as_f64().unwrap()).abs() < 1e-6, "{col}");
    }
    let borrow = c["borrow"].as_f64().unwrap();
    let all_costs = sum("commission") + sum("spread") + sum("impact") + borrow;
    assert!((all_costs - c["total"].as_f64().unwrap()).abs() < 1e-6);
    // final − initial = Σ realized + unrealized − all costs, to the cent.
    let unrealized = p["unrealized"].as_f64().unwrap();
    let lhs = final_eq - initial;
    let rhs = sum("realized_pnl") + unrealized - all_costs;
    assert!((lhs - rhs).abs() < 0.005, "{lhs} vs {rhs}");
    assert_eq!(p["fills"].as_u64().unwrap() as usize, trades.len());
    assert_eq!(p["bars_stepped"].as_u64().unwrap() as usize, equity.len());
    // Each equity row: equity = cash + position · price.
    for e in equity {
        let v = f(e, "cash") + f(e, "position") * f(e, "price");
        assert!((v - f(e, "equity")).abs() < 1e-6 * f(e, "equity").abs());
    }
    // exec_price = price ± (spread + impact) / shares.
    for t in trades {
        let q = f(t, "shares");
        let sign = if t["side"] == "buy" { 1.0 } else { -1.0 };
        let want = f(t, "price") + sign * (f(t, "spread") + f(t, "impact")) / q;
        assert!((f(t, "exec_price") - want).abs() < 1e-9);
    }
}

#[test]
fn positions_files_run_end_to_end_on_spy_minute_and_second_bars() {
    let Some(data) =
        common::shared_data("positions_files_run_end_to_end_on_spy_minute_and_second_bars")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for bar in [BarSize::M1, BarSize::S1] {
        let cache = spy_cache(&data, dir.path(), bar);
        let (d7, d8, d9, d10) = (
            d(2013, 10, 7),
            d(2013, 10, 8),
            d(2013, 10, 9),
            d(2013, 10, 10),
        );
        // Long, short, flat on the 7th; long half on the 8th, held through the 9th (no row
        // that day) and closed on the 10th; times with fractions of a second and in
        // epoch nanoseconds.
        let ns = |date, t| utc_ns(date, sim_train::env::params::parse_hms(t).unwrap() as i64);
        let text = format!(
            "symbol,ts,target\nSPY,{},1\nSPY,{},-0.5\nSPY,{},0\nspy,{},0.5\nSPY,{},0.25\nSPY,{},0\n",
            at(d7, "09:35:00"),
            at(d7, "10:00:00").replace("-04:00", ".5-04:00"),
            ns(d7, "11:00:00"),
            at(d8, "10:00:00"),
            at(d10, "12:00:00"),
            at(d10, "14:00:00"),
        );
        let file = write(dir.path(), &format!("pos-{}.csv", bar.as_str()), &text);
        let out = dir.path().join(format!("out-{}", bar.as_str()));
        let (report, equity, trades) = cli_backtest(
            &cache,
            &out,
            &["--positions", file.to_str().unwrap()],
            &["env.daily_loss_limit=0"],
        );
        check_identities(&report, &equity, &trades);
        assert_eq!(report["source"]["kind"], "positions");
        // Every cached day from the first row's date to the last row's, and no more.
        assert_eq!(report["data"]["first_date"], "2013-10-07");
        assert_eq!(report["data"]["last_date"], "2013-10-10");
        assert_eq!(report["data"]["days"], 4);
        assert_eq!(report["config"]["env"]["max_episode_steps"], 0);
        // The first order: decided at the 09:35 bar's close, filled at the next bar.
        let day_of = |t: &Row| t["ts"][..10].to_string();
        let first = &trades[0];
        assert_eq!(first["side"], "buy");
        let next_bar = if bar == BarSize::M1 {
            "09:36"
        } else {
            "09:35:0"
        };
        assert!(
            first["ts"].contains(&format!("T{next_bar}")),
            "{:?}",
            first["ts"]
        );
        // The 9th has no row but holds the 8th's target: bought at its first decision,
        // flattened (forced) at its close.
        let ninth: Vec<_> = trades
            .iter()
            .filter(|t| day_of(t) == d9.to_string())
            .collect();
        assert!(ninth.len() >= 2, "{ninth:?}");
        assert_eq!(ninth[0]["side"], "buy");
        assert_eq!(ninth[0]["forced"], "false");
        assert_eq!(ninth.last().unwrap()["forced"], "true");
        // A short was held on the 7th: borrow was paid; no position on the 11th.
        assert!(report["portfolio"]["costs"]["borrow"].as_f64().unwrap() > 0.0);
        assert!(!equity.iter().any(|e| e["ts"].starts_with("2013-10-11")));
        // A day of held targets: the 9th's buy was sized at its first decision (09:30).
        let lib =
            backtest::run_positions(&cache, &file, &resolved(&["env.daily_loss_limit=0"]).config)
                .unwrap();
        let cli_text = std::fs::read_to_string(out.join("report.json")).unwrap();
        assert_eq!(
            cli_text.trim_end(),
            lib.report_json(),
            "the CLI writes the library's report"
        );
        // Round trips: their net P&L adds up to the account's.
        let run = &lib.runs[0];
        let net: f64 = run.trips.iter().map(|t| t.net_pnl()).sum();
        assert!((net - (run.final_equity - run.initial_equity)).abs() < 1e-6);

        // The same schedule as Parquet with epoch nanoseconds gives the same report.
        let rows = backtest::read_positions(&file, true).unwrap();
        let mut df = polars::prelude::DataFrame::new_infer_height(vec![
            polars::prelude::Column::new(
                "symbol".into(),
                rows.iter().map(|r| r.symbol.clone()).collect::<Vec<_>>(),
            ),
            polars::prelude::Column::new(
                "ts".into(),
                rows.iter().map(|r| r.ts_ns).collect::<Vec<_>>(),
            ),
            polars::prelude::Column::new(
                "target".into(),
                rows.iter().map(|r| r.target).collect::<Vec<_>>(),
            ),
        ])
        .unwrap();
        let pq = dir.path().join(format!("pos-{}.parquet", bar.as_str()));
        sim_train::cache::export::write_frame(&mut df, &pq, true).unwrap();
        let lib_pq =
            backtest::run_positions(&cache, &pq, &resolved(&["env.daily_loss_limit=0"]).config)
                .unwrap();
        let json =
            |b: &Backtest| serde_json::to_value((&b.report.portfolio, &b.report.symbols)).unwrap();
        assert_eq!(json(&lib_pq), json(&lib));
        assert_eq!(lib_pq.trades_csv(), lib.trades_csv());

        // Flat: no trades, exactly zero return.
        let out_flat = dir.path().join(format!("flat-{}", bar.as_str()));
        let (report, equity, trades) =
            cli_backtest(&cache, &out_flat, &["--baseline", "flat"], &[]);
        assert!(trades.is_empty());
        let p = &report["portfolio"];
        assert_eq!(p["returns"]["total_return"].as_f64(), Some(0.0));
        assert_eq!(p["final_equity"], p["initial_equity"]);
        assert_eq!(p["trades"]["trades"], 0);
        assert_eq!(p["exposure"].as_f64(), Some(0.0));
        assert!(equity.iter().all(|e| f(e, "equity") == 100_000.0));
        assert_eq!(report["data"]["days"], 5);
    }
}

/// Costs of one fill, written out from the documented formulas (README, env::exec):
/// commission max(0.005·q, min), spread q·half-spread, impact q·p·k·σ·sqrt(q/volume)
/// with k = 1 (the defaults).
fn fill_costs(q: f64, price: f64, half: f64, sigma: f64, volume: f64, min: f64) -> f64 {
    let commission = (0.005 * q).max(min);
    let spread = q * half;
    let impact = q * price * 1.0 * sigma * (q / volume.max(1.0)).sqrt();
    commission + spread + impact
}

/// Buy-and-hold's P&L on one day computed from the cached bars: decide at the first
/// session bar's close, buy floor(max_usd / close) at the next bar (the mid of the quote
/// in force at its open — the first bar's closing quote — else its open, plus the
/// half-spread), sell at the last session bar's close with the half-width of the quote in
/// force at that bar's open.
fn buy_and_hold_by_hand(
    cache: &DayCache,
    max_usd: f64,
    half_spread_frac: f64,
    commission_min: f64,
) -> (f64, f64, f64, u64) {
    let m = cache.meta();
    let secs: Vec<i64> = (0..cache.rows()).map(|i| cache.sec_of_day(i)).collect();
    let s = secs
        .iter()
        .position(|&t| t >= m.session.open_sec as i64)
        .unwrap();
    let last = secs
        .iter()
        .rposition(|&t| t < m.session.close_sec as i64)
        .unwrap();
    let close = |i: usize| cache.closes()[i].dollars();
    let atr = cache.feature(feature_index("atr_ratio_14").unwrap());
    let sigma = |i: usize| atr[i - 1].max(0.0) as f64;
    let volume = |i: usize| (cache.volumes()[i] as f32) as f64;
    let quote = |i: usize| match (cache.bid(), cache.ask()) {
        (Some(b), Some(a)) if b[i].0 > 0 && a[i].0 >= b[i].0 => {
            let (b, a) = (b[i].dollars(), a[i].dollars());
            Some(((b + a) / 2.0, (a - b) / 2.0))
        }
        _ => None,
    };
    let q = (max_usd / close(s)).floor();
    let (p_in, h_in) = quote(s).unwrap_or((
        cache.opens()[s + 1].dollars(),
        cache.opens()[s + 1].dollars() * half_spread_frac,
    ));
    let p_out = close(last);
    let h_out = quote(last - 1).map_or(p_out * half_spread_frac, |(_, h)| h);
    let costs = fill_costs(q, p_in, h_in, sigma(s + 1), volume(s + 1), commission_min)
        + fill_costs(q, p_out, h_out, sigma(last), volume(last), commission_min);
    (q * (p_out - p_in) - costs, p_in, p_out, q as u64)
}

fn one_day(cache: &Path, sym: &str, date: NaiveDate, sets: &[&str]) -> Backtest {
    let sel = DaySelection {
        symbols: Some(vec![sym.into()]),
        from: Some(date),
        to: Some(date),
    };
    backtest::run_baseline(cache, Baseline::BuyAndHold, &sel, &resolved(sets).config).unwrap()
}

#[test]
fn buy_and_hold_earns_what_the_bars_say_with_quotes() {
    let Some(data) = common::shared_data("buy_and_hold_earns_what_the_bars_say_with_quotes") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cache = spy_cache(&data, dir.path(), BarSize::M1);
    for date in [d(2013, 10, 7), d(2013, 10, 10)] {
        let day = DayCache::open(day_path(&cache, "SPY", date)).unwrap();
        assert!(day.bid().is_some(), "LEAN minute SPY has quotes");
        let (pnl, p_in, p_out, q) = buy_and_hold_by_hand(&day, 100_000.0, 1e-4, 1.0);
        let bt = one_day(&cache, "SPY", date, &["env.daily_loss_limit=0"]);
        let run = &bt.runs[0];
        // The participation cap (10 % of the fill bar's volume) does not bind here.
        assert_eq!(run.trades.len(), 2, "{:?}", run.trades);
        let (buy, sell) = (&run.trades[0].fill, &run.trades[1].fill);
        assert_eq!((buy.shares, sell.shares), (q as i64, -(q as i64)));
        assert!(sell.forced);
        assert!((buy.price - p_in).abs() < 1e-9 && (sell.price - p_out).abs() < 1e-9);
        let got = run.final_equity - run.initial_equity;
        assert!((got - pnl).abs() < 1e-6, "{date}: {got} vs {pnl} by hand");
        assert_eq!(bt.report.portfolio.exposure, 1.0);
        // Held from the second session bar's open to the session close.
        assert_eq!(run.trips.len(), 1);
        assert_eq!(run.trips[0].holding_secs(), 389.0 * 60.0);
    }
}

#[test]
fn buy_and_hold_earns_what_the_bars_say_without_quotes() {
    let dir = tempfile::tempdir().unwrap();
    let cache = synth_cache(dir.path());
    let cat = Catalog::load(&cache).unwrap();
    let sets = [
        "env.daily_loss_limit=0",
        "env.max_position_usd=2000",
        "env.execution.participation=1.0",
        "env.costs.half_spread_bps=5",
        "env.costs.commission_min=0.1",
    ];
    let mut checked = 0;
    for (sym, date) in cat.entries.keys() {
        let day = DayCache::open(day_path(&cache, sym, *date)).unwrap();
        assert!(day.bid().is_none());
        let (pnl, _, _, q) = buy_and_hold_by_hand(&day, 2000.0, 5e-4, 0.1);
        let bt = one_day(&cache, sym, *date, &sets);
        let run = &bt.runs[0];
        if run.trades.len() != 2 || run.trades[0].fill.shares as u64 != q {
            // The fill bar traded fewer shares than the order: not a hand-checkable day.
            continue;
        }
        let got = run.final_equity - run.initial_equity;
        assert!(
            (got - pnl).abs() < 1e-6,
            "{sym} {date}: {got} vs {pnl} by hand"
        );
        checked += 1;
    }
    assert!(checked >= 2, "only {checked} hand-checkable days");
}

#[test]
fn loss_limit_ends_the_day_and_equity_carries() {
    let Some(data) = common::shared_data("loss_limit_ends_the_day_and_equity_carries") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cache = spy_cache(&data, dir.path(), BarSize::M1);
    let sel = DaySelection::default();
    let cfg = resolved(&["env.daily_loss_limit=0.002"]).config;
    let bt = backtest::run_baseline(&cache, Baseline::BuyAndHold, &sel, &cfg).unwrap();
    let run = &bt.runs[0];
    assert!(bt.report.portfolio.loss_limit_days >= 1);
    for w in run.days.windows(2) {
        assert_eq!(w[1].start_equity, w[0].end_equity);
    }
    let limited = run
        .days
        .iter()
        .find(|d| d.ended == backtest::engine::DayEnd::LossLimit)
        .unwrap();
    assert!(limited.steps < 389);
    assert!(limited.end_equity - limited.start_equity <= -0.002 * limited.start_equity);
}

// ---------------------------------------------------------------------------------------
// Rule baselines: signals and causality.

#[test]
fn sma_cross_matches_a_hand_worked_series() {
    // fast 2, slow 3. t=2: (11+12)/2 = 11.5 > 11 → 1; t=3: 11.5 > 11.33 → 1;
    // t=4: 10.5 < 11 → 0; t=5: 10 < 10.33 → 0; t=6: 10 = 10 (equal is not above) → 0.
    let closes = [10.0, 11.0, 12.0, 11.0, 10.0, 10.0, 10.0];
    assert_eq!(
        sma_cross_targets(&closes, 2, 3),
        vec![0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0]
    );
    // A constant price whose float means differ in the last bit is never a crossing.
    assert!(
        sma_cross_targets(&[100.07; 200], 20, 60)
            .iter()
            .all(|&t| t == 0.0)
    );
    // Undefined until the slow window is full.
    let rising: Vec<f64> = (0..10).map(|i| 50.0 + i as f64).collect();
    assert_eq!(
        sma_cross_targets(&rising, 2, 5),
        vec![0., 0., 0., 0., 1., 1., 1., 1., 1., 1.]
    );
}

#[test]
fn vwap_revert_matches_a_hand_worked_series() {
    // entry 0.003, exit 0.0005: below −entry → long; above entry → short (or flat when
    // long-only); within exit → flat; in between → hold.
    let dev = [0.0, -0.004, -0.002, -0.0004, 0.001, 0.004, 0.002, 0.0001];
    assert_eq!(
        vwap_revert_targets(&dev, 0.003, 0.0005, true),
        vec![0.0, 1.0, 1.0, 0.0, 0.0, -1.0, -1.0, 0.0]
    );
    assert_eq!(
        vwap_revert_targets(&dev, 0.003, 0.0005, false),
        vec![0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    );
}

/// `day` cut after row `t`, as if the day had stopped there.
fn truncated(day: &DayData, t: usize) -> DayData {
    DayData::assemble(
        day.symbol.clone(),
        day.date,
        day.bar,
        day.midnight_ns,
        day.bars[..=t].to_vec(),
        day.features[..(t + 1) * day.k].to_vec(),
        day.k,
        (day.bars[day.first_row as usize].ts_ms, day.close_ms),
        day.halts.clone(),
    )
}

fn check_causal(days: &[std::sync::Arc<DayData>], cfg: &sim_train::config::Config) {
    for baseline in [
        Baseline::SmaCross,
        Baseline::VwapRevert,
        Baseline::BuyAndHold,
    ] {
        let mut active = false;
        for day in days {
            let full = baseline.day_targets(day, &day.features, &cfg.backtest, true);
            active |= full.iter().any(|&t| t != 0.0);
            for t in (day.first_row as usize..day.rows()).step_by(7) {
                let cut = truncated(day, t);
                let part = baseline.day_targets(&cut, &cut.features, &cfg.backtest, true);
                assert_eq!(
                    part[..],
                    full[..=t],
                    "{baseline:?} {} {} t={t}",
                    day.symbol,
                    day.date
                );
            }
        }
        assert!(
            active,
            "{baseline:?} never left flat: the test would prove nothing"
        );
    }
}

#[test]
fn rule_baselines_are_causal_on_real_and_synthetic_days() {
    let cfg = resolved(&[
        "backtest.sma_fast=5",
        "backtest.sma_slow=15",
        "backtest.vwap_entry=0.001",
        "backtest.vwap_exit=0.0002",
    ])
    .config;
    let params = backtest::backtest_params(&cfg).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let synth = synth_cache(dir.path());
    check_causal(
        &load_days(&synth, &DaySelection::default(), &params).unwrap(),
        &cfg,
    );
    if let Some(data) = common::shared_data("rule_baselines_are_causal_on_real_and_synthetic_days")
    {
        let cache = spy_cache(&data, dir.path(), BarSize::M1);
        let sel = DaySelection {
            symbols: None,
            from: Some(d(2013, 10, 7)),
            to: Some(d(2013, 10, 8)),
        };
        let days = load_days(&cache, &sel, &params).unwrap();
        check_causal(&days, &cfg);
        // The baseline's vwap_dev is the cache's feature, row for row.
        let cached = DayCache::open(day_path(&cache, "SPY", d(2013, 10, 7))).unwrap();
        assert_eq!(
            &*days[0].features,
            cached.feature(feature_index("vwap_dev").unwrap())
        );
    }
}

#[test]
fn sma_cross_trades_where_its_signal_changes() {
    // The engine buys at the bar after each 0 → 1 change of the signal and sells after
    // each 1 → 0 change (or at the close).
    let dir = tempfile::tempdir().unwrap();
    let cache = synth_cache(dir.path());
    let sets = [
        "env.daily_loss_limit=0",
        "env.max_position_usd=500",
        "env.execution.participation=1.0",
    ];
    let cfg = resolved(&sets).config;
    let params = backtest::backtest_params(&cfg).unwrap();
    let days = load_days(&cache, &DaySelection::default(), &params).unwrap();
    let day = &days[0];
    let targets = Baseline::SmaCross.day_targets(day, &day.features, &cfg.backtest, true);
    let sel = DaySelection {
        symbols: Some(vec![day.symbol.clone()]),
        from: Some(day.date),
        to: Some(day.date),
    };
    let bt = backtest::run_baseline(&cache, Baseline::SmaCross, &sel, &cfg).unwrap();
    let start = day.start_row_at(34_200).unwrap() as usize;
    let mut expected = Vec::new();
    let mut prev = 0.0;
    for (t, &target) in targets
        .iter()
        .enumerate()
        .take(day.last_row as usize)
        .skip(start)
    {
        if target != prev {
            expected.push((
                day.bars[t + 1].ts_ms,
                if target > 0.0 { "buy" } else { "sell" },
            ));
        }
        prev = target;
    }
    let got: Vec<(u32, &str)> = bt.runs[0]
        .trades
        .iter()
        .filter(|t| !t.fill.forced)
        .map(|t| (t.fill.ts_ms, if t.fill.shares > 0 { "buy" } else { "sell" }))
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(got, expected);
}

// ---------------------------------------------------------------------------------------
// Baselines on a synthetic cache.

#[test]
fn every_baseline_runs_on_a_synthetic_cache() {
    let dir = tempfile::tempdir().unwrap();
    let cache = synth_cache(dir.path());
    for name in ["flat", "buy-and-hold", "sma-cross", "vwap-revert"] {
        let out = dir.path().join(name);
        let (report, equity, trades) = cli_backtest(
            &cache,
            &out,
            &["--baseline", name],
            &["backtest.sma_slow=30"],
        );
        assert_eq!(report["source"]["name"], name);
        let p = &report["portfolio"];
        assert_eq!(report["symbols"].as_array().unwrap().len(), 2);
        assert_eq!(report["data"]["symbol_days"], 6);
        // The portfolio is the sum of the accounts.
        let sum: f64 = report["symbols"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["final_equity"].as_f64().unwrap())
            .sum();
        assert!((sum - p["final_equity"].as_f64().unwrap()).abs() < 1e-6);
        assert_eq!(p["initial_equity"].as_f64(), Some(200_000.0));
        let sum_costs: f64 = trades
            .iter()
            .map(|t| f(t, "commission") + f(t, "spread") + f(t, "impact"))
            .sum();
        let c = &p["costs"];
        assert!(
            (sum_costs + c["borrow"].as_f64().unwrap() - c["total"].as_f64().unwrap()).abs() < 1e-6
        );
        let realized: f64 = trades.iter().map(|t| f(t, "realized_pnl")).sum();
        let pnl = p["final_equity"].as_f64().unwrap() - 200_000.0;
        assert!((pnl - (realized - c["total"].as_f64().unwrap())).abs() < 0.005);
        assert_eq!(equity.len() as u64, p["bars_stepped"].as_u64().unwrap());
        if name == "flat" {
            assert!(trades.is_empty());
            assert_eq!(p["returns"]["total_return"].as_f64(), Some(0.0));
        } else if name == "buy-and-hold" {
            assert!(!trades.is_empty());
        }
    }
    // --symbols / --from / --to select days; --json prints the report.
    let cat = Catalog::load(&cache).unwrap();
    let (sym, first) = cat.entries.keys().next().unwrap().clone();
    let out = dir.path().join("one");
    let assert = sim_train()
        .args([
            "-q",
            "backtest",
            "--baseline",
            "buy-and-hold",
            "--json",
            "--symbols",
            &sym.to_lowercase(),
        ])
        .args([
            "--from",
            &first.to_string(),
            "--to",
            &first.to_string(),
            "--cache",
        ])
        .arg(&cache)
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    let printed: Value = serde_json::from_slice(&assert.get_output().stdout).unwrap();
    assert_eq!(printed, read_json(&out.join("report.json")));
    assert_eq!(printed["data"]["symbol_days"], 1);
    assert_eq!(printed["data"]["symbols"][0].as_str(), Some(sym.as_str()));
}

#[test]
fn a_portfolio_of_two_symbols_from_one_positions_file() {
    let dir = tempfile::tempdir().unwrap();
    let cache = synth_cache(dir.path());
    let cat = Catalog::load(&cache).unwrap();
    let syms = cat.symbols();
    let dates: Vec<NaiveDate> = cat
        .entries
        .keys()
        .filter(|(s, _)| *s == syms[0])
        .map(|(_, d)| *d)
        .collect();
    // Interleaved rows; the second symbol starts a day later.
    let text = format!(
        "symbol,ts,target\n{a},{},0.5\n{a},{},0\n{b},{},-0.5\n{a},{},1\n{b},{},0\n",
        at(dates[0], "10:00:00"),
        at(dates[0], "11:00:00"),
        at(dates[1], "10:30:00"),
        at(dates[1], "12:00:00"),
        at(dates[2], "10:00:00"),
        a = syms[0],
        b = syms[1],
    );
    let file = write(dir.path(), "two.csv", &text);
    let cfg = resolved(&["env.max_position_usd=1000", "env.daily_loss_limit=0"]).config;
    let bt = backtest::run_positions(&cache, &file, &cfg).unwrap();
    let r = &bt.report;
    assert_eq!(r.symbols.len(), 2);
    assert_eq!(
        r.symbols[0].days,
        2,
        "{a}: first row's date to last row's",
        a = syms[0]
    );
    assert_eq!(r.symbols[1].days, 2);
    assert_eq!(r.portfolio.days, 3);
    let sum: f64 = r.symbols.iter().map(|s| s.final_equity).sum();
    assert!((sum - r.portfolio.final_equity).abs() < 1e-9);
    // The portfolio's daily closes: day 1 only the first symbol moved.
    let daily = &r.portfolio.daily;
    let moved = r.symbols[0].daily[0].end_equity - 100_000.0;
    assert!(moved != 0.0);
    assert!((daily[0].end_equity - 200_000.0 - moved).abs() < 1e-9);
    assert_eq!(r.portfolio.returns.days, 3);
    // Round trips across both symbols net to the portfolio's P&L.
    let net: f64 = bt
        .runs
        .iter()
        .flat_map(|r| &r.trips)
        .map(|t| t.net_pnl())
        .sum();
    assert!((net - r.portfolio.pnl).abs() < 1e-6);
}
