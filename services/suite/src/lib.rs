//! The suite's reusable part: the pump-room demo case ([`demo`]), which the `minhu-suite`
//! binary runs at start and the end-to-end tests run against their own suite.

pub mod demo;
pub mod demo_consultation;
pub mod demo_personnel;
