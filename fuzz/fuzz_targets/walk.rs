#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let inv = h5salvage::walk::walk("fuzz", data);
    let _ = h5salvage::report::json(&inv);
});
