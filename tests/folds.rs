//! Walk-forward fold arithmetic: a hand-laid-out case, properties over many layouts
//! (purge and embargo exclude exactly the right days, no test day is ever trained on),
//! the audit listing, and impossible layouts refused.

use chrono::NaiveDate;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sim_train::walkforward::{FoldSpec, Window, audit_csv, make_folds};

/// `n` trading days: weekdays from 2024-01-01.
fn days(n: usize) -> Vec<NaiveDate> {
    let mut d = NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
    let mut out = Vec::new();
    while out.len() < n {
        use chrono::Datelike;
        if d.weekday().num_days_from_monday() < 5 {
            out.push(d);
        }
        d = d.succ_opt().unwrap();
    }
    out
}

fn spec(window: Window, l: usize, m: usize, s: usize, p: usize, e: usize) -> FoldSpec {
    FoldSpec {
        window,
        train_days: l,
        test_days: m,
        step_days: s,
        purge_days: p,
        embargo_days: e,
    }
}

#[test]
fn hand_laid_out_rolling_and_anchored_folds() {
    // 20 days, train 5, test 3, purge 2, embargo 1, step 0 (= 3 + 1):
    //   fold 0: train 0-4, purged 5-6, test 7-9, embargoed 10
    //   fold 1: train 4-8, purged 9-10, test 11-13, embargoed 14
    //   fold 2: train 8-12, purged 13-14, test 15-17, embargoed 18
    //   fold 3 would test 19-21: past day 19, so none.
    let d = days(20);
    let idx = |v: &[NaiveDate]| -> Vec<usize> {
        v.iter()
            .map(|x| d.iter().position(|y| y == x).unwrap())
            .collect()
    };
    let f = make_folds(&d, &spec(Window::Rolling, 5, 3, 0, 2, 1)).unwrap();
    assert_eq!(f.len(), 3);
    // (train, purged, test, embargoed) day indices per fold.
    type Roles<'a> = (&'a [usize], &'a [usize], &'a [usize], &'a [usize]);
    let want: [Roles; 3] = [
        (&[0, 1, 2, 3, 4], &[5, 6], &[7, 8, 9], &[10]),
        (&[4, 5, 6, 7, 8], &[9, 10], &[11, 12, 13], &[14]),
        (&[8, 9, 10, 11, 12], &[13, 14], &[15, 16, 17], &[18]),
    ];
    for (fold, (train, purged, test, emb)) in f.iter().zip(want) {
        assert_eq!(idx(&fold.train), train, "fold {}", fold.index);
        assert_eq!(idx(&fold.purged), purged);
        assert_eq!(idx(&fold.test), test);
        assert_eq!(idx(&fold.embargoed), emb);
    }
    // Anchored: the same tests, training from day 0.
    let a = make_folds(&d, &spec(Window::Anchored, 5, 3, 0, 2, 1)).unwrap();
    assert_eq!(idx(&a[2].train), (0..13).collect::<Vec<_>>());
    assert_eq!(idx(&a[2].test), [15, 16, 17]);
    // The audit lists every fold and role.
    let csv = audit_csv(&f);
    assert_eq!(csv.lines().count(), 1 + 3 * 4);
    assert!(csv.contains(&format!("1,purged,{},{},2", d[9], d[10])));
    assert!(csv.contains(&format!("2,test,{},{},3", d[15], d[17])));
}

#[test]
fn purge_and_embargo_exclude_exactly_the_right_days_for_any_layout() {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let mut checked = 0;
    for _ in 0..2000 {
        let n = rng.random_range(1..120);
        let (l, m) = (rng.random_range(1..30), rng.random_range(1..15));
        let (p, e) = (rng.random_range(0..6), rng.random_range(0..6));
        let s = if rng.random_bool(0.5) {
            0
        } else {
            m + e + rng.random_range(0..5)
        };
        let window = if rng.random_bool(0.5) {
            Window::Rolling
        } else {
            Window::Anchored
        };
        let d = days(n);
        let Ok(folds) = make_folds(&d, &spec(window, l, m, s, p, e)) else {
            assert!(l + p + m > n, "refused a layout that fits");
            continue;
        };
        checked += 1;
        let tested: Vec<NaiveDate> = folds.iter().flat_map(|f| f.test.clone()).collect();
        for f in &folds {
            let pos = |x: &NaiveDate| d.iter().position(|y| y == x).unwrap();
            let t0 = pos(&f.test[0]);
            assert_eq!(f.test.len(), m);
            // Contiguous test window.
            assert_eq!(pos(f.test.last().unwrap()), t0 + m - 1);
            // Purged: exactly the p days before the test.
            assert_eq!(f.purged, d[t0 - p..t0].to_vec());
            // Training: everything ends before the purge, nothing tested by this fold or later.
            assert!(f.train.iter().all(|x| pos(x) < t0 - p));
            assert_eq!(pos(f.train.last().unwrap()), t0 - p - 1);
            match window {
                Window::Rolling => assert_eq!(f.train.len(), l),
                Window::Anchored => assert_eq!(pos(&f.train[0]), 0),
            }
            assert!(
                f.train
                    .iter()
                    .all(|x| !f.test.contains(x) && !f.purged.contains(x))
            );
            // Embargo: the e days after the test (cut at the last day), tested by no fold.
            let end = (t0 + m + e).min(n);
            assert_eq!(f.embargoed, d[t0 + m..end].to_vec());
            assert!(f.embargoed.iter().all(|x| !tested.contains(x)));
        }
        // Test windows never overlap, in order, as many as fit.
        for w in folds.windows(2) {
            assert!(w[0].test.last() < w[1].test.first());
        }
        let step = if s == 0 { m + e } else { s };
        let last_t0 = l + p + (folds.len() - 1) * step;
        assert!(last_t0 + m <= n && last_t0 + step + m > n);
    }
    assert!(checked > 500, "only {checked} layouts fit");
}

#[test]
fn impossible_layouts_are_refused_with_the_setting_named() {
    let d = days(30);
    let cases = [
        (spec(Window::Rolling, 0, 3, 0, 0, 0), "train_days"),
        (spec(Window::Rolling, 5, 0, 0, 0, 0), "test_days"),
        (spec(Window::Rolling, 5, 5, 3, 0, 0), "step_days = 3"),
        (spec(Window::Rolling, 5, 5, 6, 0, 2), "embargo_days"),
        (spec(Window::Anchored, 20, 8, 0, 3, 0), "hold no fold"),
    ];
    for (s, key) in cases {
        let err = make_folds(&d, &s).unwrap_err();
        assert!(err.contains(key), "{key}: {err}");
    }
    let mut unsorted = days(10);
    unsorted.swap(3, 4);
    assert!(
        make_folds(&unsorted, &spec(Window::Rolling, 2, 2, 0, 0, 0))
            .unwrap_err()
            .contains("strictly increasing")
    );
}
