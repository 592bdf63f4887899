//! Compiles the vendored Loki `push.proto` with protox (a protobuf compiler in Rust, so no system
//! `protoc`) into prost types, written to `OUT_DIR/logproto.rs`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=loki/push.proto");
    let descriptors = protox::compile(["loki/push.proto"], ["."])?;
    prost_build::Config::new().compile_fds(descriptors)?;
    Ok(())
}
