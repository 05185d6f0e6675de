//! Generates Rust types for the NRI API and the ttrpc envelope from the
//! `.proto` files in `proto/`, with protobuf-codegen's pure-Rust parser (no
//! `protoc` needed).

fn main() {
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    protobuf_codegen::Codegen::new()
        .pure()
        .include("proto")
        .inputs(["proto/nri.proto", "proto/ttrpc.proto", "proto/status.proto"])
        .out_dir(&out)
        .run_from_script();
    println!("cargo:rerun-if-changed=proto");
}
