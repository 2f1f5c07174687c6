//! The live layer on a stream of JSON bars (stdin, loopback TCP): the same decisions and
//! fills as a replay of the cache the bars came from (features computed bar by bar by
//! the cache builder's code), bad bars refused with their reasons, restarts after kills
//! that end exactly as an uninterrupted run, the kill switch by signal, commands and
//! metrics on the endpoint, and a journal write that fails leaving no fragment.

mod common;

use common::{LOOSE_RISK as LOOSE, exported};
use sim_train::cache::{Catalog, DayCache};
use sim_train::live::control::Command;
use sim_train::live::journal::{Book, Event, Journal, Record};
use sim_train::live::risk::TradingState;
use std::io::{BufRead, Read, Write};
use std::path::Path;
use std::process::Stdio;

const SYMBOLS: &str = "SYN000,SYN001";

/// The cache's bars as feed lines (RFC 3339 or integer timestamps alternately, the
/// closing quote and its sizes when there is one), in time order across symbols (the
/// cache's benchmark first within a bar time), from `from` on.
fn cache_lines(cache: &Path, from: Option<chrono::NaiveDate>) -> Vec<String> {
    let catalog = Catalog::load_existing(cache).unwrap();
    let benchmark = catalog.settings.as_ref().and_then(|s| s.benchmark.clone());
    let mut rows: Vec<(i64, bool, String, String)> = Vec::new();
    for e in catalog.entries.values() {
        if from.is_some_and(|f| e.date < f) {
            continue;
        }
        let day = DayCache::open(cache.join(&e.file)).unwrap();
        let halts = &day.meta().halts;
        let (ts, o, h, l, c, v) = (
            day.ts_ns(),
            day.opens(),
            day.highs(),
            day.lows(),
            day.closes(),
            day.volumes(),
        );
        let quotes = day.bid().zip(day.ask());
        let sizes = day.bid_size().zip(day.ask_size());
        for i in 0..day.rows() {
            let mut bar = serde_json::json!({
                "symbol": e.symbol,
                "ts": if i % 2 == 0 {
                    serde_json::json!(ts[i])
                } else {
                    serde_json::json!(sim_train::clock::iso_ny(ts[i]))
                },
                "open": o[i].dollars(),
                "high": h[i].dollars(),
                "low": l[i].dollars(),
                "close": c[i].dollars(),
                "volume": v[i],
            });
            if let Some((b, a)) = quotes
                && b[i].0 > 0
                && a[i].0 >= b[i].0
            {
                bar["bid"] = serde_json::json!(b[i].dollars());
                bar["ask"] = serde_json::json!(a[i].dollars());
                if let Some((bs, az)) = sizes {
                    bar["bid_size"] = serde_json::json!(bs[i]);
                    bar["ask_size"] = serde_json::json!(az[i]);
                }
            }
            if halts
                .iter()
                .any(|x| ts[i] >= x.start_ns && ts[i] < x.end_ns)
            {
                bar["halted"] = serde_json::json!(true);
            }
            let first = benchmark.as_ref() != Some(&e.symbol);
            rows.push((ts[i], first, e.symbol.clone(), bar.to_string()));
        }
    }
    rows.sort();
    rows.into_iter().map(|r| r.3).collect()
}

fn live(bundle: &Path, feed: &str, journal: &Path, extra: &[&str]) -> std::process::Command {
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("sim-train"));
    cmd.arg("-q");
    for s in LOOSE {
        cmd.args(["--set", s]);
    }
    cmd.args(["live", "--policy"])
        .arg(bundle)
        .args(["--feed", feed, "--no-fsync", "--journal"])
        .arg(journal)
        .args(extra);
    cmd
}

/// Runs `cmd` with `lines` on its stdin to the end (stdout and stderr captured).
fn feed(cmd: &mut std::process::Command, lines: &[String]) -> std::process::Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let text = lines.join("\n") + "\n";
    // A run that stops early (an error) closes its stdin: the rest is not wanted.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(text.as_bytes());
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

/// Runs a stream with `lines` on stdin to the end; its stdout.
fn stream_run(bundle: &Path, journal: &Path, lines: &[String], extra: &[&str]) -> String {
    let mut cmd = live(bundle, "stdin", journal, &["--symbols", SYMBOLS]);
    cmd.args(extra);
    let out = feed(&mut cmd, lines);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn records(path: &Path) -> Vec<Record> {
    Journal::open(path, false).unwrap().records
}

/// Records without the stream's inputs (times and events).
fn derived(records: &[Record]) -> Vec<(i64, Event)> {
    records
        .iter()
        .filter(|r| !matches!(r.event, Event::Input { .. }))
        .map(|r| (r.ts_ns, r.event.clone()))
        .collect()
}

/// A trained bundle and the feed lines of its cache's last day (2024-01-05, two
/// symbols, 04:00 to 20:00).
fn one_day(dir: &Path) -> (std::path::PathBuf, Vec<String>) {
    let (bundle, cache) = exported(dir);
    let day = chrono::NaiveDate::from_ymd_opt(2024, 1, 5).unwrap();
    (bundle, cache_lines(&cache, Some(day)))
}

fn count(records: &[Record], f: impl Fn(&Event) -> bool) -> usize {
    records.iter().filter(|r| f(&r.event)).count()
}

#[test]
fn a_stream_of_the_caches_bars_trades_exactly_as_its_replay() {
    let tmp = tempfile::tempdir().unwrap();
    let (bundle, cache) = exported(tmp.path());
    let replayed = tmp.path().join("replay.jsonl");
    let st = live(
        &bundle,
        &format!("replay:{}", cache.display()),
        &replayed,
        &[],
    )
    .status()
    .unwrap();
    assert!(st.success());
    let lines = cache_lines(&cache, None);
    let streamed = tmp.path().join("stream.jsonl");
    let out = stream_run(&bundle, &streamed, &lines, &[]);
    assert!(
        out.contains(&format!("stream: {} lines taken", lines.len())),
        "{out}"
    );
    let (r, s) = (records(&replayed), records(&streamed));
    assert_eq!(count(&s, |e| matches!(e, Event::Input { .. })), lines.len());
    assert!(count(&r, |e| matches!(e, Event::Decision { .. })) > 500);
    assert!(count(&r, |e| matches!(e, Event::Fill { .. })) > 10);
    // Every decision, order, fill, state change and day, at the same times: features
    // computed bar by bar equal the cache's bit for bit.
    assert_eq!(derived(&r), derived(&s));
}

#[test]
fn bad_bars_are_refused_with_their_reason_and_nothing_is_traded_on_them() {
    let tmp = tempfile::tempdir().unwrap();
    let (bundle, good) = one_day(tmp.path());
    let bar = |ts: &str, o: f64, h: f64, l: f64, c: f64| {
        format!(
            r#"{{"symbol":"SYN000","ts":"{ts}","open":{o},"high":{h},"low":{l},"close":{c},"volume":100}}"#
        )
    };
    let bad: Vec<(String, &str)> = vec![
        ("this is not json".into(), "not a bar"),
        (
            r#"{"symbol":"NOPE","ts":"2024-01-05T10:00:00-05:00","open":1,"high":1,"low":1,"close":1,"volume":1}"#.into(),
            "unknown symbol \"NOPE\"",
        ),
        (
            r#"{"symbol":"SYN000","ts":"2024-01-05T10:00:00-05:00","open":1,"high":1,"low":1,"close":"NaN","volume":1}"#.into(),
            "not a bar",
        ),
        (bar("2024-01-05T23:00:00-05:00", -1.0, 1.0, -1.0, 1.0), "open -1 is not a price"),
        (bar("2024-01-05T23:01:00-05:00", 10.0, 9.0, 11.0, 10.0), "prices are inconsistent"),
        (bar("2024-01-05T23:02:30-05:00", 10.0, 10.0, 10.0, 10.0), "not on the 1m bar grid"),
        (bar("2024-01-05T04:00:00-05:00", 10.0, 10.0, 10.0, 10.0), "out of order"),
        (bar("2024-01-04T12:00:00-05:00", 10.0, 10.0, 10.0, 10.0), "after the feed moved on to 2024-01-05"),
        (
            r#"{"symbol":"SYN000","ts":"2024-01-05T23:03:00-05:00","open":1,"high":1,"low":1,"close":1,"volume":1,"bid":1.0}"#.into(),
            "give both sides or neither",
        ),
        (
            r#"{"symbol":"SYN000","ts":"2024-01-05T23:04:00-05:00","open":1,"high":1,"low":1,"close":1,"volume":1,"venue":"X"}"#.into(),
            "unknown field `venue`",
        ),
        (
            bar("2024-01-05T23:05:00-05:00", 1e-12, 1.0, 1e-12, 1.0),
            "is not a price (positive to the nanodollar",
        ),
        (
            r#"{"symbol":"SYN000","ts":"2024-01-05T23:06:00-05:00","open":1,"high":1,"low":1,"close":1,"volume":1e30}"#.into(),
            "is not a number of shares from 0",
        ),
        (bar("2100-01-05T10:00:00-05:00", 10.0, 10.0, 10.0, 10.0), "has not closed yet"),
        (
            r#"{"symbol":"SYN000","ts":-5,"open":1,"high":1,"low":1,"close":1,"volume":1}"#.into(),
            "is not between 1990 and 2200",
        ),
    ];
    // Bad lines in the middle of the session, between good bars.
    let mid = good.len() / 2;
    let mut lines = good[..mid].to_vec();
    lines.extend(bad.iter().map(|b| b.0.clone()));
    lines.extend_from_slice(&good[mid..]);
    let journal = tmp.path().join("j.jsonl");
    let out = stream_run(&bundle, &journal, &lines, &["--json"]);
    let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(summary["bad_bars"], bad.len());
    assert_eq!(summary["inputs"], lines.len());
    let recs = records(&journal);
    let refused: Vec<(String, String)> = recs
        .iter()
        .filter_map(|r| match &r.event {
            Event::BadBar { symbol, reason } => Some((symbol.clone(), reason.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(refused.len(), bad.len());
    for ((_, reason), (line, why)) in refused.iter().zip(&bad) {
        assert!(
            reason.contains(why),
            "{line}: {reason:?} does not say {why:?}"
        );
    }
    // Each bad line's input is followed directly by its refusal: no decision, order or
    // fill comes of it.
    for (i, r) in recs.iter().enumerate() {
        if let Event::BadBar { .. } = r.event {
            assert!(matches!(recs[i - 1].event, Event::Input { .. }));
        }
    }
    // The good bars traded as without the bad ones.
    let clean = tmp.path().join("clean.jsonl");
    stream_run(&bundle, &clean, &good, &[]);
    let trading = |rs: &[Record]| -> Vec<(i64, Event)> {
        derived(rs)
            .into_iter()
            .filter(|(_, e)| !matches!(e, Event::BadBar { .. }))
            .collect()
    };
    assert_eq!(trading(&recs), trading(&records(&clean)));
}

/// A stream killed (SIGKILL) at random moments and restarted, each time fed the day's
/// lines from the start again (as a reconnecting producer may resend them): the
/// journal ends as an uninterrupted run's, record for record.
#[test]
fn a_stream_restarted_after_kills_ends_exactly_as_an_uninterrupted_run() {
    let tmp = tempfile::tempdir().unwrap();
    let (bundle, lines) = one_day(tmp.path());
    let whole = tmp.path().join("whole.jsonl");
    stream_run(&bundle, &whole, &lines, &[]);
    let want = records(&whole);
    assert!(count(&want, |e| matches!(e, Event::Fill { .. })) > 5);

    // Fed at a producer's pace (a few ms per 20 lines) so that kills land mid-stream.
    let journal = tmp.path().join("killed.jsonl");
    let mut kills = 0;
    for attempt in 0..40u64 {
        let mut child = live(&bundle, "stdin", &journal, &["--symbols", SYMBOLS])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let feed = lines.clone();
        let writer = std::thread::spawn(move || {
            for chunk in feed.chunks(20) {
                if stdin
                    .write_all((chunk.join("\n") + "\n").as_bytes())
                    .is_err()
                {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(3));
            }
        });
        // Later and later (with a jitter), until a run gets to the end.
        let at = 30 + 20 * attempt + (attempt * 7919) % 17;
        std::thread::sleep(std::time::Duration::from_millis(at));
        let finished = child.try_wait().unwrap();
        if finished.is_none() {
            child.kill().unwrap(); // SIGKILL
        }
        let status = child.wait().unwrap();
        writer.join().unwrap();
        if finished.is_some() {
            assert!(status.success());
            break;
        }
        kills += 1;
    }
    eprintln!("killed {kills} times");
    assert!(kills >= 5, "only {kills} kills landed");
    // A last run to the end finishes the journal.
    stream_run(&bundle, &journal, &lines, &[]);
    let got = records(&journal);
    let key = |rs: &[Record]| -> Vec<(u64, i64, Event)> {
        rs.iter()
            .map(|r| {
                // Input records carry the wall-clock time the line arrived.
                let ts = if matches!(r.event, Event::Input { .. }) {
                    0
                } else {
                    r.ts_ns
                };
                (r.seq, ts, r.event.clone())
            })
            .collect()
    };
    assert_eq!(key(&got), key(&want));
}

/// One HTTP request to the endpoint: status line and body.
fn http(addr: &str, method: &str, path: &str) -> (String, String) {
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    write!(
        c,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    c.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_string(), body.to_string())
}

fn state(addr: &str) -> serde_json::Value {
    let (status, body) = http(addr, "GET", "/state");
    if !status.contains("200") {
        return serde_json::Value::Null;
    }
    serde_json::from_str(&body).unwrap()
}

fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let t0 = std::time::Instant::now();
    while !ok() {
        assert!(t0.elapsed().as_secs() < 60, "timed out waiting for {what}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The TCP feed and the endpoint: metrics while bars stream in, `POST /reduce` then
/// `SIGUSR1` (the kill switch: flatten and halt), `SIGTERM` for an orderly stop.
#[test]
fn the_endpoint_serves_metrics_takes_commands_and_a_signal_kills() {
    let tmp = tempfile::tempdir().unwrap();
    let (bundle, lines) = one_day(tmp.path());
    let journal = tmp.path().join("j.jsonl");
    let mut child = live(
        &bundle,
        "tcp:127.0.0.1:0",
        &journal,
        &["--symbols", SYMBOLS, "--listen", "127.0.0.1:0"],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let (mut endpoint, mut feed_addr) = (String::new(), String::new());
    while endpoint.is_empty() || feed_addr.is_empty() {
        let mut l = String::new();
        assert!(out.read_line(&mut l).unwrap() > 0, "no addresses printed");
        if let Some(a) = l.trim().strip_prefix("endpoint: http://") {
            endpoint = a.trim_end_matches("/metrics").to_string();
        } else if let Some(a) = l.trim().strip_prefix("feed: listening on ") {
            feed_addr = a.to_string();
        }
    }
    let mut feed = std::net::TcpStream::connect(&feed_addr).unwrap();
    let send = |feed: &mut std::net::TcpStream, part: &[String]| {
        feed.write_all((part.join("\n") + "\n").as_bytes()).unwrap();
    };
    // The day runs 04:00 to 20:00: up to about 11:10, then to about 13:40, then the rest.
    let (first, second) = (lines.len() * 45 / 100, lines.len() * 60 / 100);
    send(&mut feed, &lines[..first]);
    wait_until("the first part", || state(&endpoint)["inputs"] == first);
    let s = state(&endpoint);
    assert_eq!(s["state"], "active");
    assert!(s["decisions"].as_u64().unwrap() > 0);
    let (status, metrics) = http(&endpoint, "GET", "/metrics");
    assert!(status.contains("200"), "{status}");
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no {name} in\n{metrics}"))
            .parse()
            .unwrap()
    };
    assert_eq!(
        value("sim_train_live_decisions_total"),
        s["decisions"].as_f64().unwrap()
    );
    assert_eq!(value("sim_train_live_inputs_total"), first as f64);
    assert_eq!(value("sim_train_live_trading_state{state=\"active\"}"), 1.0);
    assert!(value("sim_train_live_stage_seconds_count{stage=\"policy\"}") > 0.0);
    assert!(value("sim_train_live_stage_seconds_count{stage=\"features\"}") >= first as f64);
    value("sim_train_live_position_shares{symbol=\"SYN000\"}");
    value("sim_train_live_feed_lag_seconds");
    assert!(http(&endpoint, "GET", "/nope").0.contains("404"));

    // Reduce-only, taken while the feed is idle.
    let (status, _) = http(&endpoint, "POST", "/reduce");
    assert!(status.contains("202"), "{status}");
    wait_until("reduce-only", || state(&endpoint)["state"] == "reducing");
    send(&mut feed, &lines[first..second]);
    wait_until("the second part", || state(&endpoint)["inputs"] == second);
    // The kill switch by signal.
    // SAFETY: a plain kill(2) of our child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGUSR1) }, 0);
    wait_until("the kill", || state(&endpoint)["state"] == "halted");
    // A producer reconnecting resends the day from its start: nothing is taken twice.
    drop(feed);
    let mut feed = std::net::TcpStream::connect(&feed_addr).unwrap();
    send(&mut feed, &lines);
    wait_until("the rest", || state(&endpoint)["inputs"] == lines.len());
    assert!(
        state(&endpoint)["positions"]
            .as_object()
            .unwrap()
            .is_empty()
    );
    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    assert!(
        rest.contains(&format!("{second} resent lines skipped")),
        "{rest}"
    );
    assert!(rest.contains("state HALTED"), "{rest}");

    let recs = records(&journal);
    let commands: Vec<(Command, String)> = recs
        .iter()
        .filter_map(|r| match &r.event {
            Event::Command { command, source } => Some((*command, source.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(commands.len(), 2, "{commands:?}");
    assert_eq!(commands[0].0, Command::Reduce);
    assert!(commands[0].1.starts_with("endpoint /reduce from 127.0.0.1"));
    assert_eq!(commands[1], (Command::Kill, "signal SIGUSR1".to_string()));
    let halted = recs
        .iter()
        .position(|r| matches!(&r.event, Event::State { to: TradingState::Halted, reason, .. } if reason == "kill switch: signal SIGUSR1"))
        .expect("halted by the signal");
    // After the kill nothing but flattening: every order brings its symbol to flat, and
    // the book ends flat.
    let mut book = Book::from_records(&recs[..halted]);
    for r in &recs[halted..] {
        match &r.event {
            Event::Order { symbol, shares, .. } => {
                let held = book.positions.get(symbol).map_or(0, |p| p.shares);
                assert_eq!(held + shares, 0, "{r:?} adds risk after the kill");
            }
            Event::Fill {
                symbol,
                shares,
                price,
                cost,
                ..
            } => book.fill(symbol, *shares, *price, *cost),
            _ => {}
        }
    }
    assert!(book.positions.is_empty());
}

/// A journal write that fails (here: the file-size limit, `ulimit -f`) is undone: the
/// journal ends on a whole record, the run stops with the error, and a restart goes on
/// to the uninterrupted run's journal.
#[test]
fn a_failed_journal_write_leaves_no_fragment_and_a_restart_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let (bundle, lines) = one_day(tmp.path());
    let whole = tmp.path().join("whole.jsonl");
    stream_run(&bundle, &whole, &lines, &[]);
    let size = std::fs::metadata(&whole).unwrap().len();
    let limit_blocks = size / 2 / 512;

    let journal = tmp.path().join("j.jsonl");
    let cmd = live(&bundle, "stdin", &journal, &["--symbols", SYMBOLS]);
    let mut sh = std::process::Command::new("sh");
    // SIGXFSZ ignored, so the write fails with EFBIG instead of killing the process.
    sh.arg("-c")
        .arg(format!(
            "trap '' XFSZ; ulimit -f {limit_blocks}; exec \"$0\" \"$@\""
        ))
        .arg(cmd.get_program())
        .args(cmd.get_args());
    let out = feed(&mut sh, &lines);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains(&journal.display().to_string()), "{stderr}");
    let bytes = std::fs::read(&journal).unwrap();
    assert!(bytes.len() as u64 <= limit_blocks * 512 && bytes.len() > 1000);
    assert_eq!(bytes.last(), Some(&b'\n'), "a fragment was left");
    let reopened = Journal::open(&journal, false).unwrap();
    assert!(reopened.damaged_tail.is_none());
    drop(reopened);

    stream_run(&bundle, &journal, &lines, &[]);
    let key = |rs: &[Record]| -> Vec<(u64, Event)> {
        rs.iter().map(|r| (r.seq, r.event.clone())).collect()
    };
    assert_eq!(key(&records(&journal)), key(&records(&whole)));
}

/// The paper broker, rejecting every third order (as a real broker may: buying power,
/// a symbol not shortable, a rate limit).
struct Flaky {
    inner: sim_train::live::broker::PaperBroker,
    orders: u64,
}

impl sim_train::live::broker::Broker for Flaky {
    fn begin_day(
        &mut self,
        symbol: usize,
        day: &sim_train::live::engine::DayHeader,
    ) -> sim_train::error::Result<()> {
        self.inner.begin_day(symbol, day)
    }
    fn bar(
        &mut self,
        symbol: usize,
        day: &sim_train::live::engine::DayHeader,
        bar: &sim_train::env::BarRec,
        last: bool,
    ) -> sim_train::error::Result<sim_train::live::broker::BarReport> {
        self.inner.bar(symbol, day, bar, last)
    }
    fn start(&mut self, symbol: usize) -> sim_train::error::Result<()> {
        self.inner.start(symbol)
    }
    fn submit(
        &mut self,
        symbol: usize,
        id: u64,
        target: i64,
    ) -> Result<(), sim_train::live::broker::BrokerReject> {
        self.orders += 1;
        if self.orders.is_multiple_of(3) {
            return Err(sim_train::live::broker::BrokerReject {
                reason: "insufficient buying power".into(),
            });
        }
        self.inner.submit(symbol, id, target)
    }
    fn close_out(
        &mut self,
        symbol: usize,
    ) -> sim_train::error::Result<Vec<sim_train::live::broker::BrokerFill>> {
        self.inner.close_out(symbol)
    }
    fn account(&self, symbol: usize) -> sim_train::live::broker::AccountView {
        self.inner.account(symbol)
    }
}

/// A broker error: each rejected order is journaled with the broker's reason, never
/// fills, and the loop goes on (the working order stays as it was).
#[test]
fn orders_the_broker_rejects_are_journaled_and_never_fill() {
    use sim_train::live::engine::{Engine, EngineOptions};
    let tmp = tempfile::tempdir().unwrap();
    let (bundle_dir, cache) = exported(tmp.path());
    let lines = cache_lines(&cache, None);
    let bundle = sim_train::bundle::Bundle::open(&bundle_dir).unwrap();
    let policy = sim_train::bundle::native::NativePolicy::from_bundle(&bundle).unwrap();
    let (resolved, params) = bundle.stream_environment().unwrap();
    let symbols: Vec<String> = SYMBOLS.split(',').map(String::from).collect();
    let journal = tmp.path().join("j.jsonl");
    let risk = sim_train::live::risk::RiskConfig {
        max_position_usd: 1e12,
        max_position_frac: 1e6,
        max_gross_usd: 1e12,
        max_gross_frac: 1e6,
        max_net_usd: 1e12,
        max_trade_risk_frac: 0.99,
        max_daily_drawdown: 0.99,
        max_consecutive_losses: 1_000_000,
        max_trades_per_day: 1_000_000,
        max_orders_per_minute: 1_000_000,
        flatten_before_close_secs: 0,
        ..Default::default()
    };
    let mut engine = Engine::new(
        policy,
        params.clone(),
        sim_train::backtest::start_sec(&resolved.config).unwrap(),
        &symbols,
        Journal::open(&journal, false).unwrap(),
        EngineOptions {
            fsync: false,
            risk,
            // This test provokes broker errors on purpose: no watchdog to halt on them.
            watchdog: sim_train::live::watchdog::WatchdogConfig::off(),
            controls: None,
        },
        Box::new(Flaky {
            inner: sim_train::live::broker::PaperBroker::new(params, symbols.len()),
            orders: 0,
        }),
    );
    let mut stream = sim_train::live::stream::Stream::new(
        &symbols,
        sim_train::calendar::Calendar::us_equity(),
        sim_train::bars::BarSize::M1,
        engine.params(),
        None,
    );
    for l in &lines {
        stream
            .on_line(&mut engine, l, sim_train::live::engine::now_ns())
            .unwrap();
    }
    let summary = engine.finish().unwrap();
    let recs = records(&journal);
    let orders = count(&recs, |e| matches!(e, Event::Order { .. }));
    let rejected: Vec<u64> = recs
        .iter()
        .filter_map(|r| match &r.event {
            Event::OrderRejected { id, reason, .. } => {
                assert_eq!(reason, "insufficient buying power");
                Some(*id)
            }
            _ => None,
        })
        .collect();
    assert!(orders > 30, "{orders} orders");
    assert_eq!(rejected.len(), orders / 3);
    assert_eq!(summary.broker_rejects, rejected.len());
    // Each rejection follows its order at once, and no fill ever names a rejected order.
    for (i, r) in recs.iter().enumerate() {
        if let Event::OrderRejected { id, .. } = r.event {
            assert!(matches!(recs[i - 1].event, Event::Order { id: o, .. } if o == id));
        }
        if let Event::Fill { order, .. } = r.event {
            assert!(!rejected.contains(&order), "{r:?}");
        }
    }
    // The book the journal's fills make is the one the broker holds: flat after the
    // last session close.
    assert!(Book::from_records(&recs).positions.is_empty());
}

/// Runs `eval --policy` into `out`; its fills.
fn eval_fills(bundle: &Path, cache: &Path, out: &Path) -> Vec<common::FillRow> {
    let st = std::process::Command::new(assert_cmd::cargo::cargo_bin("sim-train"))
        .args(["-q", "eval", "--policy"])
        .arg(bundle)
        .arg("--cache")
        .arg(cache)
        .arg("--out")
        .arg(out)
        .status()
        .unwrap();
    assert!(st.success());
    common::eval_fills(out)
}

/// Real days (LEAN minute bars with quotes: AIG, BAC and SPY, October 2013): the live
/// replay makes exactly `eval`'s fills, and a stream of the same bars, or a replay of the
/// LEAN files themselves, exactly the replay's decisions, orders and fills.
#[test]
fn on_real_days_live_trades_as_eval_and_a_stream_as_the_replay() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(cache) = common::lean_cache(
        "on_real_days_live_trades_as_eval_and_a_stream_as_the_replay",
        sim_train::bars::BarSize::M1,
        &["AIG", "BAC", "SPY"],
        &tmp.path().join("lean"),
    ) else {
        return;
    };
    let (bundle, _) = exported(tmp.path());
    let want = eval_fills(&bundle, &cache, &tmp.path().join("eval"));
    let replayed = tmp.path().join("replay.jsonl");
    let st = live(
        &bundle,
        &format!("replay:{}", cache.display()),
        &replayed,
        &[],
    )
    .status()
    .unwrap();
    assert!(st.success());
    let r = records(&replayed);
    let got = common::journal_fills(&r);
    assert!(want.len() > 10, "{} fills", want.len());
    assert_eq!(got, want);
    assert!(count(&r, |e| matches!(e, Event::Day { .. })) >= 5);

    let lines = cache_lines(&cache, None);
    let streamed = tmp.path().join("stream.jsonl");
    let out = feed(
        &mut live(&bundle, "stdin", &streamed, &["--symbols", "AIG,BAC,SPY"]),
        &lines,
    );
    assert!(out.status.success());
    assert_eq!(derived(&r), derived(&records(&streamed)));

    // The vendor's own files replayed as a stream (read and validated as the cache
    // builder reads them): the same again.
    let lean = common::shared_data("on_real_days (vendor replay)")
        .unwrap()
        .join("lean");
    let vendored = tmp.path().join("vendor.jsonl");
    let st = live(
        &bundle,
        &format!("replay:lean:{}", lean.display()),
        &vendored,
        &["--symbols", "AIG,BAC,SPY"],
    )
    .status()
    .unwrap();
    assert!(st.success());
    assert_eq!(derived(&r), derived(&records(&vendored)));
}

/// A command taken while the stream is idle sits between two lines of the journal: a run
/// killed after it restarts, re-applies it where it was taken, and goes on (reduce-only
/// holds: no order after it adds risk).
#[test]
fn a_stream_killed_after_a_command_restarts_with_the_command_where_it_was() {
    let tmp = tempfile::tempdir().unwrap();
    let (bundle, lines) = one_day(tmp.path());
    let journal = tmp.path().join("j.jsonl");
    let mut child = live(
        &bundle,
        "stdin",
        &journal,
        &["--symbols", SYMBOLS, "--listen", "127.0.0.1:0"],
    )
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut l = String::new();
    out.read_line(&mut l).unwrap();
    let endpoint = l
        .trim()
        .strip_prefix("endpoint: http://")
        .unwrap()
        .trim_end_matches("/metrics")
        .to_string();
    let mut stdin = child.stdin.take().unwrap();
    let (first, second) = (lines.len() * 45 / 100, lines.len() * 60 / 100);
    stdin
        .write_all((lines[..first].join("\n") + "\n").as_bytes())
        .unwrap();
    wait_until("the first part", || state(&endpoint)["inputs"] == first);
    assert!(http(&endpoint, "POST", "/reduce").0.contains("202"));
    wait_until("reduce-only", || state(&endpoint)["state"] == "reducing");
    stdin
        .write_all((lines[first..second].join("\n") + "\n").as_bytes())
        .unwrap();
    wait_until("the second part", || state(&endpoint)["inputs"] == second);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let before = records(&journal);
    let at = before
        .iter()
        .position(|r| {
            matches!(
                r.event,
                Event::Command {
                    command: Command::Reduce,
                    ..
                }
            )
        })
        .expect("the command was journaled");
    // Between two lines: an input before it, the next record after its state change.
    assert!(
        before[..at]
            .iter()
            .any(|r| matches!(r.event, Event::Input { .. }))
    );

    stream_run(&bundle, &journal, &lines, &[]);
    let after = records(&journal);
    assert_eq!(
        after[..before.len()],
        before[..],
        "the journal was rewritten"
    );
    assert_eq!(
        count(&after, |e| matches!(e, Event::Command { .. })),
        1,
        "the command is applied once"
    );
    assert_eq!(
        count(&after, |e| matches!(e, Event::Input { .. })),
        lines.len()
    );
    // Reduce-only from the command on: every order brings its symbol toward flat.
    let mut book = Book::from_records(&after[..at]);
    for r in &after[at..] {
        match &r.event {
            Event::Order { symbol, shares, .. } => {
                let held = book.positions.get(symbol).map_or(0, |p| p.shares);
                let after = held + shares;
                assert!(after.abs() <= held.abs() && after * held >= 0, "{r:?}");
            }
            Event::Fill {
                symbol,
                shares,
                price,
                cost,
                ..
            } => book.fill(symbol, *shares, *price, *cost),
            _ => {}
        }
    }
}

/// A stream that starts on a later day of its cache, warmed up on the cache's earlier
/// days (`--warmup`), makes exactly the decisions and fills of the replay from that day
/// (which reads the cache's warm features); cold, it does not.
#[test]
fn a_stream_warmed_up_on_its_cache_trades_as_the_replay_from_the_same_day() {
    let tmp = tempfile::tempdir().unwrap();
    let (bundle, cache) = exported(tmp.path());
    let day = chrono::NaiveDate::from_ymd_opt(2024, 1, 5).unwrap();
    let lines = cache_lines(&cache, Some(day));
    let replayed = tmp.path().join("replay.jsonl");
    let st = live(
        &bundle,
        &format!("replay:{}", cache.display()),
        &replayed,
        &["--from", "2024-01-05"],
    )
    .status()
    .unwrap();
    assert!(st.success());
    let want = derived(&records(&replayed));
    assert!(want.iter().any(|(_, e)| matches!(e, Event::Fill { .. })));
    let warm = tmp.path().join("warm.jsonl");
    stream_run(
        &bundle,
        &warm,
        &lines,
        &["--warmup", cache.to_str().unwrap()],
    );
    assert_eq!(derived(&records(&warm)), want);
    let cold = tmp.path().join("cold.jsonl");
    stream_run(&bundle, &cold, &lines, &[]);
    assert_ne!(derived(&records(&cold)), want, "warm-up made no difference");
}

/// An engine over the synthetic bundle on `broker`, with `watchdog` and loose risk limits,
/// journaling to `journal`.
fn watched_engine(
    bundle_dir: &Path,
    journal: &Path,
    watchdog: sim_train::live::watchdog::WatchdogConfig,
    flaky: bool,
) -> (
    sim_train::live::engine::Engine,
    sim_train::live::stream::Stream,
) {
    use sim_train::live::engine::{Engine, EngineOptions};
    let bundle = sim_train::bundle::Bundle::open(bundle_dir).unwrap();
    let policy = sim_train::bundle::native::NativePolicy::from_bundle(&bundle).unwrap();
    let (resolved, params) = bundle.stream_environment().unwrap();
    let symbols: Vec<String> = SYMBOLS.split(',').map(String::from).collect();
    let paper = sim_train::live::broker::PaperBroker::new(params.clone(), symbols.len());
    let broker: Box<dyn sim_train::live::broker::Broker> = if flaky {
        Box::new(Flaky {
            inner: paper,
            orders: 0,
        })
    } else {
        Box::new(paper)
    };
    let engine = Engine::new(
        policy,
        params,
        sim_train::backtest::start_sec(&resolved.config).unwrap(),
        &symbols,
        Journal::open(journal, false).unwrap(),
        EngineOptions {
            fsync: false,
            risk: sim_train::live::risk::RiskConfig {
                max_orders_per_minute: 1_000_000,
                max_trades_per_day: 1_000_000,
                ..Default::default()
            },
            watchdog,
            controls: None,
        },
        broker,
    );
    let stream = sim_train::live::stream::Stream::new(
        &symbols,
        sim_train::calendar::Calendar::us_equity(),
        sim_train::bars::BarSize::M1,
        engine.params(),
        None,
    );
    (engine, stream)
}

/// The watchdog's trips in a journal: (command, source) of each command it sent, and the
/// trading states it moved to.
fn trips(recs: &[Record]) -> (Vec<(Command, String)>, Vec<TradingState>) {
    let commands = recs
        .iter()
        .filter_map(|r| match &r.event {
            Event::Command { command, source } if source.starts_with("watchdog: ") => {
                Some((*command, source.clone()))
            }
            _ => None,
        })
        .collect();
    let states = recs
        .iter()
        .filter_map(|r| match &r.event {
            Event::State { to, reason, .. } if reason.contains("watchdog: ") => Some(*to),
            _ => None,
        })
        .collect();
    (commands, states)
}

/// Each automatic kill trigger, provoked: a feed that goes silent in a session, broker
/// errors above their rate, a loop slower than its bound and a journal disk below its
/// free-space floor each send their command, journaled, and move the trading state; a
/// restart on the journal applies the trip where it was applied and agrees record for
/// record.
#[test]
fn each_watchdog_trigger_trips_when_provoked_and_a_restart_replays_it() {
    use sim_train::live::watchdog::{WatchdogAction, WatchdogConfig};
    let tmp = tempfile::tempdir().unwrap();
    let (bundle, lines) = one_day(tmp.path());
    let off = WatchdogConfig::off();
    let now = sim_train::live::engine::now_ns;

    // Feed silence: 40 bars of the session, then nothing for longer than 0.3 s.
    let journal = tmp.path().join("silence.jsonl");
    let cfg = WatchdogConfig {
        max_feed_silence_secs: 0.3,
        action: WatchdogAction::Reduce,
        ..off.clone()
    };
    let (mut engine, mut stream) = watched_engine(&bundle, &journal, cfg.clone(), false);
    for l in &lines[..40] {
        stream.on_line(&mut engine, l, now()).unwrap();
    }
    engine.idle().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(450));
    engine.idle().unwrap();
    engine.idle().unwrap();
    for l in &lines[40..] {
        stream.on_line(&mut engine, l, now()).unwrap();
    }
    engine.finish().unwrap();
    let recs = records(&journal);
    let (commands, states) = trips(&recs);
    assert_eq!(commands.len(), 1, "{commands:?}");
    assert_eq!(commands[0].0, Command::Reduce);
    assert!(commands[0].1.contains("no bar for 0."), "{commands:?}");
    assert_eq!(states, vec![TradingState::Reducing]);
    // A restart on the whole feed, without the pause, gives the same journal: the trip is
    // taken from it where it was applied.
    let (mut engine, mut stream) = watched_engine(&bundle, &journal, cfg, false);
    for (line, received) in engine.journaled_inputs() {
        stream.on_line(&mut engine, &line, received).unwrap();
    }
    engine.check_caught_up().unwrap();
    engine.finish().unwrap();
    assert_eq!(derived(&records(&journal)), derived(&recs));

    // Broker errors: the flaky broker rejects every third order; the third trips it.
    let journal = tmp.path().join("broker.jsonl");
    let cfg = WatchdogConfig {
        max_broker_errors_per_minute: 3,
        ..off.clone()
    };
    let (mut engine, mut stream) = watched_engine(&bundle, &journal, cfg, true);
    for l in &lines {
        stream.on_line(&mut engine, l, now()).unwrap();
    }
    engine.finish().unwrap();
    let recs = records(&journal);
    let (commands, states) = trips(&recs);
    assert_eq!(commands.len(), 1, "{commands:?}");
    assert_eq!(commands[0].0, Command::Kill);
    assert!(
        commands[0].1.contains("3 broker errors in the last minute"),
        "{commands:?}"
    );
    assert_eq!(states, vec![TradingState::Halted]);
    let rejects = count(&recs, |e| matches!(e, Event::OrderRejected { .. }));
    assert!(rejects >= 3, "{rejects}");
    // Halted: after the trip every decision the risk manager lets through is flat.
    let trip_at = recs
        .iter()
        .position(
            |r| matches!(&r.event, Event::Command { source, .. } if source.starts_with("watchdog")),
        )
        .unwrap();
    let mut cut = 0;
    for (i, r) in recs.iter().enumerate().skip(trip_at) {
        if let Event::Decision { target, .. } = &r.event
            && *target != 0
        {
            assert!(
                matches!(&recs[i + 1].event, Event::Rejection { allowed: 0, .. }),
                "a decision after the halt went through: {r:?} then {:?}",
                recs[i + 1]
            );
            cut += 1;
        }
    }
    assert!(cut > 0, "no decision after the halt to cut");

    // Loop latency above a bound no bar time can meet, and a free-space floor no disk has.
    for (name, cfg, why) in [
        (
            "latency",
            WatchdogConfig {
                max_loop_latency_ms: 1e-6,
                ..off.clone()
            },
            "a bar time's work took",
        ),
        (
            "disk",
            WatchdogConfig {
                min_free_disk_mb: 1e15,
                ..off.clone()
            },
            "MB free for the journal",
        ),
    ] {
        let journal = tmp.path().join(format!("{name}.jsonl"));
        let (mut engine, mut stream) = watched_engine(&bundle, &journal, cfg, false);
        for l in &lines {
            stream.on_line(&mut engine, l, now()).unwrap();
        }
        engine.finish().unwrap();
        let (commands, states) = trips(&records(&journal));
        assert_eq!(commands.len(), 1, "{name}: {commands:?}");
        assert!(commands[0].1.contains(why), "{name}: {commands:?}");
        assert_eq!(states, vec![TradingState::Halted], "{name}");
    }

    // With every trigger off, none trips on the same day.
    let journal = tmp.path().join("off.jsonl");
    let (mut engine, mut stream) = watched_engine(&bundle, &journal, off, true);
    for l in &lines {
        stream.on_line(&mut engine, l, now()).unwrap();
    }
    engine.finish().unwrap();
    assert_eq!(trips(&records(&journal)).0.len(), 0);
}
