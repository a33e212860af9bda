#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let carved = h5salvage::carve::carve("fuzz", data);
    let walked = h5salvage::walk::walk("fuzz", data);
    let _ = h5salvage::carve::combine(walked, carved);
});
