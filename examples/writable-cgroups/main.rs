//! `writable-cgroups`: mounts `/sys/fs/cgroup` read-write in annotated
//! containers on hosts whose cgroup2 mount has `nsdelegate` (see plugin.rs).
//!
//! ```text
//! cargo run --example writable-cgroups -- -idx 10 -host-mount-file /proc/1/mountinfo
//! ```

mod mountinfo;
mod plugin;

use std::process::ExitCode;

use nri::cli::{self, Cli, Flag};

const FLAGS: &[Flag] = &[
    Flag {
        name: "host-mount-file",
        value: Some("PATH"),
        help: "the host's mount table, to check for nsdelegate (default /host/proc/1/mountinfo)",
    },
    Flag {
        name: "socket-path",
        value: Some("PATH"),
        help: "NRI socket to connect to (the Go plugin's name for -socket)",
    },
];

fn main() -> ExitCode {
    let mut cli = Cli::parse(
        "writable-cgroups",
        "An NRI plugin that mounts /sys/fs/cgroup read-write in annotated containers when the host delegates cgroups (nsdelegate).",
        FLAGS,
    );
    cli.init_logging("writable-cgroups");
    if let Some(path) = cli.value("socket-path") {
        cli.socket = Some(path.into());
    }
    let mount_file = cli
        .value("host-mount-file")
        .unwrap_or(plugin::DEFAULT_HOST_MOUNT_FILE)
        .to_string();
    let plugin = plugin::WritableCgroups::for_host(&mount_file);
    cli::serve(cli.stub_builder(plugin), &cli)
}
