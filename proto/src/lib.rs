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
    // jiff gives a time before 1970 a negative fraction (-0.5 s is 0 s and
    // -500,000,000 ns); protobuf wants nanos in 0..1e9 with the seconds
    // rounded down (-1 s and 500,000,000 ns).
    let (seconds, nanos) = (t.as_second(), t.subsec_nanosecond());
    if nanos < 0 {
        prost_types::Timestamp {
            seconds: seconds - 1,
            nanos: nanos + 1_000_000_000,
        }
    } else {
        prost_types::Timestamp { seconds, nanos }
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
