//! Encode, decode and decode + validate of the representative 30-object frame
//! (`protocol::sample::representative_frame`, the frame of the golden vector `frame_v1.bin`).
//!
//! Run with `cargo bench -p protocol --bench codec`.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use protocol::sample::representative_frame;
use protocol::{FeatureFrame, FrameWindow, Message, ValidatedFrame};
use std::hint::black_box;

fn codec(c: &mut Criterion) {
    let frame = representative_frame();
    let bytes = frame.encode().expect("the sample frame encodes");
    // The frame is validated as if it had just arrived: `now` is its own capture time.
    let now_us = frame.capture_us;
    let window = FrameWindow::default();

    let mut group = c.benchmark_group("frame_30_objects");
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.bench_function("encode", |b| {
        b.iter(|| black_box(&frame).encode().expect("encodes"))
    });
    group.bench_function("decode", |b| {
        b.iter(|| FeatureFrame::decode(black_box(&bytes)).expect("decodes"))
    });
    group.bench_function("decode_validate", |b| {
        b.iter(|| {
            let frame = FeatureFrame::decode(black_box(&bytes)).expect("decodes");
            ValidatedFrame::new(frame, black_box(now_us), &window).expect("valid")
        })
    });
    // Validation alone, on a fresh copy each time so that the clone is not measured.
    group.bench_function("validate", |b| {
        b.iter_batched(
            || frame.clone(),
            |frame| ValidatedFrame::new(frame, black_box(now_us), &window).expect("valid"),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
