fn main() {
    // napi's link settings are for the Node addon only (the `node` feature).
    #[cfg(feature = "node")]
    napi_build::setup();
}
