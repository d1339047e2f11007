//! The scenario world: road users moving along scripted paths, in the scenario's own ENU
//! metres. Ground truth is a pure function of time, so any mode can sample it at any instant.

use edge_node::geometry::{Mover, V2};
use protocol::ObjectClass;

/// A speed keyframe: from `t_s` on the speed moves linearly to the next keyframe's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpeedKey {
    pub t_s: f64,
    pub speed_mps: f64,
}

/// One road user: a polyline path, a speed profile along it, and a footprint.
#[derive(Debug, Clone, PartialEq)]
pub struct Actor {
    /// The scenario's id, used in reports (`v1`, `ped1`, SUMO's own ids).
    pub id: String,
    pub class: ObjectClass,
    pub length_m: f64,
    pub width_m: f64,
    /// Whether the actor runs a v2e agent.
    pub connected: bool,
    pub path: Vec<V2>,
    pub speed: Vec<SpeedKey>,
}

/// An actor's true state at one instant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct State {
    pub pos: V2,
    pub vel: V2,
    pub yaw: f64,
    pub speed: f64,
    pub accel: f64,
}

impl Actor {
    /// Distance travelled along the path by `t_s` (the integral of the piecewise-linear speed).
    fn distance(&self, t_s: f64) -> f64 {
        let mut s = 0.0;
        for w in self.speed.windows(2) {
            let (a, b) = (w[0], w[1]);
            if t_s <= a.t_s {
                break;
            }
            let end = t_s.min(b.t_s);
            let dt = end - a.t_s;
            let slope = (b.speed_mps - a.speed_mps) / (b.t_s - a.t_s);
            s += a.speed_mps * dt + 0.5 * slope * dt * dt;
        }
        if let Some(last) = self.speed.last() {
            if t_s > last.t_s {
                s += last.speed_mps * (t_s - last.t_s);
            }
        }
        s
    }

    fn speed_accel(&self, t_s: f64) -> (f64, f64) {
        for w in self.speed.windows(2) {
            let (a, b) = (w[0], w[1]);
            if t_s >= a.t_s && t_s < b.t_s {
                let slope = (b.speed_mps - a.speed_mps) / (b.t_s - a.t_s);
                return (a.speed_mps + slope * (t_s - a.t_s), slope);
            }
        }
        let last = self.speed.last().map_or(0.0, |k| k.speed_mps);
        (last, 0.0)
    }

    /// The point at arc length `s` and the direction of travel there; past the end of the
    /// path the last segment continues straight.
    fn along(&self, s: f64) -> (V2, V2) {
        let mut left = s;
        for (i, w) in self.path.windows(2).enumerate() {
            let seg = w[1] - w[0];
            let len = seg.norm();
            if len == 0.0 {
                continue;
            }
            let dir = seg / len;
            if left <= len || i + 2 == self.path.len() {
                return (w[0] + dir * left, dir);
            }
            left -= len;
        }
        (self.path[0], V2::new(1.0, 0.0))
    }

    pub fn state(&self, t_s: f64) -> State {
        let (pos, dir) = self.along(self.distance(t_s));
        let (speed, accel) = self.speed_accel(t_s);
        State {
            pos,
            vel: dir * speed,
            yaw: dir.y.atan2(dir.x),
            speed,
            accel,
        }
    }

    pub fn mover(&self, t_s: f64) -> Mover {
        let s = self.state(t_s);
        Mover {
            center: s.pos,
            yaw: s.yaw,
            length: self.length_m,
            width: self.width_m,
            velocity: s.vel,
        }
    }
}

/// A complete scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    pub name: String,
    /// WGS84 anchor of the scenario's ENU frame (also the edge's origin).
    pub origin: (f64, f64),
    pub duration_s: f64,
    pub actors: Vec<Actor>,
}

impl Actor {
    /// A connected 4.5 x 1.8 m car along `path` (metres) with `speed` keyframes (s, m/s).
    pub fn car(id: &str, path: &[(f64, f64)], speed: &[(f64, f64)]) -> Actor {
        Actor {
            id: id.into(),
            class: ObjectClass::Car,
            length_m: 4.5,
            width_m: 1.8,
            connected: true,
            path: path.iter().map(|&(x, y)| V2::new(x, y)).collect(),
            speed: speed
                .iter()
                .map(|&(t_s, speed_mps)| SpeedKey { t_s, speed_mps })
                .collect(),
        }
    }
}

fn car(id: &str, path: &[(f64, f64)], speed: &[(f64, f64)]) -> Actor {
    Actor::car(id, path, speed)
}

/// Lane centres are 1.75 m either side of the road axis; roads run along x and y through the
/// junction at the origin.
const LANE: f64 = 1.75;

impl Scenario {
    /// The built-in demo: a four-way junction with eight connected cars, a parked car and a
    /// pedestrian on the pavement. `v1` and `v2` are on a crossing conflict (v2 brakes hard
    /// at the last moment and stops 1.5 m short of v1's path); every other encounter is safe:
    /// opposing traffic passing in its own lane, a platoon at constant headway passing in front
    /// of the stopped v2, junction crossings seconds apart, and the parked car and pedestrian
    /// beside the lanes.
    pub fn demo() -> Self {
        let mut actors = vec![
            // The conflict: both reach the junction at about 6.7 s.
            car("v1", &[(-80.0, -LANE), (200.0, -LANE)], &[(0.0, 12.0)]),
            car(
                "v2",
                &[(LANE, -66.7), (LANE, 200.0)],
                &[(0.0, 10.0), (5.3, 10.0), (6.75, 0.0)],
            ),
            // Opposing traffic passing v1 in the other lane, through the junction at about
            // 4.5 s, well before v2 gets there.
            car("v3", &[(51.3, LANE), (-200.0, LANE)], &[(0.0, 11.0)]),
            // A platoon behind v1 at 2.1 s headway, passing in front of v2 once it has stopped.
            car("v4", &[(-125.0, -LANE), (200.0, -LANE)], &[(0.0, 12.0)]),
            car("v5", &[(-150.0, -LANE), (200.0, -LANE)], &[(0.0, 12.0)]),
            // Southbound through the junction at about 3.3 s, long before v1 and v2.
            car("v6", &[(-LANE, 33.0), (-LANE, -200.0)], &[(0.0, 10.0)]),
            // Westbound, through the junction at about 13.5 s, passing the stopped v2.
            car("v7", &[(150.0, LANE), (-200.0, LANE)], &[(0.0, 11.0)]),
            // Westbound, through the junction at about 1.5 s.
            car("v8", &[(18.0, LANE), (-200.0, LANE)], &[(0.0, 12.0)]),
        ];
        let mut parked = car("parked1", &[(-25.0, -5.6), (-20.0, -5.6)], &[(0.0, 0.0)]);
        parked.connected = false;
        actors.push(parked);
        actors.push(Actor {
            id: "ped1".into(),
            class: ObjectClass::Pedestrian,
            length_m: 0.5,
            width_m: 0.5,
            connected: false,
            path: vec![V2::new(6.5, -40.0), V2::new(6.5, 40.0)],
            speed: vec![SpeedKey {
                t_s: 0.0,
                speed_mps: 1.4,
            }],
        });
        Self {
            name: "demo-junction".into(),
            origin: (48.137_154, 11.576_124),
            duration_s: 14.0,
            actors,
        }
    }

    pub fn n_connected(&self) -> usize {
        self.actors.iter().filter(|a| a.connected).count()
    }

    pub fn n_vehicles(&self) -> usize {
        self.actors.iter().filter(|a| a.class.is_vehicle()).count()
    }
}
