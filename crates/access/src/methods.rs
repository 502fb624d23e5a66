//! The permission of every RPC, and whether a call of it leaves an access
//! record, in one table. A method missing from it is refused (so a new RPC
//! cannot be served before someone decides who may call it and whether
//! it is recorded), and a test walks the `auditrail.v1` contract to check
//! that none is missing.
//!
//! Recorded are the calls that read or change the trail or the cluster:
//! every query, export, report and statistics read, ingestion (one record
//! per batch, a summary), retention and `ApplySetup`. Not recorded:
//! health and reflection, the ingestor's own status, the provisioning
//! calls that only compute from what the caller sends, and `RecordAccess`
//! itself (recording it would never end).

use crate::Permission;

/// What a call needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Required {
    /// Nothing: health checks (kubelet probes carry no identity) and
    /// reflection (the schema is public).
    Public,
    /// An identity holding this permission.
    Permission(Permission),
    /// Not a method of ours: refused.
    Unknown,
}

/// Whether a call of a method leaves an access record.
const RECORDED: bool = true;
/// Whether a call of a method leaves no access record.
const UNRECORDED: bool = false;

/// The gRPC path of every RPC, what it needs and whether it is recorded.
const TABLE: [(&str, Permission, bool); 27] = [
    (
        "auditrail.v1.IngestService/IngestBatch",
        Permission::Ingest,
        RECORDED,
    ),
    (
        "auditrail.v1.IngestService/GetIndexStats",
        Permission::Read,
        RECORDED,
    ),
    (
        "auditrail.v1.IngestService/ApplyRetention",
        Permission::Delete,
        RECORDED,
    ),
    (
        "auditrail.v1.IngestService/RecordAccess",
        Permission::RecordAccess,
        UNRECORDED,
    ),
    (
        "auditrail.v1.IngestorService/GetStatus",
        Permission::Status,
        UNRECORDED,
    ),
    (
        "auditrail.v1.IngestorService/ListDeadLetters",
        Permission::Status,
        UNRECORDED,
    ),
    (
        "auditrail.v1.ProvisionService/GeneratePolicy",
        Permission::Policy,
        UNRECORDED,
    ),
    (
        "auditrail.v1.ProvisionService/ValidatePolicy",
        Permission::Policy,
        UNRECORDED,
    ),
    (
        "auditrail.v1.ProvisionService/EvaluatePolicy",
        Permission::Policy,
        UNRECORDED,
    ),
    (
        "auditrail.v1.ProvisionService/RenderSetup",
        Permission::Policy,
        UNRECORDED,
    ),
    (
        "auditrail.v1.ProvisionService/ApplySetup",
        Permission::Apply,
        RECORDED,
    ),
    (
        "auditrail.v1.QueryService/Search",
        Permission::Read,
        RECORDED,
    ),
    (
        "auditrail.v1.QueryService/Histogram",
        Permission::Read,
        RECORDED,
    ),
    (
        "auditrail.v1.QueryService/Export",
        Permission::Export,
        RECORDED,
    ),
    (
        "auditrail.v1.QueryService/History",
        Permission::Read,
        RECORDED,
    ),
    ("auditrail.v1.QueryService/Diff", Permission::Read, RECORDED),
    (
        "auditrail.v1.QueryService/GetEvent",
        Permission::Read,
        RECORDED,
    ),
    (
        "auditrail.v1.ReportService/CreateReportDefinition",
        Permission::ManageReports,
        RECORDED,
    ),
    (
        "auditrail.v1.ReportService/GetReportDefinition",
        Permission::ReadReports,
        RECORDED,
    ),
    (
        "auditrail.v1.ReportService/ListReportDefinitions",
        Permission::ReadReports,
        RECORDED,
    ),
    (
        "auditrail.v1.ReportService/UpdateReportDefinition",
        Permission::ManageReports,
        RECORDED,
    ),
    (
        "auditrail.v1.ReportService/DeleteReportDefinition",
        Permission::ManageReports,
        RECORDED,
    ),
    (
        "auditrail.v1.ReportService/RunReport",
        Permission::ManageReports,
        RECORDED,
    ),
    (
        "auditrail.v1.ReportService/ListReports",
        Permission::ReadReports,
        RECORDED,
    ),
    (
        "auditrail.v1.ReportService/GetReport",
        Permission::ReadReports,
        RECORDED,
    ),
    (
        "auditrail.v1.ReportService/DownloadReport",
        Permission::ReadReports,
        RECORDED,
    ),
    (
        "auditrail.v1.ReportService/ImportSnapshot",
        Permission::ManageReports,
        RECORDED,
    ),
];

/// Whether a call at `path` leaves an access record (unknown and public
/// methods do not: they are refused before anything is read, or read
/// nothing of the trail).
pub fn recorded(path: &str) -> bool {
    let path = path.trim_start_matches('/');
    TABLE.iter().any(|(p, _, recorded)| *p == path && *recorded)
}

/// Whether some call of `service` (`auditrail.v1.QueryService`) is
/// recorded.
pub fn service_recorded(service: &str) -> bool {
    TABLE.iter().any(|(path, _, recorded)| {
        *recorded && path.split_once('/').is_some_and(|(s, _)| s == service)
    })
}

/// Services every caller may use.
const PUBLIC_SERVICES: [&str; 3] = [
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
];

/// What the call at `path` (`/package.Service/Method`) needs.
pub fn required(path: &str) -> Required {
    let path = path.trim_start_matches('/');
    if let Some((_, permission, _)) = TABLE.iter().find(|(p, _, _)| *p == path) {
        return Required::Permission(*permission);
    }
    let service = path.split_once('/').map_or(path, |(s, _)| s);
    if PUBLIC_SERVICES.contains(&service) {
        return Required::Public;
    }
    Required::Unknown
}

#[cfg(test)]
mod tests {
    use prost_reflect::DescriptorPool;

    use super::*;

    /// Every RPC of the contract has a permission: adding an RPC without
    /// deciding who may call it fails here.
    #[test]
    fn every_rpc_of_the_contract_has_a_permission() {
        let pool =
            DescriptorPool::decode(auditrail_proto::FILE_DESCRIPTOR_SET).expect("descriptors");
        let mut methods = 0;
        for service in pool.services() {
            for method in service.methods() {
                let path = format!("/{}/{}", service.full_name(), method.name());
                assert!(
                    matches!(required(&path), Required::Permission(_)),
                    "{path} has no permission in crates/access/src/methods.rs"
                );
                methods += 1;
            }
        }
        assert_eq!(
            methods,
            TABLE.len(),
            "a row of the table is no RPC of the contract"
        );
    }

    #[test]
    fn health_and_reflection_are_public_and_strangers_unknown() {
        assert_eq!(required("/grpc.health.v1.Health/Check"), Required::Public);
        assert_eq!(
            required("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"),
            Required::Public
        );
        assert_eq!(
            required("/auditrail.v1.QueryService/DropAll"),
            Required::Unknown
        );
        assert_eq!(required("/other.Service/Search"), Required::Unknown);
        assert_eq!(
            required("/auditrail.v1.QueryService/Export"),
            Required::Permission(Permission::Export)
        );
    }

    #[test]
    fn reads_and_changes_are_recorded_and_recording_itself_is_not() {
        for path in [
            "/auditrail.v1.QueryService/Search",
            "/auditrail.v1.QueryService/Export",
            "/auditrail.v1.IngestService/IngestBatch",
            "/auditrail.v1.IngestService/ApplyRetention",
            "/auditrail.v1.ProvisionService/ApplySetup",
            "/auditrail.v1.ReportService/DownloadReport",
        ] {
            assert!(recorded(path), "{path}");
        }
        for path in [
            "/auditrail.v1.IngestService/RecordAccess",
            "/auditrail.v1.IngestorService/GetStatus",
            "/auditrail.v1.ProvisionService/GeneratePolicy",
            "/grpc.health.v1.Health/Check",
            "/auditrail.v1.QueryService/DropAll",
        ] {
            assert!(!recorded(path), "{path}");
        }
        assert_eq!(
            required("/auditrail.v1.IngestService/RecordAccess"),
            Required::Permission(Permission::RecordAccess)
        );
    }
}
