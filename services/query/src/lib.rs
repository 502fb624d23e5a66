//! The query service: timeline search, histograms, streaming export,
//! resource history and diffs over the stored trail.
//!
//! A thin shell over the `Store` trait: requests are validated and turned
//! into store query values (`filter`), pages are tied to their request by an
//! opaque token (`token`), and the domain work lives in the library crates
//! (`auditrail-selector` for the selector language, `auditrail-versions` for
//! versions and diffs). The service holds no state besides the store handle,
//! so any number of replicas can answer.
//!
//! Metrics: besides the per-method gRPC metrics of `auditrail-server`,
//! `query_export_events_total` and `query_export_bytes_total` count what
//! exports streamed.

mod convert;
mod error;
mod export;
pub mod filter;
#[cfg(test)]
mod fuzz;
mod history;
mod limits;
mod scope;
mod search;
pub mod token;

pub use limits::{MAX_EXPORTS, MAX_EXPORTS_PER_CLIENT};
pub use search::TRACK_TOTAL_HITS;

use std::sync::Arc;

use auditrail_proto::v1;
use auditrail_proto::v1::query_service_server::{QueryService, QueryServiceServer};
use auditrail_server::{AccessNote, Services};
use auditrail_store::Store;
use error::QueryError;
use serde::{Deserialize, Serialize};
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status};

/// Largest page of `Search` and `History`.
pub const MAX_PAGE_SIZE: u32 = 1000;
/// Page size when a request leaves it at 0.
pub const DEFAULT_PAGE_SIZE: u32 = 100;
/// The page bounds of `Search` and `History`.
const PAGES: auditrail_server::PageBounds = auditrail_server::PageBounds {
    default: DEFAULT_PAGE_SIZE,
    max: MAX_PAGE_SIZE,
};

/// The query service's own settings: the `[query]` table. What it reads
/// is the process's `[store]` table, shared with the indexer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Most exports streaming at once; beyond it an export is refused with
    /// RESOURCE_EXHAUSTED.
    pub max_exports: usize,
    /// Most exports streaming at once to one client address.
    pub max_exports_per_client: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            max_exports: MAX_EXPORTS,
            max_exports_per_client: MAX_EXPORTS_PER_CLIENT,
        }
    }
}

/// Settings that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    /// An export bound of 0 would refuse every export.
    #[error("{key} must be at least 1 (0 would refuse every export)")]
    NoExports {
        /// The setting.
        key: &'static str,
    },
}

impl auditrail_server::Service for Querier {
    const NAME: &'static str = "query";
    const DEFAULT_PORT: u16 = auditrail_server::ports::QUERY.grpc;
    const DEFAULT_METRICS_PORT: u16 = auditrail_server::ports::QUERY.metrics;
    type Settings = Settings;
    /// The store it reads, shared with the indexer.
    type Shared = Arc<dyn Store>;
    type Error = SettingsError;

    fn check(settings: &Settings) -> Result<(), SettingsError> {
        let zero = [
            ("max_exports", settings.max_exports),
            ("max_exports_per_client", settings.max_exports_per_client),
        ]
        .into_iter()
        .find(|(_, value)| *value == 0);
        match zero {
            Some((key, _)) => Err(SettingsError::NoExports { key }),
            None => Ok(()),
        }
    }

    fn add_to(
        services: Services,
        settings: &Settings,
        store: Arc<dyn Store>,
    ) -> Result<Services, SettingsError> {
        Self::check(settings)?;
        let querier = Querier::new(store)
            .with_export_limits(settings.max_exports, settings.max_exports_per_client);
        Ok(services.with(querier.server()))
    }
}

/// The `QueryService` implementation. (Not `Query`: that is the store's
/// query value, which every module here uses.)
#[derive(Clone)]
pub struct Querier {
    store: Arc<dyn Store>,
    exports: limits::ExportSlots,
}

impl std::fmt::Debug for Querier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Querier").finish_non_exhaustive()
    }
}

impl Querier {
    /// A query service reading `store`.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            exports: limits::ExportSlots::new(MAX_EXPORTS, MAX_EXPORTS_PER_CLIENT),
        }
    }

    /// The same service with other bounds on concurrent exports: at most
    /// `server` at once, `per_client` for one client address.
    #[must_use]
    pub fn with_export_limits(self, server: usize, per_client: usize) -> Self {
        Self {
            exports: limits::ExportSlots::new(server, per_client),
            ..self
        }
    }

    /// The gRPC service.
    pub fn server(self) -> QueryServiceServer<Self> {
        QueryServiceServer::new(self)
    }
}

/// The page size a request asks for: 0 is the default, above the maximum
/// is refused.
fn page_size(requested: u32) -> Result<usize, QueryError> {
    PAGES
        .page_size(requested)
        .map_err(|e| QueryError::invalid(e.to_string()))
}

fn sort_order(sort: i32) -> Result<auditrail_store::SortOrder, QueryError> {
    match v1::SortOrder::try_from(sort) {
        Ok(v1::SortOrder::Unspecified | v1::SortOrder::NewestFirst) => {
            Ok(auditrail_store::SortOrder::NewestFirst)
        }
        Ok(v1::SortOrder::OldestFirst) => Ok(auditrail_store::SortOrder::OldestFirst),
        Err(_) => Err(QueryError::invalid(format!("unknown sort order {sort}"))),
    }
}

#[tonic::async_trait]
impl QueryService for Querier {
    async fn search(
        &self,
        request: Request<v1::SearchRequest>,
    ) -> Result<Response<v1::SearchResponse>, Status> {
        let caller = auditrail_server::Caller::of(&request);
        let note = AccessNote::of(&request);
        let request = request.into_inner();
        if let Some(note) = &note {
            note.describe(filter::summary(request.filter.as_ref(), request.timeline));
        }
        let answer = search::search(&*self.store, request, jiff::Timestamp::now(), &caller).await?;
        if let Some(note) = note {
            note.count(answer.events.len() as u64);
        }
        Ok(Response::new(answer))
    }

    async fn histogram(
        &self,
        request: Request<v1::HistogramRequest>,
    ) -> Result<Response<v1::HistogramResponse>, Status> {
        let caller = auditrail_server::Caller::of(&request);
        let note = AccessNote::of(&request);
        let request = request.into_inner();
        if let Some(note) = &note {
            note.describe(filter::summary(request.filter.as_ref(), request.timeline));
        }
        let answer =
            search::histogram(&*self.store, request, jiff::Timestamp::now(), &caller).await?;
        if let Some(note) = note {
            note.count(answer.total);
        }
        Ok(Response::new(answer))
    }

    type ExportStream = BoxStream<v1::ExportChunk>;

    async fn export(
        &self,
        request: Request<v1::ExportRequest>,
    ) -> Result<Response<Self::ExportStream>, Status> {
        let client = request.remote_addr().map(|a| a.ip());
        let slot = self.exports.take(client)?;
        let note = AccessNote::of(&request);
        if let Some(note) = &note {
            note.describe(filter::summary(
                request.get_ref().filter.as_ref(),
                request.get_ref().timeline,
            ));
        }
        let stream = export::start(
            Arc::clone(&self.store),
            request.get_ref(),
            jiff::Timestamp::now(),
            slot,
            &auditrail_server::Caller::of(&request),
            note,
        )?;
        Ok(Response::new(stream))
    }

    async fn history(
        &self,
        request: Request<v1::HistoryRequest>,
    ) -> Result<Response<v1::HistoryResponse>, Status> {
        let caller = auditrail_server::Caller::of(&request);
        let note = AccessNote::of(&request);
        let request = request.into_inner();
        if let Some(note) = &note {
            note.describe(format!(
                "cluster={} resource={} api_group={} namespace={} name={}",
                request.cluster,
                request.resource,
                request.api_group,
                request.namespace,
                request.name
            ));
        }
        let answer =
            history::history(&*self.store, request, jiff::Timestamp::now(), &caller).await?;
        if let Some(note) = note {
            note.count(answer.versions.len() as u64);
        }
        Ok(Response::new(answer))
    }

    async fn diff(
        &self,
        request: Request<v1::DiffRequest>,
    ) -> Result<Response<v1::DiffResponse>, Status> {
        let caller = auditrail_server::Caller::of(&request);
        let note = AccessNote::of(&request);
        let request = request.into_inner();
        if let Some(note) = &note {
            note.describe(format!(
                "from_event_id={} to_event_id={}",
                request.from_event_id, request.to_event_id
            ));
        }
        let answer = history::diff(&*self.store, request, &caller).await?;
        if let Some(note) = note {
            note.count(2);
        }
        Ok(Response::new(answer))
    }

    async fn get_event(
        &self,
        request: Request<v1::GetEventRequest>,
    ) -> Result<Response<v1::GetEventResponse>, Status> {
        let caller = auditrail_server::Caller::of(&request);
        let note = AccessNote::of(&request);
        let request = request.into_inner();
        if let Some(note) = &note {
            note.describe(format!("id={}", request.id));
        }
        let answer = history::get_event(&*self.store, &request.id, &caller).await?;
        if let Some(note) = note {
            note.count(1);
        }
        Ok(Response::new(answer))
    }
}
