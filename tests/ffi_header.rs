//! `include/subtask.h` is what cbindgen makes from `src/ffi.rs` with `cbindgen.toml`, byte
//! for byte. `SUBTASK_BLESS=1 cargo test --test ffi_header` rewrites it.

use std::path::Path;

#[test]
fn committed_header_matches_the_generated_one() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(root.join("cbindgen.toml"))
        .unwrap_or_else(|error| panic!("cbindgen.toml: {error}"));
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(root.join("src/ffi.rs"))
        .generate()
        .unwrap_or_else(|error| panic!("cbindgen could not read src/ffi.rs: {error}"));
    let mut generated = Vec::new();
    bindings.write(&mut generated);
    let generated = String::from_utf8(generated).expect("the header is UTF-8");

    let path = root.join("include/subtask.h");
    if std::env::var_os("SUBTASK_BLESS").is_some_and(|value| value != "0") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &generated).unwrap();
        eprintln!("wrote {}", path.display());
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != generated {
        let first_difference = committed
            .lines()
            .zip(generated.lines())
            .position(|(old, new)| old != new)
            .map_or_else(
                || "one is a prefix of the other".to_string(),
                |line| format!("first difference at line {}", line + 1),
            );
        panic!(
            "include/subtask.h is out of date with src/ffi.rs ({first_difference}); \
             run `SUBTASK_BLESS=1 cargo test --test ffi_header` to regenerate it, \
             and commit the result"
        );
    }
}

/// maturin generates the Python package's cffi module with cbindgen over the whole crate,
/// and cffi accepts only integer `#define`s: every other public constant must be excluded
/// in cbindgen.toml, or `pip install .` breaks.
#[test]
fn the_header_maturin_generates_holds_only_subtask_integer_defines() {
    let root = env!("CARGO_MANIFEST_DIR");
    let mut config = cbindgen::Config::from_root_or_default(root);
    config.no_includes = true;
    config.sys_includes = Vec::new();
    config.include_guard = None;
    config.cpp_compat = false;
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_crate(root)
        .generate()
        .unwrap_or_else(|error| panic!("cbindgen could not read the crate: {error}"));
    let mut header = Vec::new();
    bindings.write(&mut header);
    let header = String::from_utf8(header).expect("the header is UTF-8");
    for line in header.lines().filter(|line| line.starts_with("#define")) {
        let mut parts = line.split_whitespace().skip(1);
        let (name, value) = (
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
        );
        assert!(
            name.starts_with("SUBTASK_") && value.parse::<i64>().is_ok(),
            "`{line}` would break the Python build (cffi takes integer defines only): add \
             the constant to [export] exclude in cbindgen.toml"
        );
    }
}
