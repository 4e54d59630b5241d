//! The two kinds of index a call hands around, as distinct types so that one
//! cannot be passed for the other: a [`LegId`] names a SIP leg of the call
//! (legs are never removed, only ended), a [`Slot`] names one of the call's
//! RTP endpoints (several forks of one attempt share a slot). [`Legs`] is
//! the call's list of legs, indexed by `LegId`.

use std::fmt;
use std::ops::{Index, IndexMut};

use super::leg::Leg;

/// A SIP leg of one call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LegId(pub(crate) usize);

impl fmt::Display for LegId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// An RTP endpoint of one call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Slot(pub(crate) usize);

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The legs of a call, in the order they were created.
#[derive(Default)]
pub struct Legs(Vec<Leg>);

impl Legs {
    pub fn push(&mut self, leg: Leg) -> LegId {
        // Most calls have two legs: room for exactly those at first (a
        // Vec's first growth would make room for four).
        if self.0.capacity() == 0 {
            self.0.reserve_exact(2);
        }
        self.0.push(leg);
        LegId(self.0.len() - 1)
    }

    pub fn get_mut(&mut self, id: LegId) -> Option<&mut Leg> {
        self.0.get_mut(id.0)
    }

    pub fn ids(&self) -> impl Iterator<Item = LegId> + use<> {
        (0..self.0.len()).map(LegId)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Leg> {
        self.0.iter()
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Leg> {
        self.0.iter_mut()
    }

    /// The first leg for which `pred` holds.
    pub fn find(&self, pred: impl Fn(&Leg) -> bool) -> Option<LegId> {
        self.0.iter().position(pred).map(LegId)
    }

    pub fn as_slice(&self) -> &[Leg] {
        &self.0
    }
}

impl Index<LegId> for Legs {
    type Output = Leg;
    fn index(&self, id: LegId) -> &Leg {
        &self.0[id.0]
    }
}

impl IndexMut<LegId> for Legs {
    fn index_mut(&mut self, id: LegId) -> &mut Leg {
        &mut self.0[id.0]
    }
}
