//! Synchronous NRI plugins in Rust.
#![warn(missing_docs)]

mod proto {
    #![allow(missing_docs, clippy::all)]
    include!(concat!(env!("OUT_DIR"), "/mod.rs"));
}

pub mod api;
mod error;
pub mod mux;
pub mod stub;
pub mod ttrpc;

pub use error::{Error, Result};
