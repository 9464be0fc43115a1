#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| coffer_fuzz::auth::oss_v4(data));
