//! Round trips from a stream of fills and borrow charges.
//!
//! A round trip runs from a fill that opens a position from flat (or the flip fill that
//! reverses one) to the fill that brings it back to flat (or the next flip). Its
//! - gross P&L is the sum of the P&L its fills realized at reference prices (the
//!   environment's average-entry accounting, [`crate::env::exec::apply_fill`]);
//! - costs are the commission, spread and impact of its fills plus the borrow charged
//!   while it was open. A flip fill's costs are split between the trip it closes and the
//!   trip it opens in proportion to the shares on each side; its realized P&L belongs
//!   entirely to the trip it closes;
//! - entry and exit times are the execution times of the first and last fill (a bar's
//!   start for an order filled at its open, the bar's end for a forced exit at its close).
//!
//! So over closed trips, `Σ net P&L = Σ realized − Σ costs`, the account's P&L once flat.

use crate::metrics::RoundTrip;

#[derive(Clone, Debug)]
struct OpenTrip {
    entry_ns: i64,
    side: i8,
    max_shares: i64,
    gross: f64,
    costs: f64,
}

/// Collects the round trips of one symbol's account.
#[derive(Clone, Debug)]
pub struct TripBuilder {
    symbol: String,
    open: Option<OpenTrip>,
    /// Closed trips, in order of exit.
    pub trips: Vec<RoundTrip>,
}

impl TripBuilder {
    pub fn new(symbol: &str) -> TripBuilder {
        TripBuilder {
            symbol: symbol.to_string(),
            open: None,
            trips: Vec::new(),
        }
    }

    /// Whether a position is open.
    pub fn is_open(&self) -> bool {
        self.open.is_some()
    }

    /// A fill of `shares` (signed) at `at_ns` that left the position at `position_after`,
    /// realized `realized` and cost `cost` (commission + spread + impact).
    pub fn fill(&mut self, at_ns: i64, shares: i64, position_after: i64, realized: f64, cost: f64) {
        if shares == 0 {
            return;
        }
        let before = position_after - shares;
        let opened = |costs: f64| OpenTrip {
            entry_ns: at_ns,
            side: position_after.signum() as i8,
            max_shares: position_after.abs(),
            gross: 0.0,
            costs,
        };
        match self.open.take() {
            None => {
                // From flat (`before == 0` for a well-formed stream).
                self.open = (position_after != 0).then(|| opened(cost));
            }
            Some(mut trip) => {
                trip.gross += realized;
                if position_after == 0 {
                    trip.costs += cost;
                    self.close(trip, at_ns);
                } else if (position_after > 0) != (before > 0) {
                    let q = shares.unsigned_abs() as f64;
                    let (closed, reopened) = (
                        before.unsigned_abs() as f64,
                        position_after.unsigned_abs() as f64,
                    );
                    trip.costs += cost * closed / q;
                    self.close(trip, at_ns);
                    self.open = Some(opened(cost * reopened / q));
                } else {
                    trip.costs += cost;
                    trip.max_shares = trip.max_shares.max(position_after.abs());
                    self.open = Some(trip);
                }
            }
        }
    }

    /// Borrow charged while the current trip is open (ignored when flat, where the
    /// environment charges none).
    pub fn borrow(&mut self, cost: f64) {
        if let Some(trip) = &mut self.open {
            trip.costs += cost;
        }
    }

    fn close(&mut self, trip: OpenTrip, exit_ns: i64) {
        self.trips.push(RoundTrip {
            symbol: self.symbol.clone(),
            entry_ns: trip.entry_ns,
            exit_ns,
            side: trip.side,
            max_shares: trip.max_shares,
            gross_pnl: trip.gross,
            costs: trip.costs,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_add_reduce_flip_close() {
        let mut b = TripBuilder::new("X");
        b.fill(10, 100, 100, 0.0, 1.0); // open long 100
        b.fill(20, 50, 150, 0.0, 0.5); // add
        b.borrow(7.0); // attributed to whichever trip is open
        b.fill(30, -50, 100, 20.0, 0.5); // reduce, realize 20
        // Flip: sell 300 from +100 → −200: realize −10, costs 3 split 1/3 : 2/3.
        b.fill(40, -300, -200, -10.0, 3.0);
        assert_eq!(b.trips.len(), 1);
        let t = &b.trips[0];
        assert_eq!(
            (t.entry_ns, t.exit_ns, t.side, t.max_shares),
            (10, 40, 1, 150)
        );
        assert_eq!(t.gross_pnl, 10.0);
        assert_eq!(t.costs, 1.0 + 0.5 + 7.0 + 0.5 + 1.0);
        b.borrow(0.25);
        b.fill(50, 200, 0, 5.0, 1.0); // cover
        let t = &b.trips[1];
        assert_eq!(
            (t.entry_ns, t.exit_ns, t.side, t.max_shares),
            (40, 50, -1, 200)
        );
        assert_eq!(t.gross_pnl, 5.0);
        assert_eq!(t.costs, 2.0 + 0.25 + 1.0);
        assert!(!b.is_open());
        b.borrow(9.0); // flat: nothing to attribute
        assert_eq!(b.trips.len(), 2);
    }
}
