//! Compiles `proto/confab/v1/*.proto` in pure Rust (protox): no `protoc` needed.

use std::{env, fs, path::PathBuf};

use prost::Message as _;

fn main() {
    let protos = [
        "proto/confab/v1/envelope.proto",
        "proto/confab/v1/auth.proto",
        "proto/confab/v1/rooms.proto",
        "proto/confab/v1/messages.proto",
        "proto/confab/v1/state.proto",
        "proto/confab/v1/profiles.proto",
        "proto/confab/v1/files.proto",
    ];
    for proto in protos {
        println!("cargo:rerun-if-changed={proto}");
    }
    let descriptors = protox::compile(protos, ["proto"]).expect("the .proto files compile");
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let descriptor_path = out_dir.join("confab_descriptor.bin");
    fs::write(&descriptor_path, descriptors.encode_to_vec()).expect("write descriptor set");

    prost_build::Config::new()
        .btree_map(["."])
        .compile_fds(descriptors.clone())
        .expect("prost generates the wire types");

    pbjson_build::Builder::new()
        .register_descriptors(&descriptors.encode_to_vec())
        .expect("register descriptors")
        .ignore_unknown_fields()
        // As protobuf JSON parsers do when ignoring unknown fields: an enum
        // name from a newer version reads as the zero value.
        .ignore_unknown_enum_variants()
        .build(&[".confab.v1"])
        .expect("pbjson generates the JSON mapping");
}
