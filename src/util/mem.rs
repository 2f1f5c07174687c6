//! Sizes that come from the user (environments, rollout steps, symbols, days) checked
//! against the memory they would take before anything is allocated, so that a size too
//! large is one clear line and exit 2 ([`crate::Error::Usage`]) instead of an allocation
//! failure that aborts the process, or an overflowed size that allocates too little.

use crate::error::{Error, Result};

/// Bytes of memory this machine has available for new allocations (`MemAvailable` in
/// `/proc/meminfo`); `None` where that cannot be read.
pub fn available() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    parse_meminfo(&text)
}

fn parse_meminfo(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kb.checked_mul(1024)
}

/// The product of `counts` and `bytes_each`, without overflow (saturating at `u128::MAX`,
/// which no check passes).
pub fn product(counts: &[usize], bytes_each: usize) -> u128 {
    counts
        .iter()
        .fold(bytes_each as u128, |acc, &n| acc.saturating_mul(n as u128))
}

/// Refuses `bytes`, what `what` would allocate, when it exceeds the memory available
/// (or, where that is unknown, what a 64-bit address space holds): "`what` would take
/// 3.2 TB of memory, more than the 21.9 GB available here: `fix`".
pub fn check(what: &str, bytes: u128, fix: &str) -> Result<()> {
    check_against(what, bytes, fix, available())
}

fn check_against(what: &str, bytes: u128, fix: &str, available: Option<u64>) -> Result<()> {
    let limit = available.map_or(u128::from(u64::MAX), u128::from);
    if bytes <= limit {
        return Ok(());
    }
    let have = match available {
        Some(a) => format!("the {} available here", human(u128::from(a))),
        None => "any machine has".to_string(),
    };
    Err(Error::Usage(format!(
        "{what} would take {} of memory, more than {have}: {fix}",
        human(bytes)
    )))
}

/// Bytes in decimal units, e.g. "3.2 TB".
pub fn human(bytes: u128) -> String {
    if bytes == u128::MAX {
        return "more than 2^128 bytes".into();
    }
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit + 1 < UNITS.len() {
        v /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else if v >= 1000.0 {
        format!("{v:.0} {}", UNITS[unit])
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn available_memory_is_read_from_meminfo() {
        let text = "MemTotal:       24000000 kB\nMemFree:  100 kB\nMemAvailable:   21900000 kB\n";
        assert_eq!(parse_meminfo(text), Some(21_900_000 * 1024));
        assert_eq!(parse_meminfo("MemTotal: 5 kB\n"), None);
        #[cfg(target_os = "linux")]
        assert!(available().is_some_and(|b| b > 0));
    }

    #[test]
    fn products_saturate_instead_of_wrapping() {
        assert_eq!(product(&[4096, 24], 4), 4096 * 24 * 4);
        assert_eq!(product(&[usize::MAX, usize::MAX, usize::MAX], 8), u128::MAX);
        assert_eq!(product(&[], 7), 7);
    }

    #[test]
    fn a_size_over_the_memory_available_is_one_line_naming_both() {
        let e = check_against(
            "--envs 99999999999",
            3_200_000_000_000,
            "lower --envs",
            Some(21_900_000_000),
        )
        .unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert_eq!(
            e.to_string(),
            "--envs 99999999999 would take 3.2 TB of memory, more than the 21.9 GB available here: lower --envs"
        );
        assert!(check_against("x", 10, "y", Some(10)).is_ok());
        assert!(check_against("x", u128::from(u64::MAX), "y", None).is_ok());
        let e = check_against("x", u128::MAX, "y", None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "x would take more than 2^128 bytes of memory, more than any machine has: y"
        );
    }
}
