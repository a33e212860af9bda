#![no_main]
// Input layout and what is checked: h5salvage::fuzzing::chunks.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| h5salvage::fuzzing::chunks(data));
