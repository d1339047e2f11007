//! Clock synchronisation with the edge: an NTP-style exchange of four timestamps, and an
//! estimator that keeps the offset of the fastest recent exchange.
//!
//! `t1` is when the vehicle sent its request (vehicle clock), `t2` when the edge received it
//! and `t3` when the edge replied (edge clock), `t4` when the reply arrived (vehicle clock).
//! Then `offset = ((t2 - t1) + (t3 - t4)) / 2` is what to add to the vehicle clock to get edge
//! time, and the true offset lies within `delay / 2` of it, where
//! `delay = (t4 - t1) - (t3 - t2)` is the round trip spent on the network.

use crate::codec::{Message, MessageKind};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockRequest {
    pub t1_us: i64,
}

impl Message for ClockRequest {
    const KIND: MessageKind = MessageKind::ClockRequest;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockReply {
    pub t1_us: i64,
    pub t2_us: i64,
    pub t3_us: i64,
}

impl Message for ClockReply {
    const KIND: MessageKind = MessageKind::ClockReply;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockSample {
    pub offset_us: i64,
    pub delay_us: i64,
    /// Vehicle-clock time of `t4`, to age the sample.
    pub at_local_us: i64,
}

impl ClockSample {
    /// `None` when the timestamps are inconsistent (negative network delay), which only a
    /// misbehaving peer or a clock step during the exchange produces.
    pub fn from_exchange(reply: &ClockReply, t4_us: i64) -> Option<Self> {
        let (t1, t2, t3, t4) = (reply.t1_us, reply.t2_us, reply.t3_us, t4_us);
        let delay = t4.checked_sub(t1)?.checked_sub(t3.checked_sub(t2)?)?;
        if delay < 0 || t3 < t2 {
            return None;
        }
        let offset = ((t2 as i128 - t1 as i128) + (t3 as i128 - t4 as i128)) / 2;
        Some(Self {
            offset_us: i64::try_from(offset).ok()?,
            delay_us: delay,
            at_local_us: t4,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockEstimate {
    /// Add to the vehicle clock to get edge time.
    pub offset_us: i64,
    /// A bound on the error of `offset_us`, microseconds.
    pub uncertainty_us: u32,
}

/// Keeps the last `window` samples and answers with the one of least delay, whose error bound
/// is tightest, widened by the drift the clocks may have accumulated since it was taken.
#[derive(Debug, Clone)]
pub struct ClockEstimator {
    samples: VecDeque<ClockSample>,
    window: usize,
    max_drift_ppm: f64,
}

impl Default for ClockEstimator {
    fn default() -> Self {
        Self::new(16, 100.0)
    }
}

impl ClockEstimator {
    pub fn new(window: usize, max_drift_ppm: f64) -> Self {
        Self {
            samples: VecDeque::with_capacity(window),
            window: window.max(1),
            max_drift_ppm,
        }
    }

    pub fn add(&mut self, sample: ClockSample) {
        if self.samples.len() == self.window {
            self.samples.pop_front();
        }
        self.samples.push_back(sample);
    }

    pub fn n_samples(&self) -> usize {
        self.samples.len()
    }

    pub fn estimate(&self, now_local_us: i64) -> Option<ClockEstimate> {
        self.samples
            .iter()
            .map(|s| {
                let age_us = now_local_us.saturating_sub(s.at_local_us).max(0) as f64;
                let bound = s.delay_us as f64 / 2.0 + age_us * self.max_drift_ppm * 1e-6;
                (s, bound)
            })
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(s, bound)| ClockEstimate {
                offset_us: s.offset_us,
                uncertainty_us: bound.ceil().min(u32::MAX as f64) as u32,
            })
    }
}
