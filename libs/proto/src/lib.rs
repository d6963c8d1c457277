//! Minhu's gRPC contracts as Rust: one module per proto package (`minhu.<svc>.v1` becomes
//! `minhu_proto::<svc>::v1`), clients and servers included, and the encoded descriptor set
//! every server registers with gRPC reflection.
//!
//! The `.proto` files under the workspace's `proto/` are the source of truth; this crate is
//! generated from them at build time by protox and tonic-prost-build, so no system `protoc`
//! is needed.

#![allow(unreachable_pub, clippy::doc_lazy_continuation, clippy::large_enum_variant)]

/// The encoded `FileDescriptorSet` of every Minhu proto, for `tonic-reflection`.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/minhu_descriptor.bin"));

/// Types shared by every service (`minhu.common.v1`).
pub mod common {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("minhu.common.v1");
    }
}

/// 部门名册: streets, communities, grids, departments, stations, people, secondments.
pub mod roster {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("minhu.roster.v1");
    }
}

/// 案件调度: the case from intake to close, its trail, the event feed.
pub mod dispatch {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("minhu.dispatch.v1");
    }
}

/// 绩效考评: scores, periods, annual assessment, referrals.
pub mod appraisal {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("minhu.appraisal.v1");
    }
}

/// 人事任免建议: opinion solicitation on appointments, secondees, leave.
pub mod personnel {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("minhu.personnel.v1");
    }
}

/// 规划参与 / 决策建议: plan participation, decision opinions and adoption feedback.
pub mod consultation {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("minhu.consultation.v1");
    }
}
