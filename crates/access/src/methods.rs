//! The permission of every RPC, in one table. A method missing from it is
//! refused (so a new RPC cannot be served before someone decides who may
//! call it), and a test walks the `auditrail.v1` contract to check that
//! none is missing.

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

/// The gRPC path of every RPC and what it needs.
const TABLE: [(&str, Permission); 25] = [
    ("auditrail.v1.IngestService/IngestBatch", Permission::Ingest),
    ("auditrail.v1.IngestService/GetIndexStats", Permission::Read),
    (
        "auditrail.v1.IngestService/ApplyRetention",
        Permission::Delete,
    ),
    ("auditrail.v1.IngestorService/GetStatus", Permission::Status),
    (
        "auditrail.v1.IngestorService/ListDeadLetters",
        Permission::Status,
    ),
    (
        "auditrail.v1.ProvisionService/GeneratePolicy",
        Permission::Policy,
    ),
    (
        "auditrail.v1.ProvisionService/ValidatePolicy",
        Permission::Policy,
    ),
    (
        "auditrail.v1.ProvisionService/EvaluatePolicy",
        Permission::Policy,
    ),
    (
        "auditrail.v1.ProvisionService/RenderSetup",
        Permission::Policy,
    ),
    (
        "auditrail.v1.ProvisionService/ApplySetup",
        Permission::Apply,
    ),
    ("auditrail.v1.QueryService/Search", Permission::Read),
    ("auditrail.v1.QueryService/Histogram", Permission::Read),
    ("auditrail.v1.QueryService/Export", Permission::Export),
    ("auditrail.v1.QueryService/History", Permission::Read),
    ("auditrail.v1.QueryService/Diff", Permission::Read),
    (
        "auditrail.v1.ReportService/CreateReportDefinition",
        Permission::ManageReports,
    ),
    (
        "auditrail.v1.ReportService/GetReportDefinition",
        Permission::ReadReports,
    ),
    (
        "auditrail.v1.ReportService/ListReportDefinitions",
        Permission::ReadReports,
    ),
    (
        "auditrail.v1.ReportService/UpdateReportDefinition",
        Permission::ManageReports,
    ),
    (
        "auditrail.v1.ReportService/DeleteReportDefinition",
        Permission::ManageReports,
    ),
    (
        "auditrail.v1.ReportService/RunReport",
        Permission::ManageReports,
    ),
    (
        "auditrail.v1.ReportService/ListReports",
        Permission::ReadReports,
    ),
    (
        "auditrail.v1.ReportService/GetReport",
        Permission::ReadReports,
    ),
    (
        "auditrail.v1.ReportService/DownloadReport",
        Permission::ReadReports,
    ),
    (
        "auditrail.v1.ReportService/ImportSnapshot",
        Permission::ManageReports,
    ),
];

/// Services every caller may use.
const PUBLIC_SERVICES: [&str; 3] = [
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
];

/// What the call at `path` (`/package.Service/Method`) needs.
pub fn required(path: &str) -> Required {
    let path = path.trim_start_matches('/');
    if let Some((_, permission)) = TABLE.iter().find(|(p, _)| *p == path) {
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
}
