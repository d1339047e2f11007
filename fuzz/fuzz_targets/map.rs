//! Arbitrary bytes as a `SituationMap`: decoding must never panic and what decodes must
//! round-trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use protocol::map::MAX_TRACKS;
use protocol::{Message, SituationMap};

fuzz_target!(|bytes: &[u8]| {
    let Ok(map) = SituationMap::decode(bytes) else {
        return;
    };
    // The decoder accepts more tracks than an encoder may send.
    if map.tracks.len() <= MAX_TRACKS {
        let again = map.encode().expect("a decoded map re-encodes");
        assert!(
            again.len() <= bytes.len(),
            "re-encoding is canonical, never longer"
        );
        assert_eq!(SituationMap::decode(&again).as_ref(), Ok(&map));
    }
});
