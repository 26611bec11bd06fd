//! A route's counters, each found in its family once: a request then finds its counter with a
//! short scan of what the route has seen, instead of hashing its labels (SipHash, three to
//! five fields) and taking the family's lock on every request.

use std::sync::OnceLock;

use prometheus_client::metrics::counter::Counter;

/// How many label values a route remembers per family; past them a request goes to the family.
const SLOTS: usize = 16;

/// The counters of one route in one family, by the labels that vary per request.
#[derive(Clone, Debug)]
pub struct Found<K> {
    slots: [OnceLock<(K, Counter)>; SLOTS],
}

impl<K> Default for Found<K> {
    fn default() -> Self {
        Self {
            slots: std::array::from_fn(|_| OnceLock::new()),
        }
    }
}

impl<K: PartialEq + Clone> Found<K> {
    /// Increments the counter of `key`, found in the family by `find` the first time.
    pub fn inc(&self, key: &K, find: impl Fn() -> Counter) {
        for slot in &self.slots {
            if slot.get().is_none() {
                // The first free slot: taken for `key`, unless another thread took it first
                // (for `key` too, or for another key, and the scan goes on).
                let _ = slot.set((key.clone(), find()));
            }
            if let Some((seen, counter)) = slot.get()
                && seen == key
            {
                counter.inc();
                return;
            }
        }
        find().inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::metrics::family::Family;

    #[test]
    fn each_key_counts_in_its_own_series_also_past_the_slots() {
        let family: Family<Vec<(String, String)>, Counter> = Family::default();
        let found: Found<u16> = Found::default();
        let series = |k: u16| vec![("k".to_owned(), k.to_string())];
        let keys: Vec<u16> = (0..40).collect();
        for round in 0..3 {
            for k in &keys[..=round * 15] {
                found.inc(k, || family.get_or_create(&series(*k)).clone());
            }
        }
        assert_eq!(family.get_or_create(&series(0)).get(), 3);
        assert_eq!(family.get_or_create(&series(15)).get(), 2);
        assert_eq!(family.get_or_create(&series(30)).get(), 1);
        let total: u64 = keys
            .iter()
            .map(|k| family.get_or_create(&series(*k)).get())
            .sum();
        assert_eq!(total, 1 + 16 + 31);
    }

    #[test]
    fn threads_racing_for_slots_lose_no_increment() {
        let family: Family<Vec<(String, String)>, Counter> = Family::default();
        let found: Found<u16> = Found::default();
        let series = |k: u16| vec![("k".to_owned(), k.to_string())];
        std::thread::scope(|scope| {
            for t in 0..4u16 {
                let (family, found) = (&family, &found);
                scope.spawn(move || {
                    for i in 0..1000u16 {
                        let k = (i + t) % 20;
                        found.inc(&k, || family.get_or_create(&series(k)).clone());
                    }
                });
            }
        });
        let total: u64 = (0..20u16)
            .map(|k| family.get_or_create(&series(k)).get())
            .sum();
        assert_eq!(total, 4000);
    }
}
