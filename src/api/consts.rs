//! Well-known constants shared by plugins and runtimes: the default socket
//! path, the environment variables a runtime sets for the plugins it
//! launches, and the runtime's default timeouts.
//!
//! Values match containerd/nri v0.9.0 (`pkg/api/plugin.go` and
//! `pkg/api/timeouts.go`). How a stub uses them is up to the stub.

use std::time::Duration;

/// Socket path runtimes listen on for external plugins by default.
///
/// ```
/// assert_eq!(nri::api::DEFAULT_SOCKET_PATH, "/var/run/nri/nri.sock");
/// ```
pub const DEFAULT_SOCKET_PATH: &str = "/var/run/nri/nri.sock";

/// Environment variable in which the runtime passes the decimal number of an
/// already-connected socket to a plugin it launched itself.
///
/// ```
/// assert_eq!(nri::api::PLUGIN_SOCKET_ENV_VAR, "NRI_PLUGIN_SOCKET");
/// ```
pub const PLUGIN_SOCKET_ENV_VAR: &str = "NRI_PLUGIN_SOCKET";

/// Environment variable in which the runtime passes the plugin name (without
/// its index) to a plugin it launched itself.
///
/// ```
/// assert_eq!(nri::api::PLUGIN_NAME_ENV_VAR, "NRI_PLUGIN_NAME");
/// ```
pub const PLUGIN_NAME_ENV_VAR: &str = "NRI_PLUGIN_NAME";

/// Environment variable in which the runtime passes the two-digit plugin
/// index to a plugin it launched itself.
///
/// ```
/// assert_eq!(nri::api::PLUGIN_IDX_ENV_VAR, "NRI_PLUGIN_IDX");
/// ```
pub const PLUGIN_IDX_ENV_VAR: &str = "NRI_PLUGIN_IDX";

/// How long a runtime waits, by default, for a plugin to register and be
/// configured. A runtime tells the plugin its actual value in `Configure`.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(nri::api::DEFAULT_REGISTRATION_TIMEOUT, Duration::from_secs(5));
/// ```
pub const DEFAULT_REGISTRATION_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a runtime waits, by default, for a plugin to answer one request.
/// A runtime tells the plugin its actual value in `Configure`.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(nri::api::DEFAULT_REQUEST_TIMEOUT, Duration::from_secs(2));
/// ```
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
