//! What a plugin binary shares with every other: Go-sample-style flags,
//! logging set up from them, a clean stop on SIGTERM and SIGINT, and an
//! exit status a supervisor can act on. No dependencies beyond the crate's.
//!
//! A whole plugin binary, the way upstream's Go samples are written (`-name`,
//! `-idx`, `-socket`, `-verbose`, `-log-file`... and `-h`):
//!
//! ```no_run
//! use std::process::ExitCode;
//!
//! use nri::api::{Event, EventMask};
//! use nri::cli::{self, Cli, Flag};
//! use nri::stub::Plugin;
//!
//! struct Mine;
//! impl Plugin for Mine {
//!     fn events(&self) -> EventMask {
//!         Event::CREATE_CONTAINER.into()
//!     }
//! }
//!
//! fn main() -> ExitCode {
//!     let cli = Cli::parse("mine", "An NRI plugin that does mine.", &[Flag::CONFIG]);
//!     cli.init_logging("mine");
//!     // Until SIGTERM/SIGINT or the runtime goes away: 0, 1 or 78 (see run).
//!     cli::serve(cli.stub_builder(Mine), &cli)
//! }
//! ```
//!
//! Exit statuses: [`EXIT_OK`] (0) for a normal end (a signal, or the runtime
//! releasing a plugin it launched), [`EXIT_FAILURE`] (1) when a restart may
//! help, [`EXIT_CONFIG`](crate::EXIT_CONFIG) (78) when it cannot (a bad
//! name, index or configuration, a runtime too old for a required event),
//! [`EXIT_USAGE`] (2) for a bad command line, as Go's `flag` package.

mod flags;
mod health;
mod serve;
mod signals;

pub use flags::{Cli, Flag, UsageError};
pub use health::{probe, spawn_reporter, HEALTH_INTERVAL, STALE_AFTER};
pub use serve::{build, run, serve};
pub use signals::on_termination;

/// Exit status of a normal end.
pub const EXIT_OK: u8 = 0;
/// Exit status of a failure a restart may cure.
pub const EXIT_FAILURE: u8 = 1;
/// Exit status of a bad command line (Go's `flag` package uses 2 too).
pub const EXIT_USAGE: u8 = 2;
