//! Nothing outside tests, benches and docs should depend on this module. The golden vector
//! `protocol/tests/data/frame_v1.bin` is the encoding of [`representative_frame`] and
//! `docs/protocol.md` quotes its sizes and bytes, so changing it means re-blessing that file and
//! updating those figures.

use std::f64::consts::FRAC_PI_2;

use crate::{EgoSi, EgoState, FeatureFrame, ObjectClass, ObjectSi, PerceivedObject, VehicleId};

/// A representative urban frame: 30 objects around a signalised junction, within 80 m.
/// 16 moving cars (two of unusual size), 2 buses, 1 truck, 3 parked cars, 5 pedestrians (2
/// standing), 2 cyclists and 1 motorcycle.
pub fn representative_frame() -> FeatureFrame {
    let mut objects = Vec::new();
    let mut push = |class, offset: [f64; 2], vel: [f64; 2], size: Option<(f64, f64)>, yaw: f64| {
        let (dl, dw) = ObjectClass::default_size_dm(class);
        let (l, w) = size.unwrap_or((dl as f64 / 10.0, dw as f64 / 10.0));
        let id = objects.len() as u16;
        objects.push(
            PerceivedObject::from_si(
                id,
                &ObjectSi {
                    class,
                    offset_m: offset,
                    velocity_mps: vel,
                    yaw_rad: if vel == [0.0, 0.0] {
                        yaw
                    } else {
                        vel[1].atan2(vel[0])
                    },
                    length_m: l,
                    width_m: w,
                    sigma_m: 0.2 + 0.01 * (offset[0].abs() + offset[1].abs()),
                    confidence: 0.9,
                },
            )
            .expect("the sample objects are in range"),
        );
    };
    for i in 0..16 {
        let t = i as f64;
        let size = match i {
            3 => Some((4.9, 1.9)),
            9 => Some((3.6, 1.6)),
            _ => None,
        };
        let (pos, vel) = match i % 4 {
            0 => ([-70.0 + 9.0 * t, -1.8], [13.9, 0.0]),
            1 => ([60.0 - 8.0 * t, 1.8], [-12.5, 0.3]),
            2 => ([1.8, -75.0 + 9.5 * t], [0.0, 11.1]),
            _ => ([-1.8, 55.0 - 7.0 * t], [-0.2, -9.7]),
        };
        push(ObjectClass::Car, pos, vel, size, 0.0);
    }
    push(
        ObjectClass::Bus,
        [-35.5, -5.2],
        [8.3, 0.0],
        Some((12.0, 2.55)),
        0.0,
    );
    push(
        ObjectClass::Bus,
        [22.0, 5.0],
        [-6.1, 0.0],
        Some((18.0, 2.55)),
        0.0,
    );
    push(
        ObjectClass::Truck,
        [4.8, 41.0],
        [0.0, -7.5],
        Some((9.5, 2.5)),
        0.0,
    );
    for (i, y) in [-24.0, -18.5, 30.2].into_iter().enumerate() {
        push(
            ObjectClass::Car,
            [8.5 + i as f64, y],
            [0.0, 0.0],
            None,
            FRAC_PI_2,
        );
    }
    push(ObjectClass::Pedestrian, [6.0, 7.5], [0.0, 1.3], None, 0.0);
    push(ObjectClass::Pedestrian, [-6.5, 7.0], [1.2, 0.2], None, 0.0);
    push(
        ObjectClass::Pedestrian,
        [-7.0, -7.2],
        [0.0, -1.4],
        None,
        0.0,
    );
    push(ObjectClass::Pedestrian, [7.2, -6.8], [0.0, 0.0], None, 3.1);
    push(ObjectClass::Pedestrian, [7.6, -6.4], [0.0, 0.0], None, 3.0);
    push(ObjectClass::Bicycle, [-20.0, 4.4], [4.5, 0.0], None, 0.0);
    push(ObjectClass::Bicycle, [3.9, -28.0], [0.0, 5.2], None, 0.0);
    push(
        ObjectClass::Motorcycle,
        [-44.0, -1.6],
        [15.2, 0.1],
        None,
        0.0,
    );
    assert_eq!(objects.len(), 30);
    FeatureFrame {
        vehicle: VehicleId(42),
        seq: 12_345,
        capture_us: 1_795_000_000_123_456,
        clock_uncertainty_us: 850,
        ego: EgoState::from_si(&EgoSi {
            lat_deg: 48.137_154_2,
            lon_deg: 11.576_124_1,
            speed_mps: 12.3,
            yaw_rad: 1.2,
            yaw_rate_radps: 0.05,
            accel_mps2: -0.4,
            length_m: 4.6,
            width_m: 1.8,
            position_sigma_m: 0.35,
        })
        .expect("the sample ego state is in range"),
        objects,
    }
}
