//! Consultation's rules, free of I/O: the records (the model), what a plan's stages and a
//! decision's consultation allow ([`plan`], [`decision`]), who may do what ([`access`]),
//! the district's figures ([`report`]) and requests parsed into these ([`validate`]). Pure functions, unit tested without a database.

pub mod access;
pub mod decision;
pub mod model;
pub mod plan;
pub mod report;
pub mod validate;

/// A closed set of codes whose names are the proto enum value names: the api maps them one
/// to one and the store keeps readable text.
macro_rules! named_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        pub enum $name {
            $($(#[$vm])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            /// The proto enum value name.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }
    };
}
pub(crate) use named_enum;

/// Why a change is refused: the shell's refusal (reason, subject, description).
pub use minhu_grpc::Refusal;
