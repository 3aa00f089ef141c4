//! tetra-triage: finds why a Cisco Secure Endpoint connector cannot update
//! its TETRA definitions, from a support bundle.
//!
//! The pipeline, one module per stage: [`input`] opens the bundle in
//! memory, [`classify`] names its members, [`scan`], [`logline`], [`xml`]
//! and [`capture`] parse them, [`knowledge`] holds the field's rules as
//! data, [`diagnose`] correlates everything, and [`report`] renders it.

pub mod analyze;
pub mod capture;
pub mod capture_observations;
pub mod classify;
pub mod diagnose;
pub mod error;
pub mod input;
pub mod knowledge;
pub mod logline;
pub mod model;
pub mod network;
pub mod redact;
pub mod report;
pub mod scan;
pub mod text;
pub mod xml;
pub mod years;

pub use analyze::Analyzer;
pub use error::{Error, Result};
pub use model::Report;
