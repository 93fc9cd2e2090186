//! tests/relay_server.rs runs only with the `relay-server` feature (it spawns that binary),
//! tests/agones.rs only with `agones`. Without them, these tests fail and says how to run them, so that they are never skipped in
//! silence.

#[cfg(not(feature = "relay-server"))]
#[test]
fn the_relay_server_tests_need_the_relay_server_feature() {
    panic!(
        "tests/relay_server.rs was not built: run the tests with `--features relay-server` \
         (scripts/test.sh does)"
    );
}

#[cfg(feature = "relay-server")]
#[test]
fn the_relay_server_binary_is_built_for_the_tests() {
    let path = std::path::Path::new(env!("CARGO_BIN_EXE_relay-server"));
    assert!(path.is_file(), "{} is missing", path.display());
}

#[cfg(not(feature = "agones"))]
#[test]
fn the_agones_tests_need_the_agones_feature() {
    panic!(
        "tests/agones.rs was not built: run the tests with `--features agones` \
         (scripts/test.sh does)"
    );
}
