//! How many exports run at once.
//!
//! An export holds up to one page of events (about 32 MiB) and a few chunks
//! while its client reads, so memory is bounded per export, not per server:
//! hundreds of exports whose clients never read would hold gigabytes. The
//! server therefore runs at most `server` exports at once, at most
//! `per_client` of them for one client address; beyond that `Export`
//! answers RESOURCE_EXHAUSTED at once, naming the limit. A slot is freed
//! when its export ends, fails, or its client goes away.

use crate::error::QueryError;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

/// Exports running at once, by default, on one server.
pub const MAX_EXPORTS: usize = 16;
/// Exports running at once, by default, for one client address.
pub const MAX_EXPORTS_PER_CLIENT: usize = 4;

/// Publishes the number of running exports.
fn report(total: usize) {
    let total = u32::try_from(total).unwrap_or(u32::MAX);
    metrics::gauge!("query_exports_running").set(f64::from(total));
}

/// The export slots of one server.
#[derive(Debug, Clone)]
pub(crate) struct ExportSlots {
    inner: Arc<Mutex<Running>>,
    server: usize,
    per_client: usize,
}

#[derive(Debug, Default)]
struct Running {
    total: usize,
    by_client: HashMap<Option<IpAddr>, usize>,
}

/// One running export; dropping it frees the slot.
#[derive(Debug)]
pub(crate) struct ExportSlot {
    slots: ExportSlots,
    client: Option<IpAddr>,
}

impl ExportSlots {
    pub(crate) fn new(server: usize, per_client: usize) -> Self {
        Self {
            inner: Arc::default(),
            server,
            per_client,
        }
    }

    /// A slot for an export of `client` (`None`: address unknown, counted
    /// as one client), or RESOURCE_EXHAUSTED.
    pub(crate) fn take(&self, client: Option<IpAddr>) -> Result<ExportSlot, QueryError> {
        let mut running = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if running.total >= self.server {
            return Err(QueryError::busy(format!(
                "{} exports are running, the most this server runs at once; retry when one \
                 has ended",
                self.server
            )));
        }
        let mine = running.by_client.entry(client).or_default();
        if *mine >= self.per_client {
            return Err(QueryError::busy(format!(
                "this client has {} exports running, the most one client may; finish or \
                 cancel one first",
                self.per_client
            )));
        }
        *mine += 1;
        running.total += 1;
        report(running.total);
        Ok(ExportSlot {
            slots: self.clone(),
            client,
        })
    }

    /// Exports running now.
    #[cfg(test)]
    fn running(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .total
    }
}

impl Drop for ExportSlot {
    fn drop(&mut self) {
        let mut running = self
            .slots
            .inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        running.total = running.total.saturating_sub(1);
        if let Some(n) = running.by_client.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                running.by_client.remove(&self.client);
            }
        }
        report(running.total);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_bounded_per_server_and_per_client_and_freed_on_drop() {
        let slots = ExportSlots::new(3, 2);
        let a: Option<IpAddr> = Some([10, 0, 0, 1].into());
        let b: Option<IpAddr> = Some([10, 0, 0, 2].into());
        let a1 = slots.take(a).expect("a1");
        let _a2 = slots.take(a).expect("a2");
        let err = tonic::Status::from(slots.take(a).expect_err("a3"));
        assert_eq!(err.code(), tonic::Code::ResourceExhausted);
        assert!(
            err.message().contains("this client has 2 exports running"),
            "{err:?}"
        );
        let _b1 = slots.take(b).expect("b1");
        let err = tonic::Status::from(slots.take(b).expect_err("server full"));
        assert!(err.message().contains("3 exports are running"), "{err:?}");
        assert_eq!(slots.running(), 3);
        drop(a1);
        assert_eq!(slots.running(), 2);
        let _b2 = slots.take(b).expect("a slot was freed");
    }
}
