//! What every real audit event in `shared/data/real` means: the line the
//! timeline shows and whether the event is a version of its object, against
//! `real_events.tsv`, which was written from reading the events (exec and
//! attach into pods, the delete of a namespace, cluster-scoped objects,
//! failed and denied requests, subresources, non-resource requests, unknown
//! resources). A sample added later fails here until it has its rows.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use auditrail_event::parse_line;

#[path = "support/real_data.rs"]
mod real_data;
use real_data::real_data_dir;

/// `(file, line number)` → `(version column, summary column)`.
fn expectations() -> BTreeMap<(String, usize), (String, String)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/real_events.tsv");
    let text = std::fs::read_to_string(&path).expect("tests/real_events.tsv");
    let mut rows = BTreeMap::new();
    for row in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let cols: Vec<&str> = row.split('\t').collect();
        let [file, line, version, summary] = cols[..] else {
            panic!("a row has four tab-separated columns: {row:?}");
        };
        let line: usize = line.parse().expect("line number");
        let old = rows.insert(
            (file.to_owned(), line),
            (version.to_owned(), summary.to_owned()),
        );
        assert!(old.is_none(), "{file}:{line} twice");
    }
    rows
}

/// Every sample file under `dir`, as paths relative to the data folder.
fn sample_files(dir: &Path, root: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("shared/data/real beside the checkout") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            sample_files(&path, root, out);
        } else if path.file_name().is_some_and(|n| n != "README.md") {
            out.push(path.strip_prefix(root).expect("under root").to_owned());
        }
    }
}

#[test]
fn every_real_event_means_what_its_row_says() {
    let root = real_data_dir();
    let mut files = Vec::new();
    sample_files(&root, &root, &mut files);
    files.sort();
    let mut rows = expectations();
    let mut wrong = Vec::new();
    let mut checked = 0;
    for file in &files {
        let bytes = std::fs::read(root.join(file)).expect("read sample");
        let name = file.display().to_string();
        for (i, line) in bytes.split(|b| *b == b'\n').enumerate() {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let Some((version, summary)) = rows.remove(&(name.clone(), i + 1)) else {
                wrong.push(format!("{name}:{}: no row in real_events.tsv", i + 1));
                continue;
            };
            let got = match parse_line(line) {
                Ok(p) => (
                    if p.event.is_version() { "version" } else { "-" }.to_owned(),
                    p.event.summary(),
                ),
                Err(e) => ("error".to_owned(), e.kind.as_str().to_owned()),
            };
            if got != (version.clone(), summary.clone()) {
                wrong.push(format!(
                    "{name}:{}: expected {version} {summary:?}, got {} {:?}",
                    i + 1,
                    got.0,
                    got.1
                ));
            }
            checked += 1;
        }
    }
    for ((file, line), _) in rows {
        wrong.push(format!("{file}:{line}: a row for a line that is not there"));
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert!(
        checked > 200,
        "expected every real sample, checked {checked}"
    );
}

/// The cases the trail used to misstate, spelled out.
#[test]
fn the_misread_cases_read_right() {
    let rows = expectations();
    let row = |file: &str, line: usize| rows[&(file.to_owned(), line)].clone();
    let pair = |v: &str, s: &str| (v.to_owned(), s.to_owned());
    // kubectl exec and attach are sessions into the pod, not new pods.
    assert_eq!(
        row("falco-k8s-audit/exec_pod.json", 1),
        pair("-", "Pod default/nginx-deployment-7998647bdf-phvq7 exec")
    );
    assert_eq!(
        row("falco-k8s-audit/attach_pod.json", 1),
        pair("-", "Pod default/nginx-deployment-7998647bdf-phvq7 attach")
    );
    // A namespace lives in no namespace, whatever objectRef.namespace says.
    assert_eq!(
        row("falco-k8s-audit/delete_namespace_foo.json", 1),
        pair("version", "Namespace foo deleted")
    );
    // A Lease is a kind; reads are reads.
    assert_eq!(
        row("elastic-integrations-test-audit.log", 2),
        pair("-", "Lease kube-system/elastic-agent-cluster-test get")
    );
    // A status update is no version of the object.
    assert_eq!(
        row(
            "more/openshift__cluster-logging-operator__log5607_sample.ndjson",
            1
        ),
        pair(
            "-",
            "configurationpolicies dc01/external-secrets-operator-subscription status updated"
        )
    );
    // A denied create changed nothing.
    assert_eq!(
        row(
            "more/openshift__cluster-logging-operator__audit_in.ndjson",
            2
        ),
        pair(
            "-",
            "Pod openshift-marketplace/certified-operators-bfkmv create failed (403)"
        )
    );
}
