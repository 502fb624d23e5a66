//! The `auditrail.v1` gRPC contracts.
//!
//! The `.proto` files under `proto/auditrail/v1/` are the source of truth;
//! this crate compiles them (see `build.rs`) into prost messages and tonic
//! clients and servers, and embeds their descriptor set for gRPC reflection.
//! Fields are never renumbered or reused; a breaking change gets `v2`.

/// Messages, clients and servers of package `auditrail.v1`.
#[allow(
    clippy::pedantic,
    clippy::all,
    unreachable_pub,
    missing_docs,
    rust_2018_idioms
)]
pub mod v1 {
    tonic::include_proto!("auditrail.v1");
}

/// The encoded `FileDescriptorSet` of every `auditrail.v1` file, for gRPC
/// reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/auditrail_descriptor.bin"));

/// A `google.protobuf.Timestamp` for a point in time.
pub fn timestamp(t: jiff::Timestamp) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.as_second(),
        nanos: t.subsec_nanosecond(),
    }
}

impl From<auditrail_event::EventType> for v1::EventType {
    fn from(t: auditrail_event::EventType) -> Self {
        match t {
            auditrail_event::EventType::Kube => Self::Kube,
            auditrail_event::EventType::Ee => Self::Ee,
        }
    }
}

/// The fully qualified names of the five services, as gRPC health and
/// reflection report them.
pub const SERVICE_NAMES: [&str; 5] = [
    "auditrail.v1.ProvisionService",
    "auditrail.v1.IngestorService",
    "auditrail.v1.IngestService",
    "auditrail.v1.QueryService",
    "auditrail.v1.ReportService",
];
