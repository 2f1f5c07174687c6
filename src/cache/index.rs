//! The O(1) clock-time → row index of a day cache.
//!
//! Bars are stored sparse (only bars that exist), but environments step on a clock: "what
//! is the latest bar at or before 10:31:07?". A dense per-second row table would cost
//! 57,600 × 4 bytes per 1-second day; instead the session clock is cut into slots of one
//! bar length, slots are grouped by 64, and each group stores the number of bars before it
//! (`base`) and a 64-bit mask of which of its slots have a bar. The answer is
//! `base + popcount(mask & slots_up_to_here) - 1`: two loads and a popcount, 16 bytes per
//! 64 slots (14 KiB for a 1-second day). The group is four `u32`s so that CUDA
//! (`__popc`) and WGSL (`countOneBits` on `u32`) read the same layout.

use bytemuck::{Pod, Zeroable};
use serde::{Deserialize, Serialize};

/// 64 clock slots: bars before the group, and which slots hold a bar.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct ClockGroup {
    /// Number of bars in all earlier groups.
    pub base: u32,
    /// Slots 0..32 of this group that hold a bar.
    pub mask_lo: u32,
    /// Slots 32..64 of this group that hold a bar.
    pub mask_hi: u32,
    pub _pad: u32,
}

/// Where the clock starts and how it ticks (stored in the cache's metadata).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockSpec {
    /// Seconds since New York midnight of slot 0 (04:00 = 14400 for intraday bars).
    pub first_slot_sec: u32,
    /// Slot length in seconds (the bar length).
    pub slot_secs: u32,
    /// Number of slots (the extended session length / bar length; 1 for daily bars).
    pub n_slots: u32,
}

impl ClockSpec {
    pub fn n_groups(&self) -> usize {
        (self.n_slots as usize).div_ceil(64)
    }

    /// The slot of a bar starting `sec_of_day`, if it lies on this clock.
    pub fn slot_of(&self, sec_of_day: i64) -> Option<u32> {
        let rel = sec_of_day - self.first_slot_sec as i64;
        if rel < 0 {
            return None;
        }
        let slot = rel / self.slot_secs as i64;
        (slot < self.n_slots as i64).then_some(slot as u32)
    }
}

/// Builds the groups for bars whose slots are strictly increasing.
///
/// Returns `Err(i)` with the offending bar index when slots are not strictly increasing or
/// lie off the clock (validation guarantees neither happens for stored days).
pub fn build_groups(spec: &ClockSpec, slots: &[u32]) -> Result<Vec<ClockGroup>, usize> {
    let mut groups = vec![ClockGroup::default(); spec.n_groups()];
    let mut prev: Option<u32> = None;
    for (i, &slot) in slots.iter().enumerate() {
        if slot >= spec.n_slots || prev.is_some_and(|p| slot <= p) {
            return Err(i);
        }
        prev = Some(slot);
        let g = &mut groups[(slot / 64) as usize];
        let bit = slot % 64;
        if bit < 32 {
            g.mask_lo |= 1 << bit;
        } else {
            g.mask_hi |= 1 << (bit - 32);
        }
    }
    let mut base = 0u32;
    for g in &mut groups {
        g.base = base;
        base += g.mask_lo.count_ones() + g.mask_hi.count_ones();
    }
    Ok(groups)
}

/// A borrowed clock index (usually straight from the mmap).
#[derive(Clone, Copy, Debug)]
pub struct ClockIndex<'a> {
    pub spec: ClockSpec,
    pub groups: &'a [ClockGroup],
}

impl<'a> ClockIndex<'a> {
    pub fn new(spec: ClockSpec, groups: &'a [ClockGroup]) -> ClockIndex<'a> {
        debug_assert_eq!(groups.len(), spec.n_groups());
        ClockIndex { spec, groups }
    }

    /// Number of bars in slots `0..=slot`.
    #[inline]
    fn count_through(&self, slot: u32) -> u32 {
        let g = self.groups[(slot / 64) as usize];
        let bit = slot % 64;
        let lo_mask = if bit >= 31 {
            u32::MAX
        } else {
            (2u32 << bit) - 1
        };
        let hi_mask = if bit < 32 {
            0
        } else if bit == 63 {
            u32::MAX
        } else {
            (2u32 << (bit - 32)) - 1
        };
        g.base + (g.mask_lo & lo_mask).count_ones() + (g.mask_hi & hi_mask).count_ones()
    }

    /// Row of the latest bar starting at or before `sec_of_day` (None before the first bar).
    /// Times after the clock's end answer with the day's last bar.
    #[inline]
    pub fn latest_at_or_before(&self, sec_of_day: i64) -> Option<u32> {
        let rel = sec_of_day - self.spec.first_slot_sec as i64;
        if rel < 0 || self.spec.n_slots == 0 {
            return None;
        }
        let slot =
            ((rel / self.spec.slot_secs as i64) as u64).min(self.spec.n_slots as u64 - 1) as u32;
        self.count_through(slot).checked_sub(1)
    }

    /// Row of the latest bar that has *closed* by `sec_of_day` (its start plus one bar
    /// length is at or before it): what an agent deciding at that moment may look at. The
    /// bar whose slot contains `sec_of_day` is still forming and is not returned.
    #[inline]
    pub fn latest_completed(&self, sec_of_day: i64) -> Option<u32> {
        self.latest_at_or_before(sec_of_day - self.spec.slot_secs as i64)
    }

    /// Total bars indexed (for checking the index against the row count).
    pub fn total(&self) -> u32 {
        self.groups.last().map_or(0, |g| {
            g.base + g.mask_lo.count_ones() + g.mask_hi.count_ones()
        })
    }

    /// Row of the bar whose slot contains `sec_of_day`, if that bar exists.
    #[inline]
    pub fn exact(&self, sec_of_day: i64) -> Option<u32> {
        let slot = self.spec.slot_of(sec_of_day)?;
        let g = self.groups[(slot / 64) as usize];
        let bit = slot % 64;
        let present = if bit < 32 {
            g.mask_lo >> bit & 1
        } else {
            g.mask_hi >> (bit - 32) & 1
        };
        (present == 1).then(|| self.count_through(slot) - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plain definition the index must agree with: a linear scan.
    fn naive_latest(spec: &ClockSpec, slots: &[u32], sec: i64) -> Option<u32> {
        let rel = sec - spec.first_slot_sec as i64;
        if rel < 0 {
            return None;
        }
        let slot = (rel / spec.slot_secs as i64).min(spec.n_slots as i64 - 1) as u32;
        slots.iter().rposition(|&s| s <= slot).map(|r| r as u32)
    }

    #[test]
    fn agrees_with_linear_scan_on_every_second() {
        let spec = ClockSpec {
            first_slot_sec: 14_400,
            slot_secs: 1,
            n_slots: 57_600,
        };
        // Sparse pseudo-random slots, including group edges 0, 31, 32, 63, 64 and the last.
        let mut slots: Vec<u32> = vec![0, 31, 32, 63, 64, 127, 128];
        let mut x: u64 = 12345;
        for _ in 0..5000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            slots.push((x >> 33) as u32 % 57_600);
        }
        slots.push(57_599);
        slots.sort_unstable();
        slots.dedup();
        let groups = build_groups(&spec, &slots).unwrap();
        let idx = ClockIndex::new(spec, &groups);
        for sec in 14_000..72_100 {
            assert_eq!(
                idx.latest_at_or_before(sec),
                naive_latest(&spec, &slots, sec),
                "sec {sec}"
            );
            let exact = spec
                .slot_of(sec)
                .and_then(|s| slots.binary_search(&s).ok())
                .map(|r| r as u32);
            assert_eq!(idx.exact(sec), exact, "sec {sec}");
        }
    }

    #[test]
    fn minute_clock_and_empty_day() {
        let spec = ClockSpec {
            first_slot_sec: 14_400,
            slot_secs: 60,
            n_slots: 960,
        };
        let groups = build_groups(&spec, &[330, 331, 700]).unwrap();
        let idx = ClockIndex::new(spec, &groups);
        // 09:30:59 is slot 330 → row 0; 09:31:00 → row 1; 15:00 → row 1; 15:40 → row 2.
        assert_eq!(idx.latest_at_or_before(34_259), Some(0));
        assert_eq!(idx.latest_at_or_before(34_260), Some(1));
        assert_eq!(idx.latest_at_or_before(54_000), Some(1));
        assert_eq!(idx.latest_at_or_before(56_400), Some(2));
        assert_eq!(idx.latest_at_or_before(34_199), None);
        // The 09:30 bar closes at 09:31:00: still forming at 09:30:59.
        assert_eq!(idx.latest_completed(34_259), None);
        assert_eq!(idx.latest_completed(34_260), Some(0));
        assert_eq!(idx.latest_completed(34_320), Some(1));
        assert_eq!(idx.total(), 3);
        assert_eq!(idx.exact(34_230), Some(0)); // 09:30:30 lies in slot 330
        assert_eq!(idx.exact(34_290), Some(1)); // 09:31:30 lies in slot 331
        assert_eq!(idx.exact(34_400), None);
        let empty = build_groups(&spec, &[]).unwrap();
        assert_eq!(
            ClockIndex::new(spec, &empty).latest_at_or_before(60_000),
            None
        );
    }

    #[test]
    fn rejects_unsorted_or_off_clock_slots() {
        let spec = ClockSpec {
            first_slot_sec: 0,
            slot_secs: 60,
            n_slots: 10,
        };
        assert_eq!(build_groups(&spec, &[3, 3]), Err(1));
        assert_eq!(build_groups(&spec, &[4, 2]), Err(1));
        assert_eq!(build_groups(&spec, &[10]), Err(0));
    }
}
