//! Dispatch's rules, free of I/O: the records of a case (the model), their state machines,
//! deadlines and lateness, distances, who may see and do what, the reporter's masks, the
//! checks on an uploaded file and the trail's hash chain. Everything here is a pure function
//! of its arguments and is unit tested without a database.

pub mod access;
pub mod call;
pub mod callback;
pub mod case;
pub mod catalogue;
pub mod deadlines;
pub mod events;
pub mod files;
pub mod geo;
pub mod model;
pub mod privacy;
pub mod repeats;
pub mod state;
pub mod task;

/// Declares a closed set of codes whose names are the proto enum value names, so the api
/// maps them one to one and the store keeps readable text.
macro_rules! named_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        pub enum $name {
            $($(#[$vm])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The proto enum value name.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// The value named `text`, if any.
            pub fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some($name::$variant),)+ _ => None }
            }
        }
    };
}
pub(crate) use named_enum;

/// Why a state change is refused: the FAILED_PRECONDITION reason (UPPER_SNAKE_CASE), what
/// it is about, and a description for a person — the shared shell's, so every service's
/// refusals reach clients the same way.
pub use minhu_grpc::Refusal;
