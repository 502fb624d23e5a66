//! The store conformance suite (`auditrail-store-conformance`) on the
//! embedded store, always: one store in a temporary directory shared by
//! every check (each check keeps to a cluster of its own).

use std::sync::Arc;

use auditrail_store::Store;
use auditrail_store_tantivy::{TantivyOptions, TantivyStore};
use libtest_mimic::{Arguments, Failed, Trial};

fn fail(what: &str, e: impl std::fmt::Display) -> ! {
    eprintln!("{what}: {e}");
    std::process::exit(1);
}

fn main() {
    let args = Arguments::from_args();
    let runtime = tokio::runtime::Runtime::new().unwrap_or_else(|e| fail("no runtime", e));
    let dir = tempfile::tempdir().unwrap_or_else(|e| fail("no temporary directory", e));
    let opened =
        runtime.block_on(async { TantivyStore::open(dir.path(), TantivyOptions::default()) });
    let store: Arc<dyn Store> = match opened {
        Ok(store) => Arc::new(store),
        Err(e) => fail("cannot open the store", e),
    };
    let handle = runtime.handle().clone();
    let trials = auditrail_store_conformance::checks()
        .into_iter()
        .map(|(name, check)| {
            let store = Arc::clone(&store);
            let handle = handle.clone();
            Trial::test(name, move || {
                handle.block_on(check(store)).map_err(Failed::from)
            })
        })
        .collect();
    let conclusion = libtest_mimic::run(&args, trials);
    drop(store);
    drop(runtime);
    drop(dir);
    conclusion.exit();
}
