#![no_main]
// Input layout and what is checked: h5salvage::fuzzing::carve_base.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| h5salvage::fuzzing::carve_base(data));
