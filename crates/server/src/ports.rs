//! The default ports, in one table: each service's own when it runs alone
//! (so that five workloads on one host never collide), and the all-in-one
//! process's. Services, the composing layer, the ingestor's default indexer
//! address and the CLI's default server all read them from here; the
//! flags' help text is checked against it.

/// A gRPC port and a Prometheus port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ports {
    /// The gRPC API.
    pub grpc: u16,
    /// The Prometheus `/metrics` endpoint.
    pub metrics: u16,
}

/// A process running several services (`auditrail up`).
pub const ALL_IN_ONE: Ports = Ports {
    grpc: 50051,
    metrics: 9464,
};
/// The provisioner alone.
pub const PROVISIONER: Ports = Ports {
    grpc: 50052,
    metrics: 9465,
};
/// The ingestor alone.
pub const INGESTOR: Ports = Ports {
    grpc: 50053,
    metrics: 9466,
};
/// The indexer alone.
pub const INDEXER: Ports = Ports {
    grpc: 50054,
    metrics: 9467,
};
/// The query service alone.
pub const QUERY: Ports = Ports {
    grpc: 50055,
    metrics: 9468,
};
/// The reporter alone.
pub const REPORTER: Ports = Ports {
    grpc: 50056,
    metrics: 9469,
};

/// The console alone (its pages and JSON API listen on their own HTTP
/// port, 8080 by default, set in `[console] listen`).
pub const CONSOLE: Ports = Ports {
    grpc: 50057,
    metrics: 9470,
};

/// The URL of a gRPC server on this host at `ports`.
pub fn local_url(ports: Ports) -> String {
    format!("http://127.0.0.1:{}", ports.grpc)
}
