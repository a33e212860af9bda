#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let inv = h5salvage::walk::walk("fuzz", data);
    let _ = h5salvage::report::json(&inv);
    // A metadata cache image: its entries put back, then walked again.
    if let Some(overlay) = h5salvage::walk::cache_image(data) {
        let mut bytes = data.to_vec();
        overlay.apply(&mut bytes);
        let _ = h5salvage::walk::walk("fuzz", &bytes);
    }
});
