//! Arbitrary bytes as a `FeatureFrame`: decoding must never panic, a frame that decodes must
//! survive validation without panicking, and re-encoding it must give back the same frame.
#![no_main]

use libfuzzer_sys::fuzz_target;
use protocol::{FeatureFrame, FrameWindow, Message, ValidatedFrame, MAX_OBJECTS};

/// A plausible edge clock reading, the capture time of the golden frame.
const NOW_US: i64 = 1_795_000_000_123_456;

fuzz_target!(|bytes: &[u8]| {
    let Ok(frame) = FeatureFrame::decode(bytes) else {
        return;
    };
    let window = FrameWindow::default();
    // At the frame's own capture time the window always passes, so every content check runs;
    // at a fixed time the window checks see arbitrary capture times.
    let _ = ValidatedFrame::new(frame.clone(), frame.capture_us, &window);
    let _ = ValidatedFrame::new(frame.clone(), NOW_US, &window);
    // The decoder accepts more objects than an encoder may send (validation refuses them).
    if frame.objects.len() <= MAX_OBJECTS {
        let again = frame.encode().expect("a decoded frame re-encodes");
        assert!(
            again.len() <= bytes.len(),
            "re-encoding is canonical, never longer"
        );
        assert_eq!(FeatureFrame::decode(&again).as_ref(), Ok(&frame));
    }
});
