#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = h5salvage::format::superblock::parse(data, 0);
    let _ = h5salvage::format::superblock::find_signatures(data);
});
