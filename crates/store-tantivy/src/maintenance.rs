//! The store's maintenance thread: what must happen while nobody calls the
//! store, namely closing idle writers (see the `pool` module) and verifying
//! the files again every [`crate::TantivyOptions::verify_interval`] (a
//! segment can rot after the check at start, and segments written since
//! were never checked).
//!
//! The thread is stopped and joined when the last handle of the store is
//! dropped, before the store's indices close, so that a dropped store has
//! released every index lock when the drop returns.

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use auditrail_store::StoreError;

use crate::writer::internal;

/// The longest the thread sleeps between two looks at its work.
const MAX_TICK: Duration = Duration::from_secs(10);
/// The shortest.
const MIN_TICK: Duration = Duration::from_millis(10);

/// Whether the thread was asked to stop, and how it is woken.
#[derive(Debug, Default)]
pub(crate) struct StopSignal {
    stopped: Mutex<bool>,
    wake: Condvar,
}

impl StopSignal {
    /// Whether the thread was asked to stop.
    pub(crate) fn is_set(&self) -> bool {
        *self.stopped.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sleeps for `pause` or until asked to stop; whether asked to stop.
    fn sleep(&self, pause: Duration) -> bool {
        let stopped = self.stopped.lock().unwrap_or_else(PoisonError::into_inner);
        let (stopped, _) = self
            .wake
            .wait_timeout_while(stopped, pause, |stopped| !*stopped)
            .unwrap_or_else(PoisonError::into_inner);
        *stopped
    }

    fn set(&self) {
        *self.stopped.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.wake.notify_all();
    }
}

/// The running maintenance thread; dropping it stops and joins it.
#[derive(Debug)]
pub(crate) struct Maintenance {
    signal: Arc<StopSignal>,
    thread: Option<JoinHandle<()>>,
}

/// How often work due after `every` is looked at.
pub(crate) fn tick_for(every: Duration) -> Duration {
    (every / 2).clamp(MIN_TICK, MAX_TICK)
}

impl Maintenance {
    /// Runs `work` every `tick` on a thread of its own until it answers
    /// `false` (the store is gone) or the handle is dropped. `work` is given
    /// the stop signal, to end long work early.
    pub(crate) fn start(
        tick: Duration,
        mut work: impl FnMut(&StopSignal) -> bool + Send + 'static,
    ) -> Result<Self, StoreError> {
        let signal = Arc::new(StopSignal::default());
        let theirs = Arc::clone(&signal);
        let thread = std::thread::Builder::new()
            .name("store-maintenance".to_owned())
            .spawn(move || while !theirs.sleep(tick) && work(&theirs) {})
            .map_err(|e| internal("start the store maintenance thread", e))?;
        Ok(Self {
            signal,
            thread: Some(thread),
        })
    }
}

impl Drop for Maintenance {
    fn drop(&mut self) {
        self.signal.set();
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the store maintenance thread panicked");
        }
    }
}
