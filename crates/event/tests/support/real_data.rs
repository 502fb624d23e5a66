//! Where the real audit events are: `shared/data/real`, beside the
//! checkout. Shared by path by every test suite that reads them (the event,
//! policy, store, versions, tantivy store and query suites, the fuzz inputs
//! and the end-to-end tests), so the data is found one way from any crate,
//! whatever its depth in the workspace.

use std::path::PathBuf;

/// `shared/data/real` in the nearest folder above the package under test
/// that has it. Panics (fails the test) when none has it: the suites need
/// the real samples and never pass without them.
pub(crate) fn real_data_dir() -> PathBuf {
    // Cargo sets the variable when it runs the binary: prefer it to the
    // compile-time value, which is stale when an artifact built from another
    // checkout is reused through a shared target directory.
    let package = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    package
        .ancestors()
        .map(|dir| dir.join("shared/data/real"))
        .find(|dir| dir.is_dir())
        .unwrap_or_else(|| {
            panic!(
                "shared/data/real must exist beside the checkout (looked above {})",
                package.display()
            )
        })
}
