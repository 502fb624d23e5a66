//! `auditrail run --service …` and `auditrail up`: any set of the five
//! services in one process (`up` is `run --service all`), composed by
//! `auditrail-compose`.
//!
//! When the ingestor and the indexer run together, the ingestor sends its
//! batches to the indexer over real gRPC on this very process's address,
//! exactly as separate deployments do, so the all-in-one runs the same
//! code paths and delivery guarantee as a cluster install.

use auditrail_compose::{NodeArgs, Selection};
use clap::ArgMatches;

/// Flags of `auditrail run`.
#[derive(Debug, clap::Args)]
pub(crate) struct RunArgs {
    /// The services to run, separated by commas: ingestor, indexer, query,
    /// provisioner, reporter, or all.
    #[arg(long, value_name = "SERVICES", default_value = "all")]
    service: Selection,
    #[command(flatten)]
    node: NodeArgs,
}

/// `auditrail run`.
pub(crate) async fn run(args: RunArgs, matches: &ArgMatches) -> anyhow::Result<()> {
    auditrail_compose::run(args.service, &args.node, matches).await?;
    Ok(())
}

/// `auditrail up`.
pub(crate) async fn up(args: NodeArgs, matches: &ArgMatches) -> anyhow::Result<()> {
    auditrail_compose::run(Selection::all(), &args, matches).await?;
    Ok(())
}
