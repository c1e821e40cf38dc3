#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| abacus::fuzzing::ws_frames(data));
