//! The one shape every auditrail service crate has.
//!
//! A process runs any subset of the five services (`auditrail run
//! --service ingestor,indexer`), so the layer that composes them must treat
//! them alike: each names itself, brings its `[name]` configuration table
//! and its default ports, and adds its gRPC services and background tasks
//! to a server given its settings and what the process shares with it (the
//! store, the indexer to send to, its directory). Nothing else about a
//! service is known outside its crate.
//!
//! The trait lives here, in the server shell, so that service crates need
//! not know each other or the composing layer; what a service is shared is
//! its own associated type, so this crate stays ignorant of stores.

use std::fmt::Debug;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Services;

/// A service that a process can run.
pub trait Service {
    /// Its name in `--service` and the name of its configuration table.
    const NAME: &'static str;
    /// Its gRPC port when it runs alone.
    const DEFAULT_PORT: u16;
    /// Its Prometheus port when it runs alone.
    const DEFAULT_METRICS_PORT: u16;

    /// Its `[NAME]` configuration table; unknown keys are refused.
    type Settings: Serialize + DeserializeOwned + Default + Clone + Debug + PartialEq;
    /// What the composing process gives it beside its settings.
    type Shared;
    /// Why it cannot start.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Checks what the settings' types cannot, before anything starts.
    fn check(settings: &Self::Settings) -> Result<(), Self::Error>;

    /// Adds its gRPC services and background tasks to `services`.
    fn add_to(
        services: Services,
        settings: &Self::Settings,
        shared: Self::Shared,
    ) -> Result<Services, Self::Error>;
}
