//! The generic cell rate algorithm (GCRA): one number per key, the theoretical arrival time
//! (TAT) of the next request. A request at `now` is allowed when the TAT is at most `burst - 1`
//! intervals ahead of `now`; each allowed request moves the TAT one interval on. A key whose
//! TAT is in the past holds nothing: forgetting it changes no answer.
//!
//! Times are in one unit chosen by the caller (nanoseconds locally, microseconds in Redis).

/// A rate in the caller's time unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cells {
    /// One request's share of the period.
    pub interval: u64,
    /// How far ahead of `now` the TAT may be and still admit: `burst - 1` intervals.
    pub tolerance: u64,
}

/// What one check decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admission {
    /// The request may go on.
    pub allowed: bool,
    /// The TAT to store (unchanged when refused).
    pub tat: u64,
    /// Further requests that would be allowed right now.
    pub remaining: u64,
    /// Until the key is fully rested (the whole burst available again).
    pub reset_after: u64,
    /// Until one request would be allowed (0 when allowed).
    pub retry_after: u64,
}

/// Checks a request at `now` against a key whose stored TAT is `stored` (`None`: never seen or
/// forgotten).
pub fn check(stored: Option<u64>, now: u64, cells: Cells) -> Admission {
    let tat = stored.map_or(now, |t| t.max(now));
    let ahead = tat - now;
    if ahead > cells.tolerance {
        return Admission {
            allowed: false,
            tat,
            remaining: 0,
            reset_after: ahead,
            retry_after: ahead - cells.tolerance,
        };
    }
    let tat = tat.saturating_add(cells.interval);
    let ahead = tat - now;
    Admission {
        allowed: true,
        tat,
        remaining: (cells.tolerance + cells.interval - ahead) / cells.interval.max(1),
        reset_after: ahead,
        retry_after: 0,
    }
}

/// What a check would decide, without taking anything (for `explain` and the console).
pub fn peek(stored: Option<u64>, now: u64, cells: Cells) -> Admission {
    let taken = check(stored, now, cells);
    Admission {
        tat: stored.unwrap_or(now),
        ..taken
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    /// 100/s with a burst of 20, in nanoseconds.
    fn cells() -> Cells {
        Cells {
            interval: 10 * MS,
            tolerance: 19 * 10 * MS,
        }
    }

    fn run(stored: &mut Option<u64>, now: u64) -> Admission {
        let a = check(*stored, now, cells());
        if a.allowed {
            *stored = Some(a.tat);
        }
        a
    }

    #[test]
    fn exactly_the_burst_at_once_then_one_per_interval() {
        let mut tat = None;
        let start = 1_000 * MS;
        for i in 0..20 {
            let a = run(&mut tat, start);
            assert!(a.allowed, "request {i} of the burst");
            assert_eq!(a.remaining, 19 - i);
        }
        let refused = run(&mut tat, start);
        assert!(!refused.allowed, "the 21st at the same instant");
        assert_eq!(refused.retry_after, 10 * MS);
        assert_eq!(refused.reset_after, 200 * MS);
        // One nanosecond early is still too early; on the edge it goes.
        assert!(!run(&mut tat, start + 10 * MS - 1).allowed);
        let edge = run(&mut tat, start + 10 * MS);
        assert!(edge.allowed);
        assert_eq!(edge.remaining, 0);
        assert!(!run(&mut tat, start + 10 * MS).allowed);
    }

    #[test]
    fn a_steady_rate_at_the_limit_is_never_refused_and_above_it_is() {
        let mut tat = None;
        let start = 5 * MS;
        // 1000 requests exactly 10 ms apart: all allowed, and the burst stays full.
        for i in 0..1000 {
            let a = run(&mut tat, start + i * 10 * MS);
            assert!(a.allowed, "request {i}");
            assert_eq!(a.remaining, 19);
        }
        // 9 ms apart: 1 ms gained per request, the burst of 19 extra spent after ~190 more.
        let mut tat = None;
        let allowed = (0..400)
            .filter(|i| run(&mut tat, start + i * 9 * MS).allowed)
            .count();
        // Over 3.591 s the limit admits 20 + 359 = 379.
        assert_eq!(allowed, 379);
    }

    #[test]
    fn a_rested_key_is_a_forgotten_key() {
        let mut tat = None;
        for _ in 0..20 {
            run(&mut tat, 0);
        }
        let later = 200 * MS;
        assert!(tat.unwrap() <= later);
        assert_eq!(check(tat, later, cells()), check(None, later, cells()));
        let peeked = peek(tat, later, cells());
        assert!(peeked.allowed && peeked.remaining == 19);
        assert_eq!(peeked.tat, tat.unwrap(), "peek takes nothing");
    }
}
