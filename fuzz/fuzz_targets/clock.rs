//! Arbitrary bytes as clock-sync messages: decoding must never panic, and neither must the
//! offset and delay arithmetic on whatever timestamps a peer sends back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use protocol::{ClockEstimator, ClockReply, ClockRequest, ClockSample, Message};

fuzz_target!(|bytes: &[u8]| {
    if let Ok(request) = ClockRequest::decode(bytes) {
        let again = request.encode().expect("a decoded request re-encodes");
        assert_eq!(ClockRequest::decode(&again), Ok(request));
    }
    let Ok(reply) = ClockReply::decode(bytes) else {
        return;
    };
    let again = reply.encode().expect("a decoded reply re-encodes");
    assert_eq!(ClockReply::decode(&again), Ok(reply));
    let mut estimator = ClockEstimator::default();
    for t4_us in [reply.t3_us, reply.t1_us, 0, i64::MIN, i64::MAX] {
        if let Some(sample) = ClockSample::from_exchange(&reply, t4_us) {
            assert!(sample.delay_us >= 0);
            estimator.add(sample);
            assert!(estimator.estimate(t4_us).is_some(), "a sample was added");
        }
    }
});
