//! The memory ingest may hold at once for request bodies, raw and decoded. Every byte read from
//! a socket or produced by a decoder is charged here first; when the budget is spent, the request
//! gets 503 instead of the process growing without bound. A reservation gives its bytes back when
//! dropped, whatever path the request took.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// A byte budget shared by all requests.
#[derive(Debug)]
pub struct MemoryBudget {
    used: AtomicUsize,
    limit: usize,
}

/// Bytes charged to a [`MemoryBudget`] by one request.
#[derive(Debug)]
pub struct Reservation {
    budget: Arc<MemoryBudget>,
    bytes: usize,
}

impl MemoryBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> Arc<MemoryBudget> {
        Arc::new(MemoryBudget {
            used: AtomicUsize::new(0),
            limit,
        })
    }

    /// Bytes currently charged.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// An empty reservation to grow as bytes arrive.
    pub fn reserve(self: &Arc<Self>) -> Reservation {
        Reservation {
            budget: self.clone(),
            bytes: 0,
        }
    }
}

impl Reservation {
    /// Charges `n` more bytes; `false` (and nothing charged) when the budget cannot cover them.
    pub fn grow(&mut self, n: usize) -> bool {
        let b = &self.budget;
        let mut current = b.used.load(Ordering::Relaxed);
        loop {
            let next = current.saturating_add(n);
            if next > b.limit {
                return false;
            }
            match b
                .used
                .compare_exchange_weak(current, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => {
                    self.bytes += n;
                    return true;
                }
                Err(actual) => current = actual,
            }
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_and_refunds() {
        let budget = MemoryBudget::new(100);
        let mut a = budget.reserve();
        assert!(a.grow(60));
        let mut b = budget.reserve();
        assert!(!b.grow(50));
        assert!(b.grow(40));
        assert_eq!(budget.used(), 100);
        drop(a);
        assert_eq!(budget.used(), 40);
        drop(b);
        assert_eq!(budget.used(), 0);
    }
}
