//! Arbitrary bytes as an `Alert`: decoding must never panic and what decodes must round-trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use protocol::{Alert, Message};

fuzz_target!(|bytes: &[u8]| {
    let Ok(alert) = Alert::decode(bytes) else {
        return;
    };
    let again = alert.encode().expect("a decoded alert re-encodes");
    assert!(
        again.len() <= bytes.len(),
        "re-encoding is canonical, never longer"
    );
    assert_eq!(Alert::decode(&again).as_ref(), Ok(&alert));
});
