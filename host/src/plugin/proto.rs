//! The gRPC code generated from `host/proto/` (see `build.rs`).

#![allow(clippy::all, missing_docs)]

pub mod pb {
    tonic::include_proto!("pb");
}

pub mod plugin {
    tonic::include_proto!("plugin");
}

pub mod logical {
    tonic::include_proto!("logical");
}
